/// An output operation (Spark's `ForEachDStream`): at every time its parent has an RDD, a job runs `action`
/// on it. `print`, `saveAsTextFiles`, `saveAsObjectFiles` and `foreachRDD` are all output operations; they
/// run in the order they were registered.
final class ForEachDStream<T: Sendable>: DStream<T>, OutputNode, @unchecked Sendable {
    let parent: DStream<T>
    let action: @Sendable (RDD<T>, Time) throws -> Void
    private(set) var outputOpId = 0

    init(parent: DStream<T>, name: String, action: @escaping @Sendable (RDD<T>, Time) throws -> Void) {
        self.parent = parent
        self.action = action
        super.init(parent: parent, name: name)
        if context.state == .initialized { outputOpId = context.graph.addOutput(self) }
    }

    override func compute(_ time: Time) throws -> RDD<T>? { try parent.getOrCompute(time) }

    func generateJob(_ time: Time) throws -> StreamingJob? {
        guard let rdd = try parent.getOrCompute(time) else { return nil }
        let action = self.action
        return StreamingJob(
            time: time, outputOpId: outputOpId, name: name, callSite: "\(name) of stream \(parent.id)"
        ) { try action(rdd, time) }
    }
}
