import SluiceColumnar
import SluiceExecution

/// `updateStateByKey` (Spark's `StateDStream`): each batch, the update function runs for every key in the
/// state or in the batch (keys with no new values get an empty list); returning nil deletes the key; the
/// stream's RDD is the whole state after the batch. When the parent has no RDD at a time, the function runs for
/// every key with no values, as in Spark.
///
/// The state is hash-partitioned and changed in place: a batch's values are grouped by key into the state's
/// partitioning, and each partition's store is updated key by key, without copying the store (see
/// ``StateTimeline``).
@usableFromInline
final class StateDStream<K: Hashable & Sendable, V: Sendable, S: Sendable>: DStream<(K, S)>, @unchecked Sendable {
    let parent: DStream<(K, V)>
    let kernel: UpdateStateKernel<K, V, S>
    let partitioner: HashPartitioner
    let initialState: RDD<(K, S)>?
    let timeline: StateTimeline<[K: S], Void>

    @usableFromInline
    init(
        parent: DStream<(K, V)>, numPartitions: Int, initialState: RDD<(K, S)>?, kernel: UpdateStateKernel<K, V, S>
    ) {
        self.parent = parent
        self.kernel = kernel
        self.partitioner = HashPartitioner(numPartitions: numPartitions)
        self.initialState = initialState.map { kernel.partitionStates($0, numPartitions) }
        self.timeline = StateTimeline(
            name: "updateStateByKey", partitions: numPartitions, slide: parent.slideDuration, empty: [:],
            memory: parent.context.engine.memory, bytesPerKey: StateTimeline<[K: S], Void>.estimatedBytesPerKey(K.self, S.self),
            keyCount: { $0.count })
        super.init(parent: parent, name: "updateStateByKey")
    }

    override func compute(_ time: Time) throws -> RDD<(K, S)>? {
        guard let zero = zeroTime else { return nil }
        try timeline.recordSteps(through: time, zero: zero) { next, first in try step(next, first: first) }
        let kernel = self.kernel
        return timeline.rdd(engine: context.engine, at: time, partitioner: partitioner) { state, _, sink in
            try kernel.emit(state, sink)
        }
    }

    /// The update of batch `time` (the first one loads the initial state).
    private func step(_ time: Time, first: Bool) throws -> StateStep<[K: S], Void> {
        let kernel = self.kernel
        let grouped = try parent.getOrCompute(time).map { kernel.group($0, partitioner.numPartitions) }
        let initial = first ? initialState : nil
        var lineage = grouped?.stages ?? Lineage()
        if let initial { lineage = lineage.merged(with: initial.stages) }
        return StateStep(time: time, lineage: lineage) { p, state in
            try initial?.computePartition(p) { chunk in kernel.load(chunk, &state) }
            var batch: [K: [V]] = [:]
            try grouped?.computePartition(p) { chunk in kernel.collect(chunk, &batch) }
            try kernel.update(&state, &batch, time)
        }
    }

    override var mustCheckpoint: Bool { true }

    override func remember(_ duration: Duration) {
        timeline.keepStates(for: duration)
        super.remember(duration)
    }

    override func clearMetadata(_ time: Time) {
        timeline.prune(before: time - max(rememberDuration ?? slideDuration, slideDuration))
        super.clearMetadata(time)
    }
}

extension StateDStream: CheckpointedNode {
    var dataCheckpointInterval: Duration? { checkpointInterval ?? defaultStateCheckpointInterval(slide: slideDuration) }

    private func codecs() throws -> (ElementCodec<K>, ElementCodec<S>) { try keyedCodecs(K.self, S.self, values: "state") }

    func checkCheckpointable() throws { _ = try codecs() }

    /// Writes each partition's state after the last batch of the stream at or before `time`.
    func writeCheckpoint(at time: Time, to writer: inout BinaryWriter) throws {
        try writeState(timeline, kernel.checkpoint, codecs: try codecs(), at: time, to: &writer)
    }

    func restoreCheckpoint(from reader: inout BinaryReader, at time: Time) throws {
        try restoreState(
            timeline, kernel.checkpoint, codecs: try codecs(), partitioner: partitioner, output: (), from: &reader)
    }
}

/// The per-key work of `updateStateByKey`, built where the operator is called so that it is specialized for
/// the program's types.
@usableFromInline
struct UpdateStateKernel<K: Hashable & Sendable, V: Sendable, S: Sendable>: Sendable {
    let group: @Sendable (RDD<(K, V)>, Int) -> RDD<(K, [V])>
    let partitionStates: @Sendable (RDD<(K, S)>, Int) -> RDD<(K, S)>
    let load: @Sendable (UnsafeBufferPointer<(K, S)>, inout [K: S]) -> Void
    let collect: @Sendable (UnsafeBufferPointer<(K, [V])>, inout [K: [V]]) -> Void
    /// Runs the update for every key of the state (with its new values, taken out of the batch), then for the
    /// batch's new keys.
    let update: @Sendable (inout [K: S], inout [K: [V]], Time) throws -> Void
    let emit: @Sendable ([K: S], (UnsafeBufferPointer<(K, S)>) throws -> Void) throws -> Void
    let checkpoint: StateCoding<K, S, [K: S]>

    @usableFromInline
    init(
        group: @escaping @Sendable (RDD<(K, V)>, Int) -> RDD<(K, [V])>,
        partitionStates: @escaping @Sendable (RDD<(K, S)>, Int) -> RDD<(K, S)>,
        load: @escaping @Sendable (UnsafeBufferPointer<(K, S)>, inout [K: S]) -> Void,
        collect: @escaping @Sendable (UnsafeBufferPointer<(K, [V])>, inout [K: [V]]) -> Void,
        update: @escaping @Sendable (inout [K: S], inout [K: [V]], Time) throws -> Void,
        emit: @escaping @Sendable ([K: S], (UnsafeBufferPointer<(K, S)>) throws -> Void) throws -> Void,
        checkpoint: StateCoding<K, S, [K: S]>
    ) {
        self.checkpoint = checkpoint
        self.group = group
        self.partitionStates = partitionStates
        self.load = load
        self.collect = collect
        self.update = update
        self.emit = emit
    }

    @inlinable
    static func make(_ function: @escaping @Sendable (Time, K, [V], S?) throws -> S?) -> UpdateStateKernel {
        UpdateStateKernel(
            group: { $0.groupByKey(numPartitions: $1) },
            partitionStates: { $0.partitionBy($1) },
            load: { chunk, state in for (key, value) in chunk { state[key] = value } },
            collect: { chunk, batch in for (key, values) in chunk { batch[key] = values } },
            update: { state, batch, time in
                // Every key of the state, updated in place (indices do not move while values change)...
                var removed: [K] = []
                var index = state.startIndex
                while index != state.endIndex {
                    let (key, current) = state[index]
                    if let next = try function(time, key, batch.removeValue(forKey: key) ?? [], current) {
                        state.values[index] = next
                    } else {
                        removed.append(key)
                    }
                    state.formIndex(after: &index)
                }
                for key in removed { state[key] = nil }
                // ...then the batch's new keys.
                for (key, values) in batch {
                    if let next = try function(time, key, values, nil) { state[key] = next }
                }
            },
            emit: { state, sink in try emitPairs(state, to: sink) },
            checkpoint: .dictionary())
    }
}
