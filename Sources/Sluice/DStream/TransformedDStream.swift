/// A stream computed from the RDDs of one or more parents at each time by a function (Spark's
/// `TransformedDStream`): `transform`, `transformWith`, per-batch joins and `cogroup`, `repartition`, `count`,
/// and the context's `transform` over several streams. Every parent must have an RDD at the time, or the batch
/// fails ("Couldn't generate RDD from parent"), and all parents must slide alike (checked at `start()`).
@usableFromInline
final class TransformedDStream<U: Sendable>: DStream<U>, @unchecked Sendable {
    let transform: @Sendable (Time) throws -> RDD<U>

    @usableFromInline
    init(
        context: StreamingContext, parents: [any GraphNode], name: String,
        transform: @escaping @Sendable (Time) throws -> RDD<U>
    ) {
        self.transform = transform
        super.init(
            context: context, name: name, slideDuration: parents.first?.slideDuration ?? context.batchDuration,
            parents: parents)
    }

    override func compute(_ time: Time) throws -> RDD<U>? { try transform(time) }

    override func validateAtStart() throws {
        try checkSameSlide(parents, name: name, id: id)
        try super.validateAtStart()
    }
}

/// Checks that every parent of a multi-parent stream slides alike.
func checkSameSlide(_ parents: [any GraphNode], name: String, id: Int) throws {
    let slides = Set(parents.map { $0.slideDuration.wholeMilliseconds })
    guard slides.count <= 1 else {
        throw StreamingError(
            .invalidGraph,
            "\(name) stream \(id) combines streams with different slide durations ("
                + slides.sorted().map { "\($0) ms" }.joined(separator: ", ") + "); they must all slide alike")
    }
}
