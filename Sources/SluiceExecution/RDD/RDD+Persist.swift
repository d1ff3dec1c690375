import SluiceColumnar
import Synchronization

extension RDD {
    /// Keeps the partitions, once computed, at `level` (see ``StorageLevel``) so that later jobs read them
    /// instead of recomputing. Returns the persisted RDD: persist the value you will reuse.
    public func persist(_ level: StorageLevel) -> RDD<Element> {
        persist(level, releasingLineage: false)
    }

    /// As ``persist(_:)``; with `releasingLineage` and a level that keeps everything (one that uses disk),
    /// once every partition is stored the RDD lets go of what it was computed from (the parent RDDs and their
    /// data), so that keeping it keeps only its own partitions. Reading it after `unpersist()` is then an error:
    /// for RDDs that are dropped when they are unpersisted (a stream's old batches). Memory reports count the
    /// partitions under `category`.
    package func persist(
        _ level: StorageLevel, releasingLineage: Bool, category: MemoryCategory = .cache
    ) -> RDD<Element> {
        guard level != .none else { return self }
        let cache = PersistedPartitions<Element>(engine: engine, level: level, category: category)
        let source = Mutex<Producer?>(produce)
        let release = releasingLineage && level.useDisk
        let count = numPartitions
        return RDD(
            engine: engine, numPartitions: numPartitions, partitioner: partitioner, lineage: lineage,
            persistence: cache, knownSize: { cache.knownCount($0) }
        ) { p, sink in
            if try cache.read(p, into: sink) { return }
            guard let parent = source.withLock({ $0 }) else {
                throw StorageError(
                    .readFailed, "partition \(p) of a persisted RDD was dropped after its lineage was released")
            }
            var elements: [Element] = []
            try parent(p) { elements.append(contentsOf: $0) }
            try cache.put(p, elements)
            if release && cache.storedCount == count { source.withLock { $0 = nil } }
            try elements.withUnsafeBufferPointer { try emitChunks($0, to: sink) }
        }
    }

    /// Persists at `.memoryOnly` (Spark's RDD default).
    public func persist() -> RDD<Element> { persist(.memoryOnly) }

    /// Persists at `.memoryOnly` (Spark's RDD default).
    public func cache() -> RDD<Element> { persist() }

    /// Drops the cached partitions (and their spill files) of a persisted RDD; later jobs recompute them.
    public func unpersist() { persistence?.unpersist() }

    /// The RDD's storage level (`.none` unless it is the result of `persist`).
    public var storageLevel: StorageLevel { persistence?.storageLevel ?? .none }

    /// Where each cached partition of a persisted RDD is now (empty when nothing is cached).
    public var cachedPlacement: [Int: CachedPlacement] { persistence?.placement ?? [:] }
}
