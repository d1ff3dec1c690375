/// The union of several streams of one type, batch by batch (Spark's `UnionDStream`): each batch's RDD is the
/// union of the parents' RDDs, which must all exist; all parents must slide alike.
final class UnionDStream<T: Sendable>: DStream<T>, @unchecked Sendable {
    let inputs: [DStream<T>]

    init(context: StreamingContext, parents: [DStream<T>]) {
        self.inputs = parents
        super.init(
            context: context, name: "union", slideDuration: parents.first?.slideDuration ?? context.batchDuration,
            parents: parents)
    }

    override func compute(_ time: Time) throws -> RDD<T>? {
        let rdds = try inputs.map { try $0.requireRDD(at: time, for: "union") }
        guard let first = rdds.first else { return context.engine.emptyRDD(of: T.self) }
        return rdds.dropFirst().reduce(first) { $0.union($1) }
    }

    override func validateAtStart() throws {
        try checkSameSlide(parents, name: name, id: id)
        try super.validateAtStart()
    }
}
