import Glibc

/// Cuts a connection's bytes into records, as they arrive in reads of any size (the socket receiver's framing,
/// apart from its socket so that it can be tested and fuzzed alone). Reads go straight into its buffer
/// (``read(_:)``); ``cut(_:)`` then hands out each record the bytes complete, and ``finish(_:)`` the last one
/// at the end of the data. Records are views into the buffer, valid only inside the handler.
///
/// Memory stays bounded: a delimited record longer than `maxRecordBytes` is reported (``Event/tooLong(offset:)``)
/// and its bytes skipped up to the next delimiter, so the buffer never grows past about twice `maxRecordBytes`
/// (twice the length, for fixed-length records).
package struct SocketFramer {
    /// What cutting found.
    package enum Event {
        /// A whole record (without its delimiter, and for lines without a "\r" before the "\n") and the offset
        /// of its first byte in the connection.
        case record(UnsafeRawBufferPointer, offset: Int64)
        /// A delimited record starting at `offset` passed `maxRecordBytes` with no delimiter yet: it is dropped
        /// up to its end.
        case tooLong(offset: Int64)
        /// The data ended inside a fixed-length record: `count` bytes at `offset`, dropped.
        case tornRecord(offset: Int64, count: Int)
    }

    package let framing: SocketFraming
    package let maxRecordBytes: Int
    private var buffer: [UInt8]
    /// The first byte of the record being read.
    private var start = 0
    /// Bytes in the buffer.
    private var end = 0
    /// The connection offset of `buffer[0]`.
    private var offset: Int64 = 0
    /// A record too long to keep is being dropped: bytes are skipped up to the next delimiter.
    private var dropping = false

    /// A framer whose buffer starts at `initialCapacity` bytes.
    package init(framing: SocketFraming, maxRecordBytes: Int, initialCapacity: Int = 1 << 16) {
        self.framing = framing
        self.maxRecordBytes = max(1, maxRecordBytes)
        buffer = [UInt8](repeating: 0, count: max(1, initialCapacity))
    }

    /// The buffer's size in bytes.
    package var capacity: Int { buffer.count }

    /// The byte that ends a record (nil: fixed-length records).
    private var delimiter: UInt8? {
        switch framing {
        case .lines: UInt8(ascii: "\n")
        case .delimiter(let d): d
        case .fixedLength: nil
        }
    }

    /// Calls `receive` with the free space for the next bytes (made first: the incomplete record moves to the
    /// front, or the buffer doubles when one record fills it) and returns what `receive` returns: the number of
    /// bytes it wrote, or zero or less for none (the end of the data, an error), which changes nothing.
    package mutating func read(_ receive: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        if end == buffer.count {
            if start > 0 {
                buffer.replaceSubrange(0..<(end - start), with: buffer[start..<end])
                offset += Int64(start)
                end -= start
                start = 0
            } else {
                buffer.append(contentsOf: repeatElement(0, count: buffer.count))
            }
        }
        let (from, room) = (end, buffer.count - end)
        let n = buffer.withUnsafeMutableBytes { bytes in
            // Safe: from < bytes.count (made so above), and the slice is within the buffer.
            receive(UnsafeMutableRawBufferPointer(rebasing: bytes[from..<(from + room)]))
        }
        if n > 0 { end += min(n, room) }
        return n
    }

    /// Hands `handle` each record the bytes read so far complete, and reports a delimited record that grew too
    /// long.
    package mutating func cut(_ handle: (Event) -> Void) {
        if dropping {
            guard let stop = firstDelimiter(from: start) else {
                start = end
                return
            }
            start = stop + 1
            dropping = false
        }
        buffer.withUnsafeBytes { bytes in
            switch framing {
            case .lines, .delimiter:
                while let stop = firstDelimiter(from: start) {
                    var last = stop
                    if framing == .lines, last > start, bytes[last - 1] == UInt8(ascii: "\r") { last -= 1 }
                    handle(.record(UnsafeRawBufferPointer(rebasing: bytes[start..<last]), offset: offset + Int64(start)))
                    start = stop + 1
                }
            case .fixedLength(let length):
                let length = max(1, length)
                while end - start >= length {
                    handle(.record(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]), offset: offset + Int64(start)))
                    start += length
                }
            }
        }
        if delimiter != nil, end - start > maxRecordBytes {
            handle(.tooLong(offset: offset + Int64(start)))
            dropping = true
            start = end
        }
    }

    /// The end of the data: a last delimited record without its delimiter is a record; the start of a
    /// fixed-length record is reported torn. The framer is empty afterwards.
    package mutating func finish(_ handle: (Event) -> Void) {
        defer {
            start = end
            dropping = false
        }
        guard !dropping, end > start else { return }
        let at = offset + Int64(start)
        if case .fixedLength = framing {
            handle(.tornRecord(offset: at, count: end - start))
            return
        }
        var last = end
        if framing == .lines, buffer[last - 1] == UInt8(ascii: "\r") { last -= 1 }
        let (from, to) = (start, last)
        buffer.withUnsafeBytes { bytes in
            handle(.record(UnsafeRawBufferPointer(rebasing: bytes[from..<to]), offset: at))
        }
    }

    /// The position of the first delimiter in `buffer[from..<end]`, if any.
    private func firstDelimiter(from: Int) -> Int? {
        guard let delimiter, from < end else { return nil }
        return buffer.withUnsafeBytes { bytes in
            // Safe: from..<end is within the buffer.
            memchr(bytes.baseAddress! + from, Int32(delimiter), end - from).map {
                bytes.baseAddress!.distance(to: UnsafeRawPointer($0))
            }
        }
    }
}
