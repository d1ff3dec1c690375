/// Batches from a prepared sequence (the test kit's input): batch i (1-based) after zeroTime is `batches[i-1]`
/// in `spark.default.parallelism` partitions; a nil entry gives no RDD at that time (Spark's null batch);
/// batches past the end are empty.
package final class SequenceInputDStream<T: Sendable>: InputDStream<T>, @unchecked Sendable {
    let batches: [[T]?]

    package init(context: StreamingContext, batches: [[T]?]) {
        self.batches = batches
        super.init(context: context, name: "testInput")
    }

    override func compute(_ time: Time) throws -> RDD<T>? {
        guard let zero = zeroTime else { return nil }
        let index = Int((time - zero).wholeMilliseconds / context.batchDuration.wholeMilliseconds) - 1
        let batch: [T]
        if index < batches.count {
            guard let given = batches[index] else { return nil }
            batch = given
        } else {
            batch = []
        }
        context.reportInputInfo(StreamInputInfo(inputStreamId: id, numRecords: Int64(batch.count)), at: time)
        return context.engine.parallelize(batch, numSlices: context.engine.defaultParallelism)
    }
}
