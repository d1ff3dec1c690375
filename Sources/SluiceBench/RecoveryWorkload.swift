import Glibc
import Sluice
import SluiceTesting
import SluiceColumnar
import Synchronization

/// `--workload recovery`: what fault tolerance costs with a large state. A `mapWithState` running count over
/// `keys` keys, fed by the generator at the rate given, checkpoints every batch for the measured time; then the
/// program is dropped without a graceful stop (as a crash leaves it) and rebuilt with `getOrCreate`, which
/// reads the newest checkpoint, restores the state and runs the missed batches.
struct RecoveryWorkload {
    let batchMs: Int
    let rate: Int
    let seconds: Double
    let keys: Int
    let threads: Int?
    let conf: StreamingConf

    struct Report {
        var checkpoints: CheckpointStatistics
        var keysInState: Int
        var getOrCreateMs: Double
        var startMs: Double
        var firstBatchMs: Double?
        var settings: RecoveryWorkload

        func table() -> String {
            let c = checkpoints
            return [
                "Sluice streambench: recovery, mapWithState over \(formatRate(Double(settings.keys))) keys, batch "
                    + "\(settings.batchMs) ms, \(formatRate(Double(settings.rate))) records/s, checkpoint every batch",
                "",
                "  state               \(keysInState) keys at the last checkpoint",
                "  checkpoint write    \(c.count) written, mean \(trimmed(c.meanMilliseconds)) ms, max "
                    + "\(trimmed(c.maxMilliseconds)) ms, \(c.lastBytes / 1_000_000) MB of state before compression",
                "  recovery            getOrCreate (read and check) \(trimmed(getOrCreateMs)) ms, start (restore) "
                    + "\(trimmed(startMs)) ms, first batch done \(firstBatchMs.map { "\(trimmed($0)) ms" } ?? "never") "
                    + "after getOrCreate began",
                "",
            ].joined(separator: "\n")
        }
    }

    /// A listener that notes when the first batch completes.
    final class FirstBatch: StreamingListener, Sendable {
        let done = Mutex<UInt64?>(nil)
        func onBatchCompleted(_ batch: BatchInfo) {
            done.withLock { if $0 == nil { $0 = monotonic() } }
        }
    }

    static func monotonic() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Counts what it is told (the keys in the state after a batch).
    final class Counter: Sendable {
        let value = Mutex(0)
    }

    func makeContext(_ directory: String, counting: Counter) throws -> StreamingContext {
        var conf = self.conf.master(threads: threads)
            .set("sluice.checkpoint.interval", "\(batchMs)ms")
        if !conf.contains("spark.streaming.blockInterval") {
            conf = conf.set("spark.streaming.blockInterval", "\(max(1, min(200, batchMs / 2)))ms")
        }
        let ssc = try StreamingContext(conf: conf, batchDuration: .milliseconds(Int64(batchMs)))
        ssc.checkpoint(directory)
        let spec = StateSpec<Int, Int, Int, Int>.function { _, value, state in
            try state.update((state.getOption() ?? 0) + (value ?? 0))
            return nil
        }
        ssc.generatedIntStream(ratePerSecond: rate, distinctValues: keys).map { ($0, 1) }.mapWithState(spec)
            .stateSnapshots().foreachRDD { rdd in
                let n = try rdd.count()
                counting.value.withLock { $0 = n }
            }
        return ssc
    }

    func run() throws -> Report {
        let temporary = try TemporaryDirectory(prefix: "streambench")
        defer { temporary.remove() }
        let directory = temporary.path
        let keysSeen = Counter()
        let first = try makeContext(directory, counting: keysSeen)
        try first.start()
        usleep(UInt32(min(Double(UInt32.max) / 1e6, seconds) * 1_000_000))
        if let error = first.error { throw error }
        let checkpoints = first.checkpointStatistics
        first.stop()  // no graceful stop and no final checkpoint: what a crash leaves

        let begin = Self.monotonic()
        let listener = FirstBatch()
        let second = try StreamingContext.getOrCreate(checkpointPath: directory) {
            let ssc = try makeContext(directory, counting: Counter())
            ssc.addStreamingListener(listener)
            return ssc
        }
        let created = Self.monotonic()
        try second.start()
        let started = Self.monotonic()
        var waited = 0
        while listener.done.withLock({ $0 }) == nil && waited < 30_000 {
            usleep(5_000)
            waited += 5
        }
        if let error = second.error { throw error }
        second.stop()
        func ms(_ from: UInt64, _ to: UInt64) -> Double { Double(to - from) / 1e6 }
        return Report(
            checkpoints: checkpoints, keysInState: keysSeen.value.withLock { $0 }, getOrCreateMs: ms(begin, created),
            startMs: ms(created, started), firstBatchMs: listener.done.withLock { $0 }.map { ms(begin, $0) },
            settings: self)
    }
}

extension StreamingConf {
    /// The settings with `spark.master` at `local[threads]` for `--local`, else as they say (else `local[*]`).
    func master(threads: Int?) -> StreamingConf {
        setMaster(threads.map { "local[\($0)]" } ?? (get("spark.master") ?? "local[*]"))
    }
}
