import Glibc
import SluiceColumnar
import Synchronization

/// An engine setting that cannot be used: which setting, the value, and what it accepts.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The setting (`spark.master`, `spark.default.parallelism`, ...).
    public var key: String
    /// The value given.
    public var value: String
    /// What the setting accepts, in words.
    public var expected: String

    public init(key: String, value: String, expected: String) {
        self.key = key
        self.value = value
        self.expected = expected
    }

    public var description: String { "\(key) = '\(value)' is not valid: expected \(expected)" }
}

/// Where tasks run, parsed from Spark's `spark.master`: Sluice runs in one process, so only the local forms.
public enum Master {
    /// The number of worker threads for `master`: `local` (1), `local[n]`, `local[*]` (one per core) and
    /// `local[n, maxFailures]` (failures are not retried here, so the second number is accepted and unused).
    /// - Throws: ``ConfigurationError`` naming the value and the accepted forms.
    public static func workers(for master: String) throws(ConfigurationError) -> Int {
        let text = master.trimmingSpaces
        let error = ConfigurationError(
            key: "spark.master", value: master,
            expected: "local, local[n], local[*] or local[n, maxFailures] with n >= 1 (Sluice runs in one process)")
        if text == "local" { return 1 }
        guard text.hasPrefix("local["), text.hasSuffix("]") else { throw error }
        let inside = text.dropFirst(6).dropLast()
        let threads = inside.split(separator: ",", maxSplits: 1).first.map { String($0).trimmingSpaces } ?? ""
        if threads == "*" { return onlineCores }
        guard let n = Int(threads), n >= 1 else { throw error }
        return n
    }

    /// The number of cores the system has online.
    public static var onlineCores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}

extension String {
    var trimmingSpaces: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}

/// Where RDDs run: the pool that executes their tasks, the memory budget their shuffles and caches reserve
/// from, the block store of cached partitions, and the directory spilled data goes to.
public final class ExecutionEngine: Sendable {
    /// The pool running every task.
    public let pool: WorkStealingPool
    /// The memory budget (`sluice.memory.limit`) shuffles and cached partitions reserve from.
    public let memory: MemoryBudget
    /// Partitions for shuffles with no `numPartitions` (Spark's `defaultParallelism`: the configured
    /// `spark.default.parallelism`, else the number of workers).
    public let defaultParallelism: Int
    /// Whether `spark.default.parallelism` was set; Spark's RDD shuffles then use it instead of the largest
    /// parent's partition count.
    public let parallelismIsConfigured: Bool
    /// Where spilled blocks go.
    public let spill: SpillDirectory
    /// Cached partitions of persisted RDDs.
    let blockStore: BlockStore
    /// The zstd level of spilled and serialized data (`sluice.zstd.level`).
    public let compressionLevel: Int32
    /// The system calls files go through (tests inject failures).
    public let systemCalls: SystemCalls
    private let nextId = Atomic<Int>(0)

    /// An engine over `pool`.
    /// - Parameters:
    ///   - memory: the budget shuffles and caches reserve from (unlimited by default).
    ///   - spillDirectory: the directory under which this engine's spill directory is made
    ///     (`sluice.spill.dir`; default `$TMPDIR` or `/tmp`).
    ///   - defaultParallelism: `spark.default.parallelism`, when set.
    ///   - compressionLevel: zstd level for spilled data (`sluice.zstd.level`).
    ///   - calls: the system calls spill files go through (tests inject failures).
    public init(
        pool: WorkStealingPool, memory: MemoryBudget = MemoryBudget(), spillDirectory: String? = nil,
        defaultParallelism: Int? = nil, compressionLevel: Int32 = 1, calls: SystemCalls = .live
    ) {
        self.pool = pool
        self.memory = memory
        self.defaultParallelism = max(1, defaultParallelism ?? pool.workerCount)
        self.parallelismIsConfigured = defaultParallelism != nil
        self.spill = SpillDirectory(parent: spillDirectory, calls: calls)
        self.compressionLevel = compressionLevel
        self.systemCalls = calls
        self.blockStore = BlockStore(memory: memory)
    }

    /// An engine with a pool of as many workers as `master` asks for (`local[2]`, `local[*]`, ...).
    /// - Throws: ``ConfigurationError`` for a master Sluice cannot run; ``PoolError``.
    public convenience init(
        master: String, memory: MemoryBudget = MemoryBudget(), spillDirectory: String? = nil,
        defaultParallelism: Int? = nil
    ) throws {
        let pool = try WorkStealingPool(workers: try Master.workers(for: master))
        self.init(pool: pool, memory: memory, spillDirectory: spillDirectory, defaultParallelism: defaultParallelism)
    }

    /// The RDD an operation returns for a partition count below 1 (or over `Int32.max`): its first action throws
    /// ``StreamingError/invalidPartitionCount(_:_:)`` naming the operation and the value (the operations cannot
    /// throw where they are called, so the refusal comes with the first use, never a trap or a silent clamp).
    @inlinable
    public func refused<T: Sendable>(_ operation: String, numPartitions: Int?) -> RDD<T> {
        failed(.invalidPartitionCount(operation, numPartitions ?? 0))
    }

    /// An RDD whose every action throws `error`.
    @inlinable
    public func failed<T: Sendable>(_ error: StreamingError) -> RDD<T> {
        RDD(engine: self, numPartitions: 1, lineage: Lineage()) { _, _ in throw error }
    }

    /// A new identifier for a shuffle or a persisted RDD (they name spill files and memory consumers).
    func makeId() -> Int { nextId.add(1, ordering: .relaxed).newValue }

    /// An RDD of `elements` in `numSlices` partitions (`defaultParallelism` when nil); partition i holds
    /// elements `[i*n/p, (i+1)*n/p)`, as in Spark's `parallelize`.
    @inlinable
    public func parallelize<T: Sendable>(_ elements: [T], numSlices: Int? = nil) -> RDD<T> {
        if let numSlices, numSlices < 1 {
            return failed(StreamingError(.invalidArgument, "parallelize: numSlices must be at least 1, got \(numSlices)"))
        }
        let p = numSlices ?? defaultParallelism
        let n = elements.count
        return RDD(engine: self, numPartitions: p, sliceable: true, knownSize: { (($0 + 1) * n / p) - ($0 * n / p) }) {
            partition, sink in
            let start = partition * n / p
            let end = (partition + 1) * n / p
            let slice = TaskContext.slice.range(of: end - start)
            try elements.withUnsafeBufferPointer { all in
                try emitChunks(UnsafeBufferPointer(rebasing: all[start + slice.lowerBound..<start + slice.upperBound]), to: sink)
            }
        }
    }

    /// An RDD with no partitions.
    public func emptyRDD<T: Sendable>(of type: T.Type = T.self) -> RDD<T> {
        RDD(engine: self, numPartitions: 0) { _, _ in }
    }

    /// What spilling has done so far.
    public var spillStatistics: SpillStatistics { spill.statistics }
}
