/// One partition's elements, handed to `mapPartitions` and `foreachPartition`.
public struct Partition<Element>: Sequence {
    @usableFromInline let elements: [Element]

    /// The index of this partition in its RDD.
    public let index: Int

    @inlinable
    init(elements: [Element], index: Int) {
        self.elements = elements
        self.index = index
    }

    public func makeIterator() -> IndexingIterator<[Element]> { elements.makeIterator() }

    /// The number of elements.
    public var count: Int { elements.count }

    /// Whether the partition has no elements.
    public var isEmpty: Bool { elements.isEmpty }
}
