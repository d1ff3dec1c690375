/// A per-batch transformation of one parent's RDD that keeps its slide: `map`, `flatMap`, `filter`,
/// `mapPartitions`, `glom`, `mapValues`, `flatMapValues`, and the per-batch shuffles (`reduceByKey`,
/// `groupByKey`, `combineByKey`, `countByValue`, `reduce`), which Spark spreads over MappedDStream,
/// FlatMappedDStream, FilteredDStream, ..., ShuffledDStream with the same rule: no parent RDD at a time, no RDD.
///
/// The RDD-level function is built where the operator is called (the operators are `@inlinable`), so the
/// element work is specialized for the program's types.
@usableFromInline
final class MappedDStream<T: Sendable, U: Sendable>: DStream<U>, @unchecked Sendable {
    let parent: DStream<T>
    let transform: @Sendable (RDD<T>) throws -> RDD<U>

    @usableFromInline
    init(parent: DStream<T>, name: String, transform: @escaping @Sendable (RDD<T>) throws -> RDD<U>) {
        self.parent = parent
        self.transform = transform
        super.init(parent: parent, name: name)
    }

    override func compute(_ time: Time) throws -> RDD<U>? {
        try parent.getOrCompute(time).map(transform)
    }
}
