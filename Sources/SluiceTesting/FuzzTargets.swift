import Glibc
import Sluice
import SluiceColumnar

/// The decoders of bytes from disk that `scripts/fuzz.sh` fuzzes (libFuzzer, `Sources/SluiceFuzz`), each
/// behind one entry point: given any bytes, a decoder ends in a value or a thrown error that names what was
/// wrong; a crash, a hang or an allocation sized by an unchecked length field is a finding. The seeds are real
/// files written by Sluice's own writers.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A columnar block (`Block(validating:)`), then every value of every column read.
    case block
    /// The compact row encoding of a `Codable` record with strings, arrays, optionals and a dictionary.
    case rows
    /// A zstd envelope (`Envelope.read`), its payload then opened as a block.
    case envelope
    /// A framed file (`FramedFileReader`): every frame read.
    case framed
    /// A spill file: frames of blocks of (Int, String) rows, as the engine reads them back.
    case spill
    /// A checkpoint file.
    case checkpoint
    /// A write-ahead log segment.
    case wal
    /// A spark-style properties file (`StreamingConf(propertiesFile:)`).
    case properties
    /// A socket stream's framing (`SocketFramer`): lines, a delimiter or fixed-length records, cut from reads
    /// of varying size, under a small record limit. The first 4 bytes choose the framing, the limit and the
    /// read sizes; the rest is the connection's data. Every record must be the connection's own bytes at its
    /// offset, with no delimiter inside, the buffer must stay within twice the limit, and the records must not
    /// depend on how the data was split into reads (see ``checkFraming(_:)``).
    case socketFraming

    /// A record of many shapes, for the row codec.
    struct Record: Codable, Equatable {
        var id: Int
        var name: String
        var scores: [Double]
        var tags: [String: Int]?
        var nested: [[Int32]]
        var flag: Bool
    }

    /// Runs the decoder over `bytes`; files go under `scratch` (a directory of the caller's). Returns whether
    /// the bytes decoded (false: the decoder threw, as it should for most mutated inputs).
    @discardableResult
    public func run(_ bytes: UnsafeRawBufferPointer, scratch: String) -> Bool {
        do {
            switch self {
            case .block:
                try Self.readEveryValue(try Block(copying: bytes))
            case .rows:
                _ = try BinaryReader.withReader(bytes) { try ElementCodecs.codable(Record.self).decode(from: &$0) }
            case .envelope:
                var payload = try ArenaBuffer()
                try Envelope.read(bytes, decompressor: try ZstdDecompressor(), into: &payload)
                try Self.readEveryValue(try Block(validating: payload))
            case .framed:
                var reader = try FramedFileReader(opening: try Self.file(bytes, in: scratch, named: "framed"))
                while try reader.next() != nil {}
            case .spill:
                var reader = try FramedFileReader(opening: try Self.file(bytes, in: scratch, named: "spill"))
                let codec = ElementCodecs.tuple(Int.self, String.self)
                while let frame = try reader.next() { _ = try codec.decode(try Block(validating: frame)) }
            case .checkpoint:
                _ = try Decoders.readCheckpoint(at: try Self.file(bytes, in: scratch, named: "checkpoint-1000"))
            case .wal:
                let directory = "\(scratch)/wal"
                mkdir(directory, 0o755)
                _ = try Self.file(bytes, in: directory, named: Decoders.writeAheadLogSegmentName(first: 0))
                _ = try Decoders.readWriteAheadLog(in: directory) { _ in }
            case .properties:
                _ = try StreamingConf(propertiesFile: try Self.file(bytes, in: scratch, named: "sluice.properties"))
            case .socketFraming:
                Self.checkFraming(bytes)
            }
            return true
        } catch {
            return false
        }
    }

    /// Reads every value of every column of `block` (the values a program would read).
    static func readEveryValue(_ block: Block) throws {
        for c in 0..<block.columnCount {
            let column = block.column(c)
            for row in 0..<column.count where !column.isNull(row) {
                switch column.type.kind {
                case .string, .binary: _ = column.bytes(at: row)
                case .bool: _ = column.bool(at: row)
                case .int64: _ = column.value(at: row, as: Int64.self)
                case .int32: _ = column.value(at: row, as: Int32.self)
                case .uint64: _ = column.value(at: row, as: UInt64.self)
                case .double: _ = column.value(at: row, as: Double.self)
                case .float: _ = column.value(at: row, as: Float.self)
                }
            }
        }
    }

    /// Writes `bytes` to `name` in `directory` (replacing it); returns its path.
    public static func file(_ bytes: UnsafeRawBufferPointer, in directory: String, named name: String) throws -> String {
        let path = "\(directory)/\(name)"
        var sink = try FileSink(creating: path)
        try sink.write(bytes)
        return path
    }

    /// Real inputs for this target, written by Sluice's own writers (files under `scratch`).
    public func seeds(scratch: String) throws -> [[UInt8]] {
        let lines = ["a", "", "日本語", String(repeating: "long line ", count: 20)]
        let block = try ElementCodecs.standard(String.self).encode(lines)
        let pairs = try ElementCodecs.tuple(Int.self, String.self).encode([(1, "one"), (-2, ""), (Int.max, "max")])
        func bytes(of path: String) throws -> [UInt8] { try SystemCalls.live.readFile(path) }
        switch self {
        case .block:
            return [block, pairs].map { $0.withUnsafeBytes { Array($0) } }
        case .rows:
            var writer = try BinaryWriter()
            let record = Record(id: 7, name: "名前", scores: [1.5, -0.0], tags: ["a": 1], nested: [[1, 2], []], flag: true)
            try ElementCodecs.codable(Record.self).encode(record, to: &writer)
            return [try writer.withWrittenBytes { Array($0) }]
        case .envelope:
            return try [block, pairs].map { try $0.compressed(with: try ZstdCompressor()).withUnsafeBytes { Array($0) } }
        case .framed, .spill:
            let path = "\(scratch)/seed-\(rawValue)"
            var file = try FramedFileWriter(creating: path, level: 1)
            try file.append(pairs)
            try file.append(pairs)
            try file.finish()
            return [try bytes(of: path)]
        case .checkpoint:
            return try checkpointSeeds(scratch: scratch).map(bytes(of:))
        case .wal:
            let directory = "\(scratch)/seed-wal"
            mkdir(directory, 0o755)
            let log = WriteAheadLog(
                directory: directory, after: -1, existing: [], calls: .live, level: 1, fsync: false,
                rollInterval: .seconds(60), maxFailures: 1)
            _ = try log.append(block, id: StreamBlockId(streamId: 0, uniqueId: 1), count: lines.count)
            _ = try log.append(block, id: StreamBlockId(streamId: 0, uniqueId: 2), count: lines.count)
            log.close()
            return [try bytes(of: "\(directory)/\(Decoders.writeAheadLogSegmentName(first: 0))")]
        case .socketFraming:
            let long = String(repeating: "x", count: 100)
            return [
                [0, 0, 16, 3] + Array("a b\nc\r\n\n\(long)\nlast".utf8),
                [1, UInt8(ascii: ";"), 8, 7] + Array("1;22;333;\(long);;tail".utf8),
                [2, 4, 1, 1] + Array("abcdefghijklmn".utf8),
            ]
        case .properties:
            let text = "# tuning\nspark.master local[2]\nspark.streaming.blockInterval=50ms\nsluice.memory.limit : 64m\n"
                + "spark.app.name a\\\n  continued name\n"
            return [Array(text.utf8)]
        }
    }

    /// The checkpoint files of a short real run: a running count with state, checkpointed every batch (with no
    /// other context running: one streaming context is active per process).
    func checkpointSeeds(scratch: String) throws -> [String] {
        try StreamTest.exclusively { try checkpointRun(scratch: scratch) }
    }

    func checkpointRun(scratch: String) throws -> [String] {
        let directory = "\(scratch)/seed-checkpoint"
        mkdir(directory, 0o755)
        let clock = ManualClock()
        let ssc = try StreamingContext(
            conf: StreamingConf().setMaster("local[1]").set("spark.ui.enabled", "false"),
            batchDuration: .seconds(1), clock: clock)
        ssc.checkpoint(directory)
        let batches: [[Int]?] = [[1, 2, 2], [3], nil]
        ssc.sequenceStream(batches).map { ($0, 1) }
            .updateStateByKey { (values: [Int], state: Int?) -> Int? in (state ?? 0) + values.reduce(0, +) }
            .foreachRDD { rdd in _ = try rdd.count() }
        try ssc.start()
        for second in Int64(1)...3 {
            clock.set(to: Time(milliseconds: second * 1_000))
            _ = ssc.waitUntilBatchHandled(clock.time, timeout: .seconds(30))
        }
        ssc.stop()
        return (directoryNames(directory) ?? []).filter { $0.hasPrefix("checkpoint-") }.sorted().map { "\(directory)/\($0)" }
    }
}

extension FuzzTarget {
    /// One thing a framer reported, with the record's bytes copied.
    public enum Framed: Equatable, Sendable {
        case record(offset: Int64, bytes: [UInt8])
        case tooLong(offset: Int64)
        case torn(offset: Int64, count: Int)
    }

    /// Frames `input` (see ``socketFraming``) and checks what came out; a broken promise traps, which is how a
    /// fuzzer records a finding.
    public static func checkFraming(_ input: UnsafeRawBufferPointer) {
        guard input.count >= 4 else { return }
        let framing: SocketFraming
        switch input[0] % 3 {
        case 0: framing = .lines
        case 1: framing = .delimiter(input[1])
        default: framing = .fixedLength(1 + Int(input[1] % 32))
        }
        let maxRecordBytes = 1 + Int(input[2] % 64)
        let data = Array(input[4...])
        let (events, capacity) = frame(data, framing, maxRecordBytes: maxRecordBytes, readSeed: input[3])
        func fail(_ what: String) -> Never {
            preconditionFailure("socket framing \(framing), limit \(maxRecordBytes), \(data.count) bytes: \(what)")
        }
        let unit: Int
        if case .fixedLength(let length) = framing { unit = length } else { unit = maxRecordBytes }
        if capacity > max(8, 2 * unit) { fail("the buffer grew to \(capacity) bytes") }
        var next: Int64 = 0  // no record starts before this
        for event in events {
            switch event {
            case .record(let offset, let bytes):
                let start = Int(offset)
                guard offset >= next, start + bytes.count <= data.count,
                    Array(data[start..<(start + bytes.count)]) == bytes
                else { fail("a record at \(offset) is not the data's bytes there") }
                var after = start + bytes.count
                switch framing {
                case .fixedLength(let length):
                    if bytes.count != length || offset % Int64(length) != 0 { fail("a fixed record of \(bytes.count) bytes at \(offset)") }
                case .lines, .delimiter:
                    let delimiter: UInt8
                    if case .delimiter(let d) = framing { delimiter = d } else { delimiter = UInt8(ascii: "\n") }
                    if bytes.contains(delimiter) { fail("a record at \(offset) holds its delimiter") }
                    if framing == .lines, after < data.count, data[after] == UInt8(ascii: "\r") { after += 1 }
                    if after < data.count && data[after] != delimiter { fail("a record at \(offset) ends before its delimiter") }
                }
                if case .fixedLength = framing { next = Int64(after) } else { next = Int64(after) + 1 }
            case .tooLong(let offset):
                if offset < next { fail("a long record reported at \(offset), before \(next)") }
                next = offset
            case .torn(let offset, let count):
                guard case .fixedLength(let length) = framing, count < length, Int(offset) + count == data.count else {
                    fail("a torn record of \(count) bytes at \(offset)")
                }
            }
        }
        // With nothing dropped, how the data was split into reads changes nothing.
        if !events.contains(where: { if case .tooLong = $0 { true } else { false } }) {
            let whole = frame(data, framing, maxRecordBytes: .max, readSeed: nil).events
            if whole != events { fail("the records depend on how the data was split into reads") }
        }
    }

    /// What a framer reports for `data` read in pieces of 1 to 23 bytes varied by `readSeed` (nil: one read),
    /// and the largest its buffer grew.
    public static func frame(
        _ data: [UInt8], _ framing: SocketFraming, maxRecordBytes: Int, readSeed: UInt8?
    ) -> (events: [Framed], capacity: Int) {
        var framer = SocketFramer(
            framing: framing, maxRecordBytes: maxRecordBytes, initialCapacity: readSeed == nil ? data.count + 1 : 8)
        var events: [Framed] = []
        func keep(_ event: SocketFramer.Event) {
            switch event {
            case .record(let bytes, let offset): events.append(.record(offset: offset, bytes: Array(bytes)))
            case .tooLong(let offset): events.append(.tooLong(offset: offset))
            case .tornRecord(let offset, let count): events.append(.torn(offset: offset, count: count))
            }
        }
        var position = 0
        var reads = 0
        var capacity = framer.capacity
        while position < data.count {
            let want = readSeed.map { 1 + Int(($0 &+ UInt8(truncatingIfNeeded: reads &* 37)) % 23) } ?? data.count
            reads += 1
            let n = framer.read { space in
                let k = min(want, space.count, data.count - position)
                data.withUnsafeBytes { space.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[position..<(position + k)])) }
                return k
            }
            position += n
            framer.cut(keep)
            capacity = max(capacity, framer.capacity)
        }
        _ = framer.read { _ in 0 }  // the end of the data
        framer.finish(keep)
        return (events, capacity)
    }
}
