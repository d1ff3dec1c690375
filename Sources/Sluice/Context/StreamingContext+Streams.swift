extension StreamingContext {
    /// A stream of the RDDs enqueued in `queue` (for testing with prepared data): one RDD per batch
    /// (`oneAtATime`), or all queued RDDs as one batch; an empty queue gives `defaultRDD` or an empty RDD.
    public func queueStream<T: Sendable>(
        _ queue: RDDQueue<T>, oneAtATime: Bool = true, defaultRDD: RDD<T>? = nil
    ) -> DStream<T> {
        QueueInputDStream(context: self, queue: queue, oneAtATime: oneAtATime, defaultRDD: defaultRDD)
    }

    /// The union of `streams`, batch by batch (all must slide alike).
    public func union<T: Sendable>(_ streams: [DStream<T>]) -> DStream<T> {
        UnionDStream(context: self, parents: streams)
    }

    /// A stream computed from the RDDs of `streams` at each batch time by `f` (all must slide alike and have
    /// an RDD at the time).
    @inlinable
    public func transform<T: Sendable, U: Sendable>(
        _ streams: [DStream<T>], _ f: @escaping @Sendable ([RDD<T>], Time) throws -> RDD<U>
    ) -> DStream<U> {
        TransformedDStream(context: self, parents: streams, name: "transform") { time in
            try f(try streams.map { try $0.requireRDD(at: time, for: "transform") }, time)
        }
    }

    /// A stream of prepared batches (the test kit's input; see `StreamTest`).
    package func sequenceStream<T: Sendable>(_ batches: [[T]?]) -> DStream<T> {
        SequenceInputDStream(context: self, batches: batches)
    }
}
