/// Elements travel from one operator to the next in chunks of at most this many: enough to amortise the call
/// per chunk, few enough to stay in cache. Sources cut their partitions into chunks and pass a
/// ``WorkStealingPool/yieldPoint()`` between them.
@usableFromInline let chunkCapacity = 1024

/// An operator's reusable output chunk: filled element by element, handed on when full or when its input
/// chunk is done, then emptied keeping its memory.
@usableFromInline
package struct ChunkBuffer<Element> {
    @usableFromInline var elements: ContiguousArray<Element>

    @inlinable
    package init() {
        elements = []
        elements.reserveCapacity(chunkCapacity)
    }

    @inlinable package var isFull: Bool { elements.count >= chunkCapacity }

    @inlinable
    package mutating func append(_ element: Element) { elements.append(element) }

    /// Hands the elements to `sink` (if there are any) and empties the buffer.
    @inlinable
    package mutating func flush(to sink: (UnsafeBufferPointer<Element>) throws -> Void) throws {
        guard !elements.isEmpty else { return }
        try elements.withUnsafeBufferPointer { try sink($0) }
        elements.removeAll(keepingCapacity: true)
    }
}

extension UnsafeBufferPointer {
    /// The same elements seen as `T`, which must be the same type as `Element` (a generic `K` known to be
    /// `Int`, say). Memory bound to a type is bound to any name for that same type.
    @inlinable
    func same<T>(as type: T.Type) -> UnsafeBufferPointer<T> {
        precondition(T.self == Element.self, "\(Element.self) seen as \(T.self)")
        return UnsafeBufferPointer<T>(
            start: UnsafeRawPointer(baseAddress)?.assumingMemoryBound(to: T.self), count: count)
    }
}

/// Calls `body` with consecutive ranges of at most ``chunkCapacity`` of `0..<count`, with a yield point after
/// each: how sources cut a partition into chunks.
@inlinable
func forEachChunk(of count: Int, _ body: (Range<Int>) throws -> Void) rethrows {
    var start = 0
    while start < count {
        let end = min(start + chunkCapacity, count)
        try body(start..<end)
        start = end
        WorkStealingPool.yieldPoint()
    }
}

/// Emits `elements` to `sink` in chunks, with a yield point between them.
@inlinable
package func emitChunks<T>(
    _ elements: UnsafeBufferPointer<T>, to sink: (UnsafeBufferPointer<T>) throws -> Void
) throws {
    try forEachChunk(of: elements.count) { try sink(UnsafeBufferPointer(rebasing: elements[$0])) }
}
