import Dispatch
import Glibc
import Sluice
import SluiceColumnar
import SluiceTesting
import Synchronization

/// `--workload wal`: what the receivers' write-ahead log sustains with fsync on. `writers` threads append
/// blocks of `linesPerBlock` generator lines (10 words; zstd at `level`, as the log compresses them) to one log for the
/// measured time, each append returning only once its block is on stable storage; appends that arrive while a
/// flush runs share the next one (group commit).
struct WALWorkload {
    let writers: Int
    let seconds: Double
    let linesPerBlock: Int
    let level: Int32?

    struct Report: Encodable {
        var workload = "wal"
        var writers: Int
        var linesPerBlock: Int
        var seconds: Double
        var appends: Int
        var appendsPerSecond: Double
        /// Uncompressed block bytes appended per second.
        var megabytesPerSecond: Double
        var fsyncs: Int
        var appendsPerFsync: Double

        func table() -> String {
            [
                "Sluice streambench: write-ahead log, \(writers) writer\(writers == 1 ? "" : "s"), blocks of "
                    + "\(linesPerBlock) lines, fsync on",
                "",
                "  appends     \(appends) in \(trimmed(seconds)) s: \(formatRate(appendsPerSecond))/s, "
                    + "\(trimmed(megabytesPerSecond)) MB/s",
                "  fsyncs      \(fsyncs) (\(trimmed(appendsPerFsync)) appends per fsync)",
                "",
            ].joined(separator: "\n")
        }
    }

    func run() throws -> Report {
        let directory = try TemporaryDirectory(prefix: "streambench-wal")
        defer { directory.remove() }
        let fsyncs = Atomic<Int>(0)
        var calls = SystemCalls.live
        let live = SystemCalls.live
        calls.fsync = { fd in
            fsyncs.add(1, ordering: .relaxed)
            return live.fsync(fd)
        }
        let log = WriteAheadLog(
            directory: directory.path, after: -1, existing: [], calls: calls, level: level, fsync: true,
            rollInterval: .seconds(60), maxFailures: 1)
        defer { log.close() }
        var lines: [String] = []
        var random = WyRand(seed: 42)
        LineMaker(wordsPerLine: 10, vocabulary: 10_000).lines(linesPerBlock, &random) {
            lines.append(String(decoding: $0, as: UTF8.self))
        }
        let block = try ElementCodecs.standard(String.self).encode(lines)
        let bytesPerBlock = block.withUnsafeBytes { $0.count }
        let appended = Atomic<Int>(0)
        let failure = Mutex<(any Error)?>(nil)
        let start = now()
        let end = start + seconds
        DispatchQueue.concurrentPerform(iterations: writers) { writer in
            var id = Int64(writer) << 40
            while now() < end {
                do {
                    _ = try log.append(block, id: StreamBlockId(streamId: 0, uniqueId: id), count: linesPerBlock)
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                    return
                }
                id += 1
                appended.add(1, ordering: .relaxed)
            }
        }
        let elapsed = now() - start
        if let error = failure.withLock({ $0 }) { throw error }
        let appends = appended.load(ordering: .relaxed)
        let syncs = fsyncs.load(ordering: .relaxed)
        return Report(
            writers: writers, linesPerBlock: linesPerBlock, seconds: elapsed, appends: appends, appendsPerSecond: Double(appends) / elapsed,
            megabytesPerSecond: Double(appends * bytesPerBlock) / elapsed / 1e6, fsyncs: syncs,
            appendsPerFsync: syncs == 0 ? 0 : Double(appends) / Double(syncs))
    }
}
