import Benchmark
import Foundation
import Glibc
import Sluice

// A suite of its own, with no context and no threads: the Streaming suite's contexts run into
// package-benchmark's interposer crash on Linux (see README), which these single-threaded figures need not risk.
//
// What the monitoring page keeps (issue "Monitoring"): spark.streaming.ui.retainedBatches completed batches in
// the status model the page and the JSON API read. Target: 1000 retained batches hold <= 20 MB. Each batch
// is what a receiver job reports: one input stream (description, rate limit, PID terms) and two output
// operations; 2000 batches go through, so that the model trims to its bound as in a long run.

/// Batch `index` of a receiver job with two output operations, 500 ms apart, as the listener bus delivers it.
func monitoredBatch(_ index: Int) -> BatchInfo {
    let time = Time(milliseconds: 1_800_000_000_000 + Int64(index) * 500)
    let input = StreamInputInfo(
        inputStreamId: 0, numRecords: 500_000,
        metadata: ["Description": "5 blocks from GeneratorReceiver<String>-0"], rateLimit: 1_000_000, queuedBlocks: 1,
        pidTerms: PIDTerms(processingRate: 2_400_000, error: 10_000, historicalError: 0, dError: -3, unclampedRate: 990_000))
    var operations: [Int: OutputOperationInfo] = [:]
    for id in 0..<2 {
        operations[id] = OutputOperationInfo(
            batchTime: time, id: id, name: "foreachRDD", description: "foreachRDD of stream \(id + 3)",
            startTime: time.milliseconds + 2, endTime: time.milliseconds + 190, failureReason: nil)
    }
    return BatchInfo(
        batchTime: time, streamIdToInputInfo: [0: input], submissionTime: time.milliseconds + 1,
        processingStartTime: time.milliseconds + 2, processingEndTime: time.milliseconds + 190,
        outputOperationInfos: operations)
}

let benchmarks: @Sendable () -> Void = {
    monitoringRefreshBenchmark()
    Benchmark(
        "Monitoring:1000-retained-batches,bytes-held",
        configuration: .init(
            metrics: [.wallClock, .custom("bytes held", useScalingFactor: false)], warmupIterations: 0,
            maxIterations: 1)
    ) { benchmark in
        // Resident bytes grown while 2000 batches (each made afresh, as the bus delivers them) pass through a
        // model bounded at 1000: what it holds, plus what the allocator keeps of the freed ones (an upper bound).
        let before = residentBytes()
        let status = StreamingStatus(batchDuration: .milliseconds(500), retainedBatches: 1_000)
        status.onStreamingStarted(StreamingStarted(time: 1_800_000_000_000, appId: "local-1", appName: "bench"))
        for index in 0..<2_000 {
            let batch = monitoredBatch(index)
            status.onBatchSubmitted(batch)
            status.onBatchStarted(batch)
            for operation in batch.outputOperationInfos.values { status.onOutputOperationCompleted(operation) }
            status.onBatchCompleted(batch)
        }
        benchmark.measurement(.custom("bytes held", useScalingFactor: false), max(0, residentBytes() - before))
        blackHole(status)
    }
}

/// The process's resident bytes (/proc/self/statm).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

/// A status model holding `retained` completed batches of `monitoredBatch`.
func retainedStatus(_ retained: Int) -> StreamingStatus {
    let status = StreamingStatus(batchDuration: .milliseconds(500), retainedBatches: retained)
    status.onStreamingStarted(StreamingStarted(time: 1_800_000_000_000, appId: "local-1", appName: "bench"))
    for index in 0..<retained {
        let batch = monitoredBatch(index)
        status.onBatchSubmitted(batch)
        status.onBatchCompleted(batch)
    }
    return status
}

/// What one refresh of an open Streaming page costs the server at the retention bound: the page reads the
/// statistics, the batches and the receivers each second (and the engine's figures, which do not depend on the
/// batches), each encoded as the server does (JSONEncoder, pretty, sorted keys).
func monitoringRefreshBenchmark() {
    Benchmark(
        "Monitoring:page-refresh,1000-retained-batches",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .milliseconds, maxIterations: 50)
    ) { benchmark in
        let status = retainedStatus(1_000)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try encoder.encode(status.statistics()))
            blackHole(try encoder.encode(status.batches()))
            blackHole(try encoder.encode(status.receivers()))
        }
        benchmark.stopMeasurement()
    }
}
