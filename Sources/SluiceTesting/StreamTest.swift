import Glibc
import Sluice
import SluiceColumnar
import Synchronization

/// Runs streaming programs deterministically in tests: on a ``ManualClock`` that the kit moves batch by batch,
/// collecting what the program's output stream produced (no sleeps). Runs are serialized, so tests calling it
/// in parallel are safe (one streaming context is active per process).
public enum StreamTest {
    private static let exclusive = Mutex(())

    /// Runs `body` while no other `StreamTest` run (and no other `exclusively` body) runs: for tests that make
    /// a ``StreamingContext`` of their own.
    public static func exclusively<R>(_ body: () throws -> R) rethrows -> R {
        try exclusive.withLock { _ in try body() }
    }

    /// Runs `operation` over `input` on a manual clock and returns what the resulting stream produced: one
    /// inner array per batch time at which it generated an RDD (a stream sliding every 2 batches yields one
    /// every 2 batches; an empty RDD gives an empty array). A `nil` input batch means the input stream
    /// generates no RDD at that time (Spark's null batch). `numBatches` defaults to `input.count`; batches past
    /// the input are empty; input rows past `numBatches` are ignored.
    /// - Throws: the first error of any batch (a job that threw, a batch that could not be generated).
    public static func run<I: Sendable, O: Sendable>(
        input: [[I]?], numBatches: Int? = nil, batchDuration: Duration = .seconds(1),
        conf: StreamingConf = StreamingConf(),
        _ operation: (DStream<I>) throws -> DStream<O>
    ) throws -> [[O]] {
        let n = numBatches ?? input.count
        return try run(numBatches: n, batchDuration: batchDuration, conf: conf) { context in
            try operation(context.sequenceStream(Array(input.prefix(n))))
        }
    }

    /// As ``run(input:numBatches:batchDuration:conf:_:)`` with two input streams.
    public static func run<I1: Sendable, I2: Sendable, O: Sendable>(
        input: [[I1]?], _ input2: [[I2]?], numBatches: Int? = nil, batchDuration: Duration = .seconds(1),
        conf: StreamingConf = StreamingConf(),
        _ operation: (DStream<I1>, DStream<I2>) throws -> DStream<O>
    ) throws -> [[O]] {
        let n = numBatches ?? max(input.count, input2.count)
        return try run(numBatches: n, batchDuration: batchDuration, conf: conf) { context in
            try operation(
                context.sequenceStream(Array(input.prefix(n))), context.sequenceStream(Array(input2.prefix(n))))
        }
    }

    /// Builds the streams from the context itself (queueStream, union, parallelize, ...); `beforeBatch` runs
    /// before the clock reaches batch i (0-based), e.g. to enqueue RDDs.
    ///
    /// The context gets `local[2]` and `spark.default.parallelism` 2 unless `conf` sets them (as Spark's test
    /// base), and a temporary checkpoint directory, removed afterwards. The manual clock starts at 0, so batch i
    /// (1-based) has time i × batchDuration.
    public static func run<O: Sendable>(
        numBatches: Int, batchDuration: Duration = .seconds(1), conf: StreamingConf = StreamingConf(),
        beforeBatch: ((Int, StreamingContext) throws -> Void)? = nil,
        _ setup: (StreamingContext) throws -> DStream<O>
    ) throws -> [[O]] {
        try exclusively {
            var conf = conf
            if !conf.contains("spark.master") { conf = conf.setMaster("local[2]") }
            if !conf.contains("spark.default.parallelism") { conf = conf.set("spark.default.parallelism", "2") }
            let clock = ManualClock()
            let context = try StreamingContext(conf: conf, batchDuration: batchDuration, clock: clock)
            let checkpoints = try TemporaryDirectory(prefix: "sluice-streamtest")
            defer {
                context.stop()
                checkpoints.remove()
            }
            context.checkpoint(checkpoints.path)
            let output = try setup(context)
            let collected = Mutex<[(Time, [O])]>([])
            output.foreachRDD { rdd, time in
                let elements = try rdd.collect()
                collected.withLock { $0.append((time, elements)) }
            }
            try context.start()
            for i in 0..<numBatches {
                try beforeBatch?(i, context)
                let time = Time(milliseconds: Int64(i + 1) * batchDuration.wholeMilliseconds)
                clock.set(to: time)
                let done = context.waitUntilBatchHandled(time, timeout: .seconds(120))
                if let error = context.error { throw error }
                guard done else {
                    throw StreamingError(.internalFailure, "batch \(time) did not finish within 120 s")
                }
            }
            context.stop()
            if let error = context.error { throw error }
            return collected.withLock { $0 }.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }
}

/// A directory made under the system's temporary directory, removed (with its contents) by `remove()`.
public struct TemporaryDirectory: Sendable {
    /// Its path.
    public let path: String

    /// Makes a fresh directory named `prefix-XXXXXX`.
    /// - Throws: ``StreamingError`` when it cannot be made.
    public init(prefix: String = "sluice") throws {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw StreamingError(.internalFailure, "cannot make a temporary directory in \(base) (errno \(errno))")
        }
        path = String(cString: made)
    }

    /// The regular files below the directory, recursively, sorted.
    public var files: [String] { entries(below: path).filter { !$0.isDirectory }.map(\.path).sorted() }

    /// Removes the directory and everything in it.
    public func remove() { removeTree(path) }

    private func entries(below dir: String) -> [(path: String, isDirectory: Bool)] {
        (directoryNames(dir) ?? []).flatMap { name -> [(path: String, isDirectory: Bool)] in
            let full = "\(dir)/\(name)"
            return isDirectory(full) ? [(full, true)] + entries(below: full) : [(full, false)]
        }
    }
}
