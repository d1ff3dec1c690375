import Glibc
import Sluice
import Synchronization

/// `--workload idle`: what a running context costs when no data arrives. An empty queue stream with one output
/// operation runs a batch every interval for the measured time; the report is the CPU the process used, as a
/// share of one core (threads that wait should sleep, so this stays near 0%).
struct IdleWorkload {
    let batchMs: Int
    let seconds: Double
    let threads: Int?
    let conf: StreamingConf

    struct Report: Encodable {
        var workload = "idle"
        var batchMs: Int
        var seconds: Double
        var batches: Int
        var cpuSeconds: Double
        var corePercent: Double

        func table() -> String {
            [
                "Sluice streambench: idle context (an empty queue stream), batch \(batchMs) ms",
                "",
                "  batches     \(batches) in \(trimmed(seconds)) s",
                "  CPU         \(trimmed(cpuSeconds * 1_000)) ms used: \(trimmed(corePercent))% of one core",
                "",
            ].joined(separator: "\n")
        }
    }

    func run() throws -> Report {
        let ssc = try StreamingContext(conf: conf.master(threads: threads), batchDuration: .milliseconds(Int64(batchMs)))
        let batches = Atomic<Int>(0)
        ssc.queueStream(RDDQueue<Int>()).foreachRDD { rdd in
            _ = try rdd.count()
            batches.add(1, ordering: .relaxed)
        }
        try ssc.start()
        defer { ssc.stop() }
        // Let the threads settle, then measure.
        usleep(UInt32(min(2_000, batchMs * 2)) * 1_000)
        let (cpu0, wall0, batches0) = (cpuSeconds(), now(), batches.load(ordering: .relaxed))
        usleep(UInt32(min(Double(UInt32.max) / 1e6, seconds) * 1_000_000))
        let (cpu, wall) = (cpuSeconds() - cpu0, now() - wall0)
        if let error = ssc.error { throw error }
        return Report(
            batchMs: batchMs, seconds: wall, batches: batches.load(ordering: .relaxed) - batches0, cpuSeconds: cpu,
            corePercent: cpu / wall * 100)
    }
}
