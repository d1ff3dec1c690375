extension RDD {
    /// The elements spread evenly over `numPartitions` partitions through a shuffle (Spark's `repartition`):
    /// each input partition deals its elements round-robin, starting at a partition that depends on its index.
    /// The order of elements within an output partition is not defined.
    @inlinable
    public func repartition(_ numPartitions: Int) -> RDD<Element> {
        let n = max(1, numPartitions)
        let parent = produce
        let input = ShuffleInput<IntKeys, [Element]>(numPartitions: self.numPartitions, lineage: lineage) {
            p, table, stage in
            var target = Int(truncatingIfNeeded: mix64(UInt64(p)) % UInt64(n))
            try parent(p) { chunk in
                for x in chunk {
                    // Keys below n are their own hash code, so key r lands in partition r.
                    table.upsert(target, create: { [x] }, merge: { $0.append(x) })
                    target = target + 1 == n ? 0 : target + 1
                }
                try stage.chunkDone(&table)
            }
        }
        let stage = ShuffleStage(
            engine: engine, partitioner: HashPartitioner(numPartitions: n), inputs: [input],
            mergeCombiners: { $0.append(contentsOf: $1) }, traits: .grouping(Element.self))
        let grouped = stage.rdd(keyedBy: Int.self)
        let groups = grouped.produce
        return RDD(engine: engine, numPartitions: n, lineage: grouped.lineage) { r, sink in
            try groups(r) { chunk in
                for (_, elements) in chunk { try elements.withUnsafeBufferPointer { try emitChunks($0, to: sink) } }
            }
        }
    }

    /// The partitions merged into `numPartitions` without a shuffle (Spark's `coalesce` with `shuffle` false):
    /// output partition i holds input partitions `[i*p/n, (i+1)*p/n)` in order. Asking for more partitions
    /// than there are keeps the RDD as it is.
    @inlinable
    public func coalesce(_ numPartitions: Int) -> RDD<Element> {
        let n = max(1, numPartitions)
        guard n < self.numPartitions else { return self }
        let (parent, p) = (produce, self.numPartitions)
        return RDD(engine: engine, numPartitions: n, lineage: lineage) { i, sink in
            for q in (i * p / n)..<((i + 1) * p / n) { try parent(q, sink) }
        }
    }
}
