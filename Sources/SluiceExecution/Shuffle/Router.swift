/// How a routing shuffle (``RDD/partitionBy(_:)``, ``RDD/repartition(_:)``) picks each element's target
/// partition. A value type, so that the map side's loop is specialized for it and calls it inline (a closure
/// would be an indirect call per element); each input partition's task makes its own, so it may keep state.
@usableFromInline
package protocol Router<Element>: Sendable {
    associatedtype Element
    /// The target of `element`, in `0..<n` for the shuffle's `n` partitions.
    mutating func target(of element: Element) -> Int
}

/// Routes a pair by its key's Spark hash partition.
@usableFromInline
struct KeyRouter<K: Hashable, V>: Router {
    @usableFromInline let partitioner: HashPartitioner

    @inlinable init(_ partitioner: HashPartitioner) { self.partitioner = partitioner }

    @inlinable
    func target(of pair: (K, V)) -> Int { partitioner.partition(for: pair.0) }
}

/// Deals elements round-robin over `0..<count` from a start that depends on the input partition.
@usableFromInline
struct RoundRobinRouter<Element>: Router {
    @usableFromInline var next: Int
    @usableFromInline let count: Int

    /// The router of input partition `partition` over `count` targets.
    @inlinable
    init(partition: Int, count: Int) {
        self.count = count
        next = Int(truncatingIfNeeded: mix64(UInt64(partition)) % UInt64(count))
    }

    @inlinable
    mutating func target(of _: Element) -> Int {
        defer { next = next + 1 == count ? 0 : next + 1 }
        return next
    }
}
