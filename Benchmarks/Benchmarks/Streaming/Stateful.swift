import Benchmark
import Dispatch
import Sluice
import SluiceTesting
import Synchronization

// Windows and state (issue "Windows, stateful operations and stream joins"). Each iteration is one batch: the
// clock moves one interval and the benchmark waits for the batch's output operation (a count). The figures
// to compare are between the sizes of one workload:
//   - windowed word count with an inverse reduce, 500 ms slide: a 60 s window should cost about what a 5 s
//     one does (the cost of a batch is the data entering and leaving, not the window);
//   - mapWithState, 100k records a batch: at 1k keys the operator's own cost per record (target <= 15 ns); at 10M
//     keys the extra cost over 100k keys (both jobs in each batch, one after the other), next to the C floor's
//     (Benchmarks/Limits/state_lookup.c, whose two tables also take turns);
//   - updateStateByKey, which calls its function for every key each batch: the cost per key.

/// A streaming context on a manual clock whose one output operation signals each batch's end.
final class BatchDriver: Sendable {
    let clock = ManualClock()
    let context: StreamingContext
    let interval: Duration
    let checkpoints: TemporaryDirectory
    private let done = DispatchSemaphore(value: 0)

    init(interval: Duration, _ build: (StreamingContext, @escaping @Sendable () -> Void) throws -> Void) throws {
        self.interval = interval
        checkpoints = try TemporaryDirectory(prefix: "sluice-bench")
        // Checkpoints only at the first batch: these figures are the batches' own work (`streambench --workload
        // recovery` measures what checkpoints cost).
        context = try StreamingContext(
            conf: StreamingConf().setMaster("local[2]").set("sluice.checkpoint.interval", "3600s")
                .set("spark.ui.enabled", "false"),
            batchDuration: interval, clock: clock)
        context.checkpoint(checkpoints.path)
        let done = self.done
        try build(context) { done.signal() }
        try context.start()
    }

    /// Runs the next batch to its end.
    func batch() {
        clock.advance(by: interval)
        done.wait()
    }

    func stop() {
        context.stop()
        checkpoints.remove()
    }
}

/// Word counts over a sliding window with an inverse reduce: 20,000 lines of 10 words (10,000 distinct) each
/// batch.
func windowedWordCount(window: Duration) throws -> BatchDriver {
    var random = SeededGenerator(seed: 3)
    let lines = (0..<20_000).map { _ in
        (0..<10).map { _ in "w\(Int.random(in: 0..<10_000, using: &random))" }.joined(separator: " ")
    }
    return try BatchDriver(interval: .milliseconds(500)) { ssc, signal in
        let batch = ssc.parallelize(lines, numSlices: 2)
        ssc.queueStream(RDDQueue<String>(), defaultRDD: batch)
            .flatMap { $0.split(ascii: " ") }.map { ($0, 1) }
            .reduceByKeyAndWindow(+, inverse: -, windowDuration: window, slideDuration: .milliseconds(500))
            .foreachRDD { rdd in
                _ = try rdd.count()
                signal()
            }
    }
}

/// Running counts with mapWithState: `keys` keys of initial state, 100,000 records a batch (see
/// ``addStateCount(to:keys:done:)``).
func mapWithStateCounts(keys: Int) throws -> BatchDriver {
    try BatchDriver(interval: .seconds(1)) { ssc, signal in addStateCount(to: ssc, keys: keys) { _ in signal() } }
}

/// The 100k-key and the 10M-key running counts in one context (a process runs one context at a time): each
/// batch runs the 100k-key job, then the 10M-key one; `jobs` holds each one's time in the last batch.
func mapWithStateCountsInTurn(_ jobs: JobTimes) throws -> BatchDriver {
    try BatchDriver(interval: .seconds(1)) { ssc, signal in
        for (job, keys) in [100_000, 10_000_000].enumerated() {
            addStateCount(to: ssc, keys: keys) { nanoseconds in
                jobs.set(job, nanoseconds)
                if job == 1 { signal() }
            }
        }
    }
}

/// Adds a running count with mapWithState to `ssc`: `keys` keys of initial state, 100,000 records a batch over
/// random keys (8 batches cycled), an idle timeout of an hour (so that every touched key re-arms its timer).
/// `done` gets the time each batch's job took (the state's update and the count of what it returned), in
/// nanoseconds.
func addStateCount(to ssc: StreamingContext, keys: Int, done: @escaping @Sendable (Int) -> Void) {
    var random = SeededGenerator(seed: 5)
    let batches = (0..<8).map { _ in (0..<100_000).map { _ in (Int.random(in: 0..<keys, using: &random), 1) } }
    let queue = RDDQueue<(Int, Int)>()
    for i in 0..<10_000 { queue.enqueue(ssc.parallelize(batches[i % 8], numSlices: 2)) }
    let spec = StateSpec<Int, Int, Int, Int>.function { _, value, state in
        let count = (state.getOption() ?? 0) + (value ?? 0)
        try state.update(count)
        return count
    }
    .timeout(.seconds(3_600))
    .initialState(ssc.parallelize((0..<keys).map { ($0, 0) }, numSlices: 8))
    ssc.queueStream(queue).mapWithState(spec).foreachRDD { rdd in
        let start = ContinuousClock.now
        _ = try rdd.count()
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        done(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
    }
}

/// The time of each job of a batch, in nanoseconds, as the jobs report it.
final class JobTimes: Sendable {
    private let times: Mutex<[Int]>
    init(jobs: Int) { times = Mutex(Array(repeating: 0, count: jobs)) }
    func set(_ job: Int, _ nanoseconds: Int) { times.withLock { $0[job] = nanoseconds } }
    func time(of job: Int) -> Int { times.withLock { $0[job] } }
}

/// Running sums with updateStateByKey: `keys` keys of initial state, 10,000 records a batch.
func updateStateSums(keys: Int) throws -> BatchDriver {
    var random = SeededGenerator(seed: 7)
    let batch = (0..<10_000).map { _ in (Int.random(in: 0..<keys, using: &random), 1) }
    return try BatchDriver(interval: .seconds(1)) { ssc, signal in
        ssc.queueStream(RDDQueue<(Int, Int)>(), defaultRDD: ssc.parallelize(batch, numSlices: 2))
            .updateStateByKey(initialState: ssc.parallelize((0..<keys).map { ($0, 0) }, numSlices: 8)) {
                (values: [Int], state: Int?) -> Int? in values.reduce(state ?? 0, +)
            }
            .foreachRDD { rdd in
                _ = try rdd.count()
                signal()
            }
    }
}

/// The driver a benchmark's setup made, for its iterations and teardown.
final class DriverSlot: Sendable {
    private let driver = Mutex<BatchDriver?>(nil)
    var current: BatchDriver? { driver.withLock { $0 } }
    func set(_ new: BatchDriver?) { driver.withLock { $0 = new } }
}

/// Registers one benchmark per workload size: its setup makes the context and runs `warmUpBatches` batches
/// (to fill the window, load the state), then each iteration is one batch.
func statefulBenchmarks() {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock],
        timeUnits: .microseconds,
        warmupIterations: 0,
        maxDuration: .seconds(10),
        maxIterations: 100,
        thresholds: [.wallClock: .init(relative: [.p90: 60])]
    )
    /// `afterBatch` runs after each batch (to record what the batch's jobs measured).
    func register(
        _ name: String, configuration custom: Benchmark.Configuration? = nil, warmUpBatches: Int,
        _ make: @escaping @Sendable () throws -> BatchDriver,
        afterBatch: @escaping @Sendable (Benchmark) -> Void = { _ in }
    ) {
        let slot = DriverSlot()
        Benchmark(
            name, configuration: custom ?? configuration,
            closure: { benchmark in
                guard let driver = slot.current else { return benchmark.error("\(name): setup made no context") }
                for _ in benchmark.scaledIterations {
                    driver.batch()
                    afterBatch(benchmark)
                }
            },
            setup: {
                let driver = try make()
                for _ in 0..<warmUpBatches { driver.batch() }
                slot.set(driver)
            },
            teardown: {
                slot.current?.stop()
                slot.set(nil)
            })
    }
    for seconds in [5, 60] {
        register("Windowed-word-count,inverse,\(seconds)s-window,500ms-slide,200k-words-a-batch", warmUpBatches: seconds * 2 + 5) {
            try windowedWordCount(window: .seconds(seconds))
        }
    }
    // 1k keys: the per-record cost of the operator itself (the state stays in cache); divide by 100,000.
    register("mapWithState,1k-keys,100k-records-a-batch", warmUpBatches: 10) { try mapWithStateCounts(keys: 1_000) }
    // The 10M-key state's extra cost over the 100k-key one: both jobs in each batch, one after the other, so that
    // their times come from the same seconds (this machine kind runs a job up to 1.5x slower for seconds at a
    // time, and separate runs of the two sizes made their difference swing more than twofold). Each job's time
    // is a metric of its own; the wall clock is the batch's.
    let jobs = JobTimes(jobs: 2)
    let jobMetrics = [
        BenchmarkMetric.custom("100k-keys job (ns)", useScalingFactor: false),
        BenchmarkMetric.custom("10M-keys job (ns)", useScalingFactor: false),
    ]
    var inTurn = configuration
    inTurn.metrics = [.wallClock] + jobMetrics
    inTurn.maxIterations = 300  // the floor's batches
    inTurn.thresholds = nil
    register(
        "mapWithState,100k-keys-then-10M-keys,100k-records-a-batch-each", configuration: inTurn, warmUpBatches: 10,
        { try mapWithStateCountsInTurn(jobs) },
        afterBatch: { benchmark in
            for (job, metric) in jobMetrics.enumerated() { benchmark.measurement(metric, jobs.time(of: job)) }
        })
    register("updateStateByKey,1M-keys,10k-records-a-batch", warmUpBatches: 3) {
        try updateStateSums(keys: 1_000_000)
    }
}

/// Runs each stateful workload a few batches at a small size (see ``warmUp()``), one context at a time.
func warmUpStateful() throws {
    let makers: [() throws -> BatchDriver] = [
        { try windowedWordCount(window: .seconds(2)) }, { try mapWithStateCounts(keys: 1_000) },
        { try updateStateSums(keys: 1_000) },
    ]
    for make in makers {
        let driver = try make()
        for _ in 0..<6 { driver.batch() }
        driver.stop()
    }
}
