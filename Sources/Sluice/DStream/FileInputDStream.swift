import Logging
import Glibc
import SluiceColumnar
import SluiceExecution
import Synchronization

/// New files in a directory, batch by batch (Spark's `FileInputDStream`): the batch at time T takes the files
/// whose modification time is after max(the ignore threshold, T - the remember window) and at most T, that
/// pass the filter (by default: a name not starting with "."), and that no remembered batch took. Files must
/// appear atomically (written elsewhere, then moved in). Subdirectories are ignored.
///
/// The remember window is `spark.streaming.fileStream.minRememberDuration` (60 s) rounded up to whole
/// batches; the ignore threshold is the clock's time when the stream was made (`newFilesOnly`, the default)
/// or zero. Each file is read when its batch is generated and becomes one partition, parsed in the batch's
/// tasks; a file that cannot be read is logged, named in the batch's input info ("skipped") and skipped.
final class FileInputDStream<T: Sendable>: InputDStream<T>, @unchecked Sendable {
    let directory: String
    let filter: @Sendable (String) -> Bool
    let parse: @Sendable ([UInt8], String) throws -> [T]
    /// Files modified at or before it are ignored (restored from a checkpoint: the first run's).
    let ignoreThreshold: Mutex<Time>
    let rememberWindow: Duration

    /// The files each remembered batch took.
    private let files = Mutex<[Time: [String]]>([:])

    init(
        context: StreamingContext, directory: String, name: String, newFilesOnly: Bool,
        filter: @escaping @Sendable (String) -> Bool, parse: @escaping @Sendable ([UInt8], String) throws -> [T]
    ) {
        self.directory = directory
        self.filter = filter
        self.parse = parse
        self.ignoreThreshold = Mutex(newFilesOnly ? context.clock.time : Time(milliseconds: 0))
        let minimum =
            ((try? context.conf.duration("spark.streaming.fileStream.minRememberDuration"))
                ?? (try? context.conf.duration("spark.streaming.minRememberDuration"))) ?? nil
        let batch = context.batchDuration.wholeMilliseconds
        let minimumMs = (minimum ?? .seconds(60)).wholeMilliseconds
        self.rememberWindow = .milliseconds(batch * ((minimumMs + batch - 1) / batch))
        super.init(context: context, name: name)
    }

    override func compute(_ time: Time) throws -> RDD<T>? {
        let threshold = max(ignoreThreshold.withLock { $0 }, time - rememberWindow)
        let (recent, restored) = files.withLock { (Set($0.values.joined()), $0[time]) }
        // A batch whose files a checkpoint recorded takes those files again (Spark's restored file RDDs).
        let candidates = try restored ?? listFiles().filter { file in
            file.modified > threshold && file.modified <= time && !recent.contains(file.path) && filter(file.path)
        }.sorted { ($0.modified, $0.path) < ($1.modified, $1.path) }.map(\.path)
        let calls = context.engine.systemCalls
        var contents: [(path: String, bytes: [UInt8])] = []
        var skipped: [String] = []
        for path in candidates {
            do {
                contents.append((path, try calls.readFile(path)))
            } catch {
                skipped.append(path)
                context.log(.warning, .stream, "\(name) stream \(id): skipped \(path) at \(time): \(error)")
            }
        }
        files.withLock { $0[time] = candidates }
        var metadata = ["Description": contents.map(\.path).joined(separator: "\n"), "files": contents.map(\.path).joined(separator: ",")]
        if !skipped.isEmpty { metadata["skipped"] = skipped.joined(separator: ",") }
        context.reportInputInfo(StreamInputInfo(inputStreamId: id, numRecords: 0, metadata: metadata), at: time)
        let (parse, read) = (self.parse, contents)
        return RDD.custom(engine: context.engine, numPartitions: read.count, lineage: Lineage()) { p, sink in
            let elements = try parse(read[p].bytes, read[p].path)
            try elements.withUnsafeBufferPointer { try emitChunks($0, to: sink) }
        }
    }

    override func clearMetadata(_ time: Time) {
        files.withLock { byBatch in byBatch = byBatch.filter { $0.key > time - rememberWindow } }
        super.clearMetadata(time)
    }

    /// The regular files directly in the directory, with their modification times.
    private func listFiles() throws -> [(path: String, modified: Time)] {
        guard let names = directoryNames(directory) else {
            throw StreamingError(
                .generationFailed,
                "\(name) stream \(id) cannot list \(directory): \(String(cString: strerror(errno)))")
        }
        return names.compactMap { name in
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            var info = stat()
            guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
            let modified = Int64(info.st_mtim.tv_sec) * 1_000 + Int64(info.st_mtim.tv_nsec) / 1_000_000
            return (path, Time(milliseconds: modified))
        }
    }
}

extension FileInputDStream: CheckpointedNode {
    var dataCheckpointInterval: Duration? { checkpointInterval }

    func checkCheckpointable() throws {}

    /// Writes the ignore threshold and the files each remembered batch up to `time` took.
    func writeCheckpoint(at time: Time, to writer: inout BinaryWriter) throws {
        writer.writeVarInt(ignoreThreshold.withLock { $0 }.milliseconds)
        let taken = files.withLock { $0.filter { $0.key <= time } }
        writer.writeVarUInt(UInt64(taken.count))
        for (batchTime, paths) in taken.sorted(by: { $0.key < $1.key }) {
            writer.writeVarInt(batchTime.milliseconds)
            writer.writeVarUInt(UInt64(paths.count))
            for path in paths { writer.writeString(path) }
        }
    }

    func restoreCheckpoint(from reader: inout BinaryReader, at time: Time) throws {
        let threshold = Time(milliseconds: try reader.readVarInt())
        var taken: [Time: [String]] = [:]
        for _ in 0..<(try reader.readCount(for: "file stream batches")) {
            let batchTime = Time(milliseconds: try reader.readVarInt())
            var paths: [String] = []
            for _ in 0..<(try reader.readCount(for: "a batch's files")) { paths.append(try reader.readString()) }
            taken[batchTime] = paths
        }
        ignoreThreshold.withLock { $0 = threshold }
        files.withLock { $0 = taken }
    }
}

extension StreamingContext {
    /// Lines of the text files that appear in `directory` (see ``fileStream(_:filter:newFilesOnly:parse:)``):
    /// "\n" ends a line and a "\r" before it is dropped.
    public func textFileStream(_ directory: String) -> DStream<String> {
        FileInputDStream(
            context: self, directory: directory, name: "textFileStream", newFilesOnly: true,
            filter: defaultFileFilter, parse: { bytes, _ in splitLines(bytes) })
    }

    /// Records of `recordLength` bytes from the files that appear in `directory`. A file whose size is not a
    /// multiple of the record length fails its batch's job with an error naming the file.
    public func binaryRecordsStream(_ directory: String, recordLength: Int) -> DStream<[UInt8]> {
        FileInputDStream(
            context: self, directory: directory, name: "binaryRecordsStream", newFilesOnly: true,
            filter: defaultFileFilter,
            parse: { bytes, path in
                guard recordLength > 0, bytes.count % recordLength == 0 else {
                    throw StreamingError(
                        .invalidArgument,
                        "\(path) has \(bytes.count) bytes, not a whole number of \(recordLength)-byte records")
                }
                return stride(from: 0, to: bytes.count, by: recordLength).map { Array(bytes[$0..<($0 + recordLength)]) }
            })
    }

    /// The files that appear in `directory`, each turned into records by `parse` (its bytes and path), with
    /// Spark's selection: a file is taken by the first batch whose time is at or after its modification time,
    /// once; only files modified after the stream was made unless `newFilesOnly` is false; only paths for which
    /// `filter` is true (default: names not starting with ".").
    public func fileStream<T: Sendable>(
        _ directory: String, filter: (@Sendable (String) -> Bool)? = nil, newFilesOnly: Bool = true,
        parse: @escaping @Sendable (_ bytes: [UInt8], _ path: String) throws -> [T]
    ) -> DStream<T> {
        FileInputDStream(
            context: self, directory: directory, name: "fileStream", newFilesOnly: newFilesOnly,
            filter: filter ?? defaultFileFilter, parse: parse)
    }
}

/// Spark's default file filter: names not starting with "." (hidden and temporary files).
@Sendable func defaultFileFilter(_ path: String) -> Bool {
    !(path.split(separator: "/").last?.hasPrefix(".") ?? false)
}

/// The lines of `bytes` ("\n" ends a line, a "\r" before it is dropped; a last line needs no "\n").
func splitLines(_ bytes: [UInt8]) -> [String] {
    var lines: [String] = []
    bytes.withUnsafeBytes { all in
        var start = 0
        while start < all.count {
            var end = start
            while end < all.count && all[end] != UInt8(ascii: "\n") { end += 1 }
            var last = end
            if last > start && all[last - 1] == UInt8(ascii: "\r") { last -= 1 }
            lines.append(String(decoding: UnsafeRawBufferPointer(rebasing: all[start..<last]), as: UTF8.self))
            start = end + 1
        }
    }
    return lines
}
