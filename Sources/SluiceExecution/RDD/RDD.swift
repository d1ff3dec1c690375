import Synchronization

/// One batch of one stream, split into partitions (Spark's RDD): a value type describing how to compute each
/// partition.
///
/// Transformations are lazy. Narrow ones fuse: `map`, `flatMap`, `filter`, `mapValues`, `union`, ... wrap
/// their parent's producer, so one pass over a partition feeds each chunk of elements through the whole chain
/// into its consumer (an action, a shuffle's map-side combiner, an output), with no intermediate collection
/// per operator. Shuffles (`reduceByKey`, `groupByKey`, `join`, ...) split the lineage into stages: before an
/// action runs its tasks, the map stages it depends on run to completion (as Spark's scheduler does), and
/// their output stays until the shuffled RDD is released. Actions run one job on the engine's pool, one task
/// per partition, and throw the first error a closure threw.
///
/// The transformations are `@inlinable` so that the compiler specializes them, and the closures they call,
/// for the caller's element types: the per-element work then runs without generic indirection.
public struct RDD<Element: Sendable>: Sendable {
    /// Receives a partition's elements, a chunk at a time; a sink may throw to stop the producer.
    @usableFromInline package typealias Sink = (UnsafeBufferPointer<Element>) throws -> Void
    /// Pushes partition `partition`'s elements, in order and in chunks, into `sink`.
    @usableFromInline typealias Producer = @Sendable (_ partition: Int, _ sink: Sink) throws -> Void
    /// Receives chunks whose elements it takes: it must move out or deinitialize every element of each chunk,
    /// whether or not it throws.
    @usableFromInline typealias TakingSink = (UnsafeMutableBufferPointer<Element>) throws -> Void
    /// Pushes partition `partition`'s elements, as ``Producer`` does, into a sink that takes them.
    @usableFromInline typealias HandingProducer = @Sendable (_ partition: Int, _ sink: TakingSink) throws -> Void

    /// The engine the RDD runs on.
    public let engine: ExecutionEngine
    /// The number of partitions.
    public let numPartitions: Int
    /// How the keys of a pair RDD are spread over its partitions, when known: set by shuffles and kept by
    /// `mapValues`, `flatMapValues`, `filter` and `persist`, so that a later shuffle by the same partitioner
    /// is skipped (as in Spark).
    public let partitioner: HashPartitioner?
    @usableFromInline let produce: Producer
    /// The shuffle stages this RDD reads from, run before its own tasks.
    @usableFromInline let lineage: Lineage
    /// The cache behind a persisted RDD.
    @usableFromInline let persistence: (any PersistenceHandle)?
    /// Whether a task may compute a slice of a partition (``TaskContext/slice``): the sources can produce one
    /// and every operator after them works element by element.
    @usableFromInline package let isSliceable: Bool
    /// How many elements partition `p` has, where the source knows without producing them (a received block's
    /// row count, a slice of a parallelized array, a persisted partition cached in memory); nil from it, or no
    /// function: produce them and count. Only sources (and a persisted RDD, for what it has cached) set it: an
    /// operator's closure runs (and may throw) for every element, counted or not.
    @usableFromInline let knownSize: (@Sendable (_ partition: Int) throws -> Int?)?
    /// The same elements as `produce`, handed over to a consumer that takes them, where the elements hold
    /// references and the operator makes them itself (`flatMap`'s results): a consumer that moves each element
    /// out (the pair-making `map`) then pays no copy of it, nor the producer's drop of each after the chunk.
    @usableFromInline let produceHandingOver: HandingProducer?

    @usableFromInline
    init(
        engine: ExecutionEngine, numPartitions: Int, partitioner: HashPartitioner? = nil,
        lineage: Lineage = Lineage(), persistence: (any PersistenceHandle)? = nil, sliceable: Bool = false,
        knownSize: (@Sendable (_ partition: Int) throws -> Int?)? = nil, handingOver: HandingProducer? = nil,
        produce: @escaping Producer
    ) {
        self.isSliceable = sliceable
        self.knownSize = knownSize
        self.produceHandingOver = handingOver
        self.engine = engine
        self.numPartitions = numPartitions
        self.partitioner = partitioner
        self.lineage = lineage
        self.persistence = persistence
        self.produce = produce
    }

    /// A narrow child: same partitions and lineage, a new producer. `elementwise`: the child handles each
    /// element on its own (map, filter, ...), so it can compute a slice of a partition when this RDD can.
    /// `handingOver`: the same elements for a consumer that takes them.
    @inlinable
    func derive<U>(
        keepingPartitioner: Bool = false, elementwise: Bool = false, handingOver: RDD<U>.HandingProducer? = nil,
        _ produce: @escaping RDD<U>.Producer
    ) -> RDD<U> {
        RDD<U>(
            engine: engine, numPartitions: numPartitions, partitioner: keepingPartitioner ? partitioner : nil,
            lineage: lineage, sliceable: elementwise && isSliceable, handingOver: handingOver, produce: produce)
    }

    // MARK: Building blocks for other layers

    /// An RDD whose partitions `produce` computes, reading from RDDs whose stages are in `lineage` (for streams
    /// that combine several RDDs in their own partitions).
    /// `sliceable`: `produce` emits only ``TaskContext/slice`` of the partition. `knownSize`: how many elements a
    /// partition has, where that is known without producing them (nil from it: produce and count).
    package static func custom(
        engine: ExecutionEngine, numPartitions: Int, partitioner: HashPartitioner? = nil, lineage: Lineage,
        sliceable: Bool = false, knownSize: (@Sendable (_ partition: Int) throws -> Int?)? = nil,
        produce: @escaping @Sendable (_ partition: Int, _ sink: Sink) throws -> Void
    ) -> RDD<Element> {
        RDD(
            engine: engine, numPartitions: numPartitions, partitioner: partitioner, lineage: lineage,
            sliceable: sliceable, knownSize: knownSize, produce: produce)
    }

    /// The stages this RDD's tasks read from.
    package var stages: Lineage { lineage }

    /// Pushes partition `partition`'s elements into `sink`, inside a task of another RDD (its stages must have
    /// run: include ``stages`` in that RDD's lineage).
    package func computePartition(_ partition: Int, into sink: Sink) throws {
        try produce(partition, sink)
    }

    /// The number of elements in partition `p`: from ``knownSize`` when the source knows it, else by producing
    /// them through `drive`.
    @usableFromInline
    func size(of p: Int, _ drive: Drive) throws -> Int {
        if let n = try knownSize?(p) { return n }
        var n = 0
        try drive { n += $0.count }
        return n
    }

    // MARK: Running

    /// Drives one partition: pushes its chunks into the sink.
    @usableFromInline package typealias Drive = (Sink) throws -> Void

    /// Runs the stages this RDD depends on, then one task for each of `partitions` (all by default); `body`
    /// consumes its partition as it is produced and returns the partition's result. Results come back in the
    /// order of `partitions`.
    @usableFromInline
    package func runJob<R: Sendable>(
        partitions: [Int]? = nil, _ body: @escaping @Sendable (_ partition: Int, _ drive: Drive) throws -> R
    ) throws -> [R] {
        try lineage.prepare()
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

/// A stage an RDD depends on: a shuffle's map side, run once before the tasks that read it.
@usableFromInline
package protocol StageNode: AnyObject, Sendable {
    /// Runs the stage's map tasks unless they already ran (waiting for a run in progress elsewhere).
    func materialize() throws
}

/// The shuffle stages an RDD's tasks read from.
@usableFromInline
package struct Lineage: Sendable {
    @usableFromInline var stages: [any StageNode]

    @inlinable package init(_ stages: [any StageNode] = []) { self.stages = stages }

    /// Both RDDs' stages (for `union`).
    @inlinable
    package func merged(with other: Lineage) -> Lineage {
        var all = stages
        for stage in other.stages where !all.contains(where: { $0 === stage }) { all.append(stage) }
        return Lineage(all)
    }

    /// Runs every stage that has not run.
    @usableFromInline
    package func prepare() throws {
        for stage in stages { try stage.materialize() }
    }
}
