import Glibc
import SluiceColumnar
import Synchronization

/// How a socket stream cuts the connection's bytes into records.
public enum SocketFraming: Sendable, Equatable {
    /// Lines ended by "\n" (a "\r" before it is dropped); a last line without one ends at the end of data.
    case lines
    /// Records ended by this byte.
    case delimiter(UInt8)
    /// Records of exactly this many bytes (a shorter tail at the end of data is reported and dropped).
    case fixedLength(Int)
}

/// Connects to a TCP server and stores what it sends, record by record (Spark's `SocketReceiver`). A refused
/// connection or the end of the data restarts the receiver after `spark.streaming.receiverRestartDelay`; a
/// record the converter rejects is reported (its offset in the connection) and skipped.
final class SocketReceiver<Element: Sendable>: Receiver<Element>, @unchecked Sendable {
    // @unchecked: `socket` is behind a lock; the rest is immutable.
    let host: String
    let port: Int
    let framing: SocketFraming
    /// The longest delimited record kept (`sluice.receiver.maxRecordBytes`): a longer one is reported and dropped
    /// up to its end, so the buffer never holds more than about twice this.
    let maxRecordBytes: Int
    /// How records are kept: each converted into an element, or, for text, gathered as bytes and stored in one go.
    enum Keeping: Sendable {
        /// Appends the record made of some bytes to an array: the converter and the append in one closure, made
        /// in the initializer, which is specialized where it is called with a concrete `Element`. The receiver's
        /// own methods are not: there, `records.append(try convert(bytes))` looked up the array's type metadata at
        /// run time (a hash-map lookup) for every record, 6% of a socket word count's CPU.
        case converting(@Sendable (UnsafeRawBufferPointer, inout [Element]) throws -> Void)
        /// Text records (`socketTextStream`): stores a read's records, gathered as UTF-8 bytes, straight into the
        /// block's string column (no `String` made for each), or as `String`s where the stream keeps elements.
        case text(@Sendable (SocketReceiver<Element>, borrowing TextRecords) throws -> Void)
    }
    let keeping: Keeping
    private let socket = Mutex<Int32?>(nil)

    private init(
        host: String, port: Int, framing: SocketFraming, storageLevel: StorageLevel, maxRecordBytes: Int,
        keeping: Keeping
    ) {
        self.host = host
        self.port = port
        self.framing = framing
        self.maxRecordBytes = max(1, maxRecordBytes)
        self.keeping = keeping
        super.init(storageLevel: storageLevel)
    }

    convenience init(
        host: String, port: Int, framing: SocketFraming, storageLevel: StorageLevel, maxRecordBytes: Int,
        convert: @escaping @Sendable (UnsafeRawBufferPointer) throws -> Element
    ) {
        self.init(
            host: host, port: port, framing: framing, storageLevel: storageLevel, maxRecordBytes: maxRecordBytes,
            keeping: .converting { bytes, records in records.append(try convert(bytes)) })
    }

    /// Text records: each record's bytes as UTF-8 (invalid sequences replaced by U+FFFD, as
    /// `String(decoding:as:)` does), written into the block's string column without a `String` each.
    convenience init(
        textFrom host: String, port: Int, framing: SocketFraming, storageLevel: StorageLevel, maxRecordBytes: Int
    ) where Element == String {
        self.init(
            host: host, port: port, framing: framing, storageLevel: storageLevel, maxRecordBytes: maxRecordBytes,
            keeping: .text { receiver, text in
                let written = try receiver.storeEncoded(rows: text.count) { builder in
                    builder.withColumn(0) { column in column.withBytesAppender { text.write(to: &$0) } }
                }
                if !written { try receiver.storeBuffered(text.strings()) }
            })
    }

    override func validate() throws {
        if case .fixedLength(let length) = framing, length < 1 {
            throw StreamingError(
                .invalidArgument, "socket stream from \(host):\(port): a fixed record length must be at least 1 byte, got \(length)")
        }
    }

    override func onStart() {
        do {
            try DetachedThread.run("socket receiver") { [self] in receive() }
        } catch {
            restart("cannot receive from \(host):\(port)", error: error)
        }
    }

    override func onStop() {
        // Wakes the reading thread, which closes the socket; the lock keeps the number from being reused
        // in between.
        socket.withLock { if let fd = $0 { _ = shutdown(fd, Int32(SHUT_RDWR)) } }
    }

    private func receive() {
        let fd: Int32
        do {
            fd = try connect()
        } catch {
            restart("Error connecting to \(host):\(port)", error: error)
            return
        }
        let registered = socket.withLock { slot -> Bool in
            guard !isStopped else { return false }
            slot = fd
            return true
        }
        defer {
            socket.withLock { slot in
                close(fd)
                slot = nil
            }
        }
        guard registered else { return }
        do {
            try read(fd)
            if !isStopped { restart("Socket data stream had no more data") }
        } catch {
            if !isStopped { restart("Error receiving data from \(host):\(port)", error: error) }
        }
    }

    /// Opens a TCP connection to the first address of `host` that accepts one.
    private func connect() throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &found)
        guard rc == 0, let first = found else {
            throw SocketError(message: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(first) }
        var lastErrno: Int32 = 0
        var address: UnsafeMutablePointer<addrinfo>? = first
        while let candidate = address {
            let fd = Glibc.socket(candidate.pointee.ai_family, candidate.pointee.ai_socktype, candidate.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, candidate.pointee.ai_addr, candidate.pointee.ai_addrlen) == 0 { return fd }
                lastErrno = errno
                close(fd)
            } else {
                lastErrno = errno
            }
            address = candidate.pointee.ai_next
        }
        throw SocketError(message: String(cString: strerror(lastErrno)))
    }

    /// Reads records until the end of data (or a stop), storing each read's records together.
    private func read(_ fd: Int32) throws {
        var framer = SocketFramer(framing: framing, maxRecordBytes: maxRecordBytes)
        var records: [Element] = []
        var text = TextRecords()
        while !isStopped {
            let n = framer.read { space in recv(fd, space.baseAddress, space.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if isStopped { return }
                throw SocketError(message: String(cString: strerror(errno)))
            }
            if n == 0 {
                framer.finish { handle($0, &records, &text) }
                try flush(&records, &text)
                return
            }
            framer.cut { handle($0, &records, &text) }
            try flush(&records, &text)
        }
    }

    private func handle(_ event: SocketFramer.Event, _ records: inout [Element], _ text: inout TextRecords) {
        switch event {
        case .record(let bytes, let offset):
            switch keeping {
            case .converting(let collect): append(bytes, offset, collect, &records)
            case .text: text.append(bytes)
            }
        case .tooLong(let offset):
            reportError(
                "The record at offset \(offset) of \(host):\(port) is longer than sluice.receiver.maxRecordBytes "
                    + "(\(maxRecordBytes) bytes, no \(framing == .lines ? "newline" : "delimiter") yet); dropped up to its end", nil)
        case .tornRecord(let offset, let count):
            guard case .fixedLength(let length) = framing else { return }
            reportError(
                "\(host):\(port) closed in the middle of a record at offset \(offset): \(count) of \(length) "
                    + "bytes, dropped", nil)
        }
    }

    private func append(
        _ record: UnsafeRawBufferPointer, _ offset: Int64,
        _ collect: (UnsafeRawBufferPointer, inout [Element]) throws -> Void, _ records: inout [Element]
    ) {
        do {
            try collect(record, &records)
        } catch {
            reportError("The record at offset \(offset) of \(host):\(port) (\(record.count) bytes) could not be converted; skipped", error)
        }
    }

    private func flush(_ records: inout [Element], _ text: inout TextRecords) throws {
        if case .text(let store) = keeping, text.count > 0 {
            defer { text.removeAll() }
            try store(self, text)
        }
        guard !records.isEmpty else { return }
        try storeBuffered(records)
        records.removeAll(keepingCapacity: true)
    }
}

/// Text records gathered from a read: their UTF-8 bytes end to end and where each ends. A record that is not
/// valid UTF-8 is kept as `String(decoding:as:)` repairs it, so that the column holds what a `String` per record
/// would have.
struct TextRecords: ~Copyable {
    private var bytes: [UInt8] = []
    private var ends: [Int] = []

    var count: Int { ends.count }
    /// Bytes of records it can hold without growing.
    var capacity: Int { bytes.capacity }

    mutating func append(_ record: UnsafeRawBufferPointer) {
        if isASCII(record) {
            bytes.append(contentsOf: record)
        } else {
            // Valid UTF-8 comes back as it was; invalid sequences become U+FFFD.
            var repaired = String(decoding: record, as: UTF8.self)
            repaired.withUTF8 { bytes.append(contentsOf: $0) }
        }
        ends.append(bytes.count)
    }

    /// Writes the records into a string column, one row each, in one copy.
    func write(to appender: inout BytesAppender) {
        var none: UInt8 = 0  // where empty rows are read from when no record has a byte
        withUnsafeBytes(of: &none) { none in
            bytes.withUnsafeBytes { bytes in
                ends.withUnsafeBufferPointer { ends in
                    guard let base = bytes.baseAddress ?? none.baseAddress else { return }
                    appender.append(rows: ends, from: base, origin: 0)
                }
            }
        }
    }

    /// The records as `String`s (for a stream that keeps elements).
    func strings() -> [String] {
        var start = 0
        return ends.map { end in
            defer { start = end }
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }
    }

    /// Empties the records, keeping the memory of an ordinary read (the framer reads 64 KiB at first) but not
    /// that of a read of one very long line, which would otherwise stay as long as the connection.
    mutating func removeAll() {
        let keep = bytes.capacity <= TextRecords.keptBytes
        bytes.removeAll(keepingCapacity: keep)
        ends.removeAll(keepingCapacity: keep)
    }

    /// The most memory of records kept between reads.
    static let keptBytes = 1 << 20

    /// Whether every byte is below 0x80, eight at a time.
    private func isASCII(_ record: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        var high: UInt64 = 0
        // Safe: each load reads 8 bytes within the record.
        while i &+ 8 <= record.count {
            high |= record.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i &+= 8
        }
        while i < record.count {
            high |= UInt64(record[i])
            i &+= 1
        }
        return high & 0x8080_8080_8080_8080 == 0
    }
}

/// A socket could not be opened or read.
struct SocketError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
