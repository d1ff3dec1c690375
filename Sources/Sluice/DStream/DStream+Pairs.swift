// Per-batch operations on streams of (key, value) pairs. Shuffles use `numPartitions`, else
// `spark.default.parallelism` (else the number of workers), as Spark's DStream `defaultPartitioner`.

extension DStream {
    /// The partition count of a keyed operation: `numPartitions`, else the default parallelism. A value below 1
    /// is refused (``StreamingContext/start()`` throws, naming `operation` and the value, as Spark throws at
    /// the call) and 1 stands in for it meanwhile.
    @usableFromInline
    func partitions(_ numPartitions: Int?, for operation: String) -> Int {
        guard let n = numPartitions else { return context.engine.defaultParallelism }
        guard HashPartitioner.validCounts.contains(n) else {
            context.refuse(.invalidPartitionCount(operation, n))
            return 1
        }
        return n
    }

    /// Merges each key's values within each batch with `f`.
    @inlinable
    public func reduceByKey<K: Hashable & Sendable, V: Sendable>(
        _ f: @escaping @Sendable (V, V) throws -> V, numPartitions: Int? = nil
    ) -> DStream<(K, V)> where Element == (K, V) {
        let n = partitions(numPartitions, for: "reduceByKey")
        return MappedDStream(parent: self, name: "reduceByKey") { $0.reduceByKey(f, numPartitions: n) }
    }

    /// `reduceByKey` of `Int` values (counts): `RDD`'s form for them calls the function with its arguments in
    /// registers. The compiler picks this form by itself.
    @inlinable
    public func reduceByKey<K: Hashable & Sendable>(
        _ f: @escaping @Sendable (Int, Int) throws -> Int, numPartitions: Int? = nil
    ) -> DStream<(K, Int)> where Element == (K, Int) {
        let n = partitions(numPartitions, for: "reduceByKey")
        return MappedDStream(parent: self, name: "reduceByKey") { $0.reduceByKey(f, numPartitions: n) }
    }

    /// Each key of each batch with all its values.
    @inlinable
    public func groupByKey<K: Hashable & Sendable, V: Sendable>(numPartitions: Int? = nil) -> DStream<(K, [V])>
    where Element == (K, V) {
        let n = partitions(numPartitions, for: "groupByKey")
        return MappedDStream(parent: self, name: "groupByKey") { $0.groupByKey(numPartitions: n) }
    }

    /// Combines each key's values within each batch (Spark's `combineByKey`).
    @inlinable
    public func combineByKey<K: Hashable & Sendable, V: Sendable, C: Sendable>(
        createCombiner: @escaping @Sendable (V) throws -> C,
        mergeValue: @escaping @Sendable (C, V) throws -> C,
        mergeCombiners: @escaping @Sendable (C, C) throws -> C,
        numPartitions: Int? = nil
    ) -> DStream<(K, C)> where Element == (K, V) {
        let n = partitions(numPartitions, for: "combineByKey")
        return MappedDStream(parent: self, name: "combineByKey") {
            $0.combineByKey(
                createCombiner: createCombiner, mergeValue: mergeValue, mergeCombiners: mergeCombiners,
                numPartitions: n)
        }
    }

    /// Applies `f` to each value, keeping keys.
    @inlinable
    public func mapValues<K: Sendable, V: Sendable, U: Sendable>(
        _ f: @escaping @Sendable (V) throws -> U
    ) -> DStream<(K, U)> where Element == (K, V) {
        MappedDStream(parent: self, name: "mapValues") { $0.mapValues(f) }
    }

    /// Applies `f` to each value and pairs the key with each element it returns.
    @inlinable
    public func flatMapValues<K: Sendable, V: Sendable, S: Sequence & SendableMetatype>(
        _ f: @escaping @Sendable (V) throws -> S
    ) -> DStream<(K, S.Element)> where Element == (K, V), S.Element: Sendable {
        MappedDStream(parent: self, name: "flatMapValues") { $0.flatMapValues(f) }
    }

    /// Joins each batch with `other`'s batch at the same time.
    @inlinable
    public func join<K: Hashable & Sendable, V: Sendable, W: Sendable>(
        _ other: DStream<(K, W)>, numPartitions: Int? = nil
    ) -> DStream<(K, (V, W))> where Element == (K, V) {
        let n = partitions(numPartitions, for: "join")
        return transformWith(other) { $0.join($1, numPartitions: n) }
    }

    /// As ``join(_:numPartitions:)``, keeping keys absent from `other`'s batch with `nil`.
    @inlinable
    public func leftOuterJoin<K: Hashable & Sendable, V: Sendable, W: Sendable>(
        _ other: DStream<(K, W)>, numPartitions: Int? = nil
    ) -> DStream<(K, (V, W?))> where Element == (K, V) {
        let n = partitions(numPartitions, for: "leftOuterJoin")
        return transformWith(other) { $0.leftOuterJoin($1, numPartitions: n) }
    }

    /// As ``join(_:numPartitions:)``, keeping keys absent from this batch with `nil`.
    @inlinable
    public func rightOuterJoin<K: Hashable & Sendable, V: Sendable, W: Sendable>(
        _ other: DStream<(K, W)>, numPartitions: Int? = nil
    ) -> DStream<(K, (V?, W))> where Element == (K, V) {
        let n = partitions(numPartitions, for: "rightOuterJoin")
        return transformWith(other) { $0.rightOuterJoin($1, numPartitions: n) }
    }

    /// As ``join(_:numPartitions:)``, keeping keys absent from either batch with `nil`.
    @inlinable
    public func fullOuterJoin<K: Hashable & Sendable, V: Sendable, W: Sendable>(
        _ other: DStream<(K, W)>, numPartitions: Int? = nil
    ) -> DStream<(K, (V?, W?))> where Element == (K, V) {
        let n = partitions(numPartitions, for: "fullOuterJoin")
        return transformWith(other) { $0.fullOuterJoin($1, numPartitions: n) }
    }

    /// For each key in either batch, its values in this batch and in `other`'s.
    @inlinable
    public func cogroup<K: Hashable & Sendable, V: Sendable, W: Sendable>(
        _ other: DStream<(K, W)>, numPartitions: Int? = nil
    ) -> DStream<(K, ([V], [W]))> where Element == (K, V) {
        let n = partitions(numPartitions, for: "cogroup")
        return transformWith(other) { $0.cogroup($1, numPartitions: n) }
    }
}
