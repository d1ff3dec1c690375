import SluiceExecution

/// `updateStateByKey` (Spark's `StateDStream`): each batch, the update function runs for every key in the
/// state or in the batch (keys with no new values get an empty list); returning nil deletes the key; the
/// stream's RDD is the whole state after the batch. When the parent has no RDD at a time, the function runs for
/// every key with no values, as in Spark.
///
/// The state is hash-partitioned and changed in place: a batch's values are grouped by key into the state's
/// partitioning, and each partition's store is updated key by key, without copying the store (see
/// ``StateTimeline``).
final class StateDStream<K: Hashable & Sendable, V: Sendable, S: Sendable>: DStream<(K, S)>, @unchecked Sendable {
    let parent: DStream<(K, V)>
    let update: @Sendable (Time, K, [V], S?) throws -> S?
    let partitioner: HashPartitioner
    let initialState: RDD<(K, S)>?
    let timeline: StateTimeline<[K: S], Void>

    init(
        parent: DStream<(K, V)>, numPartitions: Int, initialState: RDD<(K, S)>?,
        update: @escaping @Sendable (Time, K, [V], S?) throws -> S?
    ) {
        self.parent = parent
        self.update = update
        self.partitioner = HashPartitioner(numPartitions: numPartitions)
        self.initialState = initialState?.partitionBy(numPartitions)
        self.timeline = StateTimeline(
            name: "updateStateByKey", partitions: numPartitions, slide: parent.slideDuration, empty: [:])
        super.init(parent: parent, name: "updateStateByKey")
    }

    override func compute(_ time: Time) throws -> RDD<(K, S)>? {
        try recordSteps(through: time)
        let timeline = self.timeline
        return RDD.custom(
            engine: context.engine, numPartitions: partitioner.numPartitions, partitioner: partitioner,
            lineage: timeline.lineage(through: time)
        ) { p, sink in
            try timeline.read(partition: p, at: time) { state, _ in try emitPairs(state, to: sink) }
        }
    }

    private func recordSteps(through time: Time) throws {
        guard let zero = zeroTime else { return }
        var next = timeline.lastRecorded.map { $0 + slideDuration } ?? zero + slideDuration
        while next <= time {
            try recordStep(next, first: timeline.lastRecorded == nil)
            next = next + slideDuration
        }
    }

    private func recordStep(_ time: Time, first: Bool) throws {
        let grouped = try parent.getOrCompute(time)?.groupByKey(numPartitions: partitioner.numPartitions)
        let initial = first ? initialState : nil
        let update = self.update
        var lineage = grouped?.stages ?? Lineage()
        if let initial { lineage = lineage.merged(with: initial.stages) }
        timeline.record(StateStep(time: time, lineage: lineage) { p, state in
            if let initial {
                try initial.computePartition(p) { chunk in for (key, value) in chunk { state[key] = value } }
            }
            var batch: [K: [V]] = [:]
            try grouped?.computePartition(p) { chunk in for (key, values) in chunk { batch[key] = values } }
            // Every key of the state, updated in place (indices do not move while values change)...
            var removed: [K] = []
            var index = state.startIndex
            while index != state.endIndex {
                let (key, current) = state[index]
                if let next = try update(time, key, batch.removeValue(forKey: key) ?? [], current) {
                    state.values[index] = next
                } else {
                    removed.append(key)
                }
                state.formIndex(after: &index)
            }
            for key in removed { state[key] = nil }
            // ...then the batch's new keys.
            for (key, values) in batch {
                if let next = try update(time, key, values, nil) { state[key] = next }
            }
        })
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
