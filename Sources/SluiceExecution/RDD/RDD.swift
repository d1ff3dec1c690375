import Synchronization

/// One partition's elements, handed to `mapPartitions` and `foreachPartition`.
public struct Partition<Element>: Sequence {
    let elements: [Element]

    /// The index of this partition in its RDD.
    public let index: Int

    public func makeIterator() -> IndexingIterator<[Element]> { elements.makeIterator() }

    /// The number of elements.
    public var count: Int { elements.count }
}

/// Where RDDs run: the pool that executes their tasks.
public final class ExecutionEngine: Sendable {
    /// The pool running every task.
    public let pool: WorkStealingPool

    /// An engine over `pool`.
    public init(pool: WorkStealingPool) { self.pool = pool }

    /// An RDD of `elements` in `numSlices` partitions; partition i holds elements `[i*n/p, (i+1)*n/p)`, as in
    /// Spark's `parallelize`.
    public func parallelize<T: Sendable>(_ elements: [T], numSlices: Int) -> RDD<T> {
        let p = max(1, numSlices)
        let n = elements.count
        return RDD(engine: self, numPartitions: p) { partition, sink in
            let start = partition * n / p
            let end = (partition + 1) * n / p
            for i in start..<end { try sink(elements[i]) }
        }
    }
}

/// One batch of one stream, split into partitions (Spark's RDD): a value type describing how to compute each
/// partition. Transformations are lazy and narrow ones fuse: `map`, `flatMap`, `filter` and `union` wrap the
/// parent's producer, so one pass over a partition feeds each element through the whole chain into the
/// consumer (an action, an aggregator), with no intermediate array per operator. Actions run one job on the
/// engine's pool, one task per partition, and throw the first error a closure threw.
public struct RDD<Element: Sendable>: Sendable {
    /// Pushes partition `index`'s elements, in order, into `sink`.
    typealias Producer = @Sendable (_ index: Int, _ sink: (Element) throws -> Void) throws -> Void

    /// The engine the RDD runs on.
    public let engine: ExecutionEngine
    /// The number of partitions.
    public let numPartitions: Int
    let produce: Producer

    init(engine: ExecutionEngine, numPartitions: Int, produce: @escaping Producer) {
        self.engine = engine
        self.numPartitions = numPartitions
        self.produce = produce
    }

    // MARK: Narrow transformations (fused)

    /// Applies `f` to every element.
    public func map<U: Sendable>(_ f: @escaping @Sendable (Element) throws -> U) -> RDD<U> {
        let parent = produce
        return RDD<U>(engine: engine, numPartitions: numPartitions) { p, sink in
            try parent(p) { try sink(f($0)) }
        }
    }

    /// Applies `f` to every element and flattens the sequences it returns.
    public func flatMap<S: Sequence & SendableMetatype>(_ f: @escaping @Sendable (Element) throws -> S) -> RDD<S.Element>
    where S.Element: Sendable {
        let parent = produce
        return RDD<S.Element>(engine: engine, numPartitions: numPartitions) { p, sink in
            try parent(p) { for x in try f($0) { try sink(x) } }
        }
    }

    /// Keeps the elements for which `predicate` is true.
    public func filter(_ predicate: @escaping @Sendable (Element) throws -> Bool) -> RDD<Element> {
        let parent = produce
        return RDD(engine: engine, numPartitions: numPartitions) { p, sink in
            try parent(p) { if try predicate($0) { try sink($0) } }
        }
    }

    /// Applies `f` to each whole partition.
    public func mapPartitions<S: Sequence & SendableMetatype>(_ f: @escaping @Sendable (Partition<Element>) throws -> S) -> RDD<S.Element>
    where S.Element: Sendable {
        let parent = produce
        return RDD<S.Element>(engine: engine, numPartitions: numPartitions) { p, sink in
            var elements: [Element] = []
            try parent(p) { elements.append($0) }
            for x in try f(Partition(elements: elements, index: p)) { try sink(x) }
        }
    }

    /// Each partition as one array element.
    public func glom() -> RDD<[Element]> {
        mapPartitions { [Array($0)] }
    }

    /// The partitions of `self` followed by those of `other` (Spark's union: no shuffle).
    public func union(_ other: RDD<Element>) -> RDD<Element> {
        let (first, second, split) = (produce, other.produce, numPartitions)
        return RDD(engine: engine, numPartitions: numPartitions + other.numPartitions) { p, sink in
            if p < split { try first(p, sink) } else { try second(p - split, sink) }
        }
    }

    // MARK: Running

    /// Drives one partition: calls the sink with each element, in order.
    typealias Drive = ((Element) throws -> Void) throws -> Void

    /// Runs one task for each of `partitions` (all by default); `body` consumes its partition as it is
    /// produced and returns the partition's result. Results come back in the order of `partitions`.
    func runJob<R: Sendable>(
        partitions: [Int]? = nil, _ body: @escaping @Sendable (_ partition: Int, _ drive: Drive) throws -> R
    ) throws -> [R] {
        let produce = self.produce
        let chosen = partitions ?? Array(0..<numPartitions)
        let results = ResultSlots<R>(count: chosen.count)
        try engine.pool.run(tasks: chosen.count) { slot in
            let p = chosen[slot]
            let result = try TaskContext.withPartition(p) { try body(p) { sink in try produce(p, sink) } }
            results.set(slot, result)
        }
        return results.values()
    }
}

/// One result per task, filled in by the tasks of a job.
final class ResultSlots<R: Sendable>: Sendable {
    private let slots: Mutex<[R?]>

    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }

    func set(_ index: Int, _ value: R) { slots.withLock { $0[index] = value } }

    /// The results; every slot was set when the job succeeded.
    func values() -> [R] { slots.withLock { $0.compactMap { $0 } } }
}
