/// Thrown by a sink to stop a partition's producer early (`take`); never escapes an action.
@usableFromInline
struct StopProducing: Error {
    @usableFromInline init() {}
}

extension RDD {
    /// Every element, partition by partition.
    /// - Throws: the first error a closure of the job threw.
    public func collect() throws -> [Element] {
        try runJob { _, drive in
            var elements: [Element] = []
            try drive { elements.append(contentsOf: $0) }
            return elements
        }.flatMap { $0 }
    }

    /// The number of elements.
    public func count() throws -> Int {
        try runJob { p, drive in try size(of: p, drive) }.reduce(0, +)
    }

    /// The elements combined with `f` (within each partition, then across partitions in order); `nil` when
    /// the RDD is empty. `f` should be associative, as in Spark.
    @inlinable
    public func reduce(_ f: @escaping @Sendable (Element, Element) throws -> Element) throws -> Element? {
        let partials = try runJob { _, drive -> Element? in
            var acc: Element?
            try drive { chunk in
                for x in chunk { acc = try acc.map { try f($0, x) } ?? x }
            }
            return acc
        }
        var result: Element?
        for case let partial? in partials {
            result = try result.map { try f($0, partial) } ?? partial
        }
        return result
    }

    /// Folds each partition from `zero` with `f`, then folds the partitions' results in order (Spark's `fold`).
    public func fold(_ zero: Element, _ f: @escaping @Sendable (Element, Element) throws -> Element) throws -> Element {
        let partials = try runJob { _, drive -> Element in
            var acc = zero
            try drive { chunk in for x in chunk { acc = try f(acc, x) } }
            return acc
        }
        return try partials.reduce(zero, f)
    }

    /// The first `n` elements in partition order. Like Spark, it reads partition 0 first and widens the scan
    /// (4x more partitions each round) only while it has fewer than `n`.
    public func take(_ n: Int) throws -> [Element] {
        guard n > 0 else { return [] }
        var taken: [Element] = []
        var next = 0
        var width = 1
        while taken.count < n && next < numPartitions {
            let partitions = Array(next..<min(numPartitions, next + width))
            let want = n - taken.count
            let parts = try runJob(partitions: partitions) { _, drive in
                var elements: [Element] = []
                do {
                    try drive { chunk in
                        elements.append(contentsOf: chunk.prefix(want - elements.count))
                        if elements.count >= want { throw StopProducing() }
                    }
                } catch is StopProducing {}
                return elements
            }
            for part in parts { taken += part.prefix(n - taken.count) }
            next += partitions.count
            width *= 4
        }
        return taken
    }

    /// The first element, or `nil` when the RDD is empty.
    public func first() throws -> Element? { try take(1).first }

    /// Whether the RDD has no elements.
    public func isEmpty() throws -> Bool { try take(1).isEmpty }

    /// Runs `f` on every element, in the partition's task.
    @inlinable
    public func foreach(_ f: @escaping @Sendable (Element) throws -> Void) throws {
        _ = try runJob { _, drive in
            try drive { chunk in for x in chunk { try f(x) } }
        }
    }

    /// Runs `f` once per partition; `TaskContext.partitionId` tells which.
    public func foreachPartition(_ f: @escaping @Sendable (Partition<Element>) throws -> Void) throws {
        _ = try runJob { p, drive in
            var elements: [Element] = []
            try drive { elements.append(contentsOf: $0) }
            try f(Partition(elements: elements, index: p))
        }
    }
}
