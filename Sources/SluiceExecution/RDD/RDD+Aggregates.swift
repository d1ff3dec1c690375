// Lazy whole-RDD aggregates as one-element RDDs, for streams that emit one value per batch (`count`,
// `reduce`): the work runs in the batch's job, in parallel, like Spark's map-then-reduceByKey(1).

extension RDD {
    /// One element per non-empty partition: the partition's elements combined with `f`.
    @inlinable
    package func partialReduce(_ f: @escaping @Sendable (Element, Element) throws -> Element) -> RDD<Element> {
        let parent = produce
        return derive { p, sink in
            var acc: Element?
            try parent(p) { chunk in
                for x in chunk { acc = try acc.map { try f($0, x) } ?? x }
            }
            if let acc { try withUnsafePointer(to: acc) { try sink(UnsafeBufferPointer(start: $0, count: 1)) } }
        }
    }

    /// One element per partition: how many elements it has.
    package func partitionCounts() -> RDD<Int> {
        return derive { [self] p, sink in
            let n = try size(of: p) { try produce(p, $0) }
            try withUnsafePointer(to: n) { try sink(UnsafeBufferPointer(start: $0, count: 1)) }
        }
    }

    /// An RDD of one partition holding the number of elements (0 for an empty RDD).
    package func countAsRDD() -> RDD<Int> {
        partitionCounts().map { (0, $0) }.union(engine.parallelize([(0, 0)], numSlices: 1))
            .reduceByKey(+, numPartitions: 1).values()
    }

    /// An RDD of one partition holding the elements combined with `f`, or no element for an empty RDD.
    @inlinable
    package func reduceAsRDD(_ f: @escaping @Sendable (Element, Element) throws -> Element) -> RDD<Element> {
        partialReduce(f).map { (0, $0) }.reduceByKey(f, numPartitions: 1).values()
    }
}
