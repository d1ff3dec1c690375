import Benchmark
import SluiceExecution

// The execution layer: the pool's cost per task, and a fused narrow chain over in-memory Ints on local[1]
// and local[2] (issue "Execution engine" asks local[2] >= 1.7x local[1]).

let rows = 10_000_000
let values = Array(0..<rows)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        maxDuration: .seconds(3),
        maxIterations: 30
    )

    for workers in [1, 2] {
        Benchmark("Narrow chain map-filter-count, 10M Ints, local[\(workers)]") { benchmark in
            let pool = try WorkStealingPool(workers: workers)
            let engine = ExecutionEngine(pool: pool)
            let rdd = engine.parallelize(values, numSlices: 8).map { $0 &* 3 }.filter { $0 % 7 != 0 }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { blackHole(try rdd.count()) }
            benchmark.stopMeasurement()
            pool.shutdown()
        }
    }

    Benchmark(
        "Pool: one job of 10,000 empty tasks, local[2]",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .microseconds)
    ) { benchmark in
        let pool = try WorkStealingPool(workers: 2)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try pool.run(tasks: 10_000) { blackHole($0) } }
        benchmark.stopMeasurement()
        pool.shutdown()
    }
}
