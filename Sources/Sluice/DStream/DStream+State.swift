// Stateful operations. Each needs `StreamingContext.checkpoint(_:)` before `start()`, as in Spark.

extension DStream {
    /// Keeps a state per key across batches: each batch, `update` gets every key's new values (empty if none)
    /// and its state (nil if none) and returns the new state (nil removes the key). The stream's RDD is the
    /// whole state after each batch.
    @inlinable
    public func updateStateByKey<K: Hashable & Sendable, V: Sendable, S: Sendable>(
        numPartitions: Int? = nil, initialState: RDD<(K, S)>? = nil,
        _ update: @escaping @Sendable ([V], S?) throws -> S?
    ) -> DStream<(K, S)> where Element == (K, V) {
        updateStateByKey(numPartitions: numPartitions, initialState: initialState) { _, _, values, state in
            try update(values, state)
        }
    }

    /// As ``updateStateByKey(numPartitions:initialState:_:)-...`` with the batch time and the key.
    @inlinable
    public func updateStateByKey<K: Hashable & Sendable, V: Sendable, S: Sendable>(
        numPartitions: Int? = nil, initialState: RDD<(K, S)>? = nil,
        _ update: @escaping @Sendable (Time, K, [V], S?) throws -> S?
    ) -> DStream<(K, S)> where Element == (K, V) {
        StateDStream(
            parent: self, numPartitions: partitions(numPartitions, for: "updateStateByKey"), initialState: initialState, kernel: .make(update))
    }

    /// Maps each record with a state per key (see ``StateSpec``); the result's ``MapWithStateDStream/stateSnapshots()``
    /// gives every key's state after each batch.
    @inlinable
    public func mapWithState<K: Hashable & Sendable, V: Sendable, S: Sendable, Mapped: Sendable>(
        _ spec: StateSpec<K, V, S, Mapped>
    ) -> MapWithStateDStream<K, V, S, Mapped> where Element == (K, V) {
        MapWithStateDStream(parent: self, spec: spec, kernel: .make(spec))
    }
}
