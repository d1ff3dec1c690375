import Benchmark
import Dispatch
import Sluice

// The streaming core's own cost (issue "Streaming core"): empty batches with 10 output operations each, from
// the clock reaching the batch time to its last output operation finishing (job generation, scheduling, the
// jobs). An iteration drives 100 batches back to back; divide by 100 for one batch. Target <= 100 us a batch,
// so that 10 ms batches are realistic. Each batch includes three thread wake-ups (the benchmark's clock tick,
// generator to job thread, the last job back to the benchmark), about 26 us each on this machine.

/// Runs the workload once, briefly, before anything is measured: package-benchmark 1.38.1 on Linux with Swift
/// 6.3 can crash when threads first instantiate the same generic metadata at once (its issue #349, whose fix,
/// the RuntimeInterposer trait, needs a package not in this machine's mirror). Later contexts then find every
/// type's metadata made.
func warmUp() throws {
    let clock = ManualClock()
    let ssc = try StreamingContext(conf: StreamingConf().setMaster("local[2]").set("spark.ui.enabled", "false"), batchDuration: .milliseconds(10), clock: clock)
    let done = DispatchSemaphore(value: 0)
    let stream = ssc.queueStream(RDDQueue<Int>())
    for operation in 1...10 { stream.foreachRDD { _ in if operation == 10 { done.signal() } } }
    try ssc.start()
    for _ in 0..<20 {
        clock.advance(by: .milliseconds(10))
        done.wait()
    }
    ssc.stop()
}

let benchmarks: @Sendable () -> Void = {
    // Safe to force: the warm-up runs the benchmark's own workload on a fresh context.
    try! warmUp()
    try! warmUpStateful()

    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 5,
        maxDuration: .seconds(5),
        maxIterations: 200,
        thresholds: [
            .wallClock: .init(relative: [.p90: 60]),
            .mallocCountTotal: .init(relative: [.p90: 25]),
        ]
    )

    Benchmark("Empty-batches,10-output-operations,100-batches") { benchmark in
        let clock = ManualClock()
        let conf = StreamingConf().setMaster("local[2]").set("spark.ui.enabled", "false")
        let ssc = try StreamingContext(conf: conf, batchDuration: .milliseconds(10), clock: clock)
        let done = DispatchSemaphore(value: 0)
        let stream = ssc.queueStream(RDDQueue<Int>())
        for operation in 1...10 {
            stream.foreachRDD { _ in if operation == 10 { done.signal() } }
        }
        try ssc.start()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<100 {
                clock.advance(by: .milliseconds(10))
                done.wait()
            }
        }
        benchmark.stopMeasurement()
        ssc.stop()
    }

    statefulBenchmarks()
}
