extension RDD {
    /// The elements spread evenly over `numPartitions` partitions through a shuffle (Spark's `repartition`):
    /// each input partition deals its elements round-robin, starting at a partition that depends on its index.
    /// The order of elements within an output partition is not defined.
    @inlinable
    public func repartition(_ numPartitions: Int) -> RDD<Element> {
        guard HashPartitioner.validCounts.contains(numPartitions) else {
            return engine.refused("repartition", numPartitions: numPartitions)
        }
        let n = numPartitions
        return routed(into: n) { p in RoundRobinRouter(partition: p, count: n) }
    }

    /// The partitions merged into `numPartitions` without a shuffle (Spark's `coalesce` with `shuffle` false):
    /// output partition i holds input partitions `[i*p/n, (i+1)*p/n)` in order. Asking for more partitions
    /// than there are keeps the RDD as it is.
    @inlinable
    public func coalesce(_ numPartitions: Int) -> RDD<Element> {
        guard numPartitions >= 1 else { return engine.refused("coalesce", numPartitions: numPartitions) }
        let n = numPartitions
        guard n < self.numPartitions else { return self }
        let (parent, p) = (produce, self.numPartitions)
        return RDD(engine: engine, numPartitions: n, lineage: lineage) { i, sink in
            for q in (i * p / n)..<((i + 1) * p / n) { try parent(q, sink) }
        }
    }
}

