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
