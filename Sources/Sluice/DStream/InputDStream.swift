/// A stream the context feeds from outside (a queue, a receiver, files): it has an RDD at every batch time.
public class InputDStream<Element: Sendable>: DStream<Element>, @unchecked Sendable {
    init(context: StreamingContext, name: String) {
        super.init(context: context, name: name, slideDuration: context.batchDuration, parents: [])
        context.graph.addInput(self)
    }

    /// The input stream's id (Spark's `streamId`), as listeners and input infos name it.
    public var streamId: Int { id }
}

extension DStream {
    /// The RDD at `time`, or an error when the stream has none: operations that need an RDD from every parent
    /// (`transform`, `union`, per-batch joins) fail the batch then, as in Spark.
    @usableFromInline
    func requireRDD(at time: Time, for operation: String) throws -> RDD<Element> {
        guard let rdd = try getOrCompute(time) else {
            throw StreamingError(
                .generationFailed,
                "Couldn't generate RDD from parent \(name) stream \(id) at time \(time) for \(operation)")
        }
        return rdd
    }
}
