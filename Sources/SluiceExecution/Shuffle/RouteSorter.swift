/// Groups each chunk of a routing shuffle's elements by target: a stable counting sort into scratch memory, so
/// that the map side appends a target's elements to its list at once (one table lookup and one bulk copy per
/// target and chunk), not with a lookup and an array append, with its uniqueness and capacity checks, per
/// element.
///
/// Noncopyable: the scratch memory has one owner, freed when the sorter goes.
@usableFromInline
package struct RouteSorter<Element>: ~Copyable {
    /// Room for `capacity` elements, uninitialized between calls of ``sort(_:by:_:)``.
    @usableFromInline var scratch: UnsafeMutablePointer<Element>
    /// Each element's target, for the chunk being sorted.
    @usableFromInline var targets: UnsafeMutablePointer<Int32>
    @usableFromInline var capacity: Int
    /// Per target: its element count, then where its next element goes, then where its elements end.
    @usableFromInline var ends: UnsafeMutablePointer<Int>
    @usableFromInline let targetCount: Int

    /// A sorter for targets `0..<targetCount`.
    @inlinable
    package init(targetCount: Int) {
        self.targetCount = targetCount
        capacity = chunkCapacity
        scratch = .allocate(capacity: capacity)
        targets = .allocate(capacity: capacity)
        ends = .allocate(capacity: targetCount)
    }

    deinit {
        scratch.deallocate()
        targets.deallocate()
        ends.deallocate()
    }

    /// Calls `body` once for each target that `route` gives any element of `chunk`, with those elements in
    /// their order in the chunk, targets in increasing order. `route` must return a target in
    /// `0..<targetCount`.
    @inlinable
    package mutating func sort(
        _ chunk: UnsafeBufferPointer<Element>, by route: (Element) -> Int,
        _ body: (_ target: Int, _ elements: UnsafeBufferPointer<Element>) throws -> Void
    ) rethrows {
        if targetCount == 1 {
            if !chunk.isEmpty { try body(0, chunk) }
            return
        }
        if chunk.count > capacity {
            scratch.deallocate()
            targets.deallocate()
            capacity = chunk.count
            scratch = .allocate(capacity: capacity)
            targets = .allocate(capacity: capacity)
        }
        // Safe: every index below is under chunk.count <= capacity, or a target checked to be in range.
        ends.update(repeating: 0, count: targetCount)
        for i in chunk.indices {
            let t = route(chunk[i])
            precondition(t >= 0 && t < targetCount, "an element routed to \(t), outside 0..<\(targetCount)")
            targets[i] = Int32(truncatingIfNeeded: t)
            ends[t] &+= 1
        }
        var start = 0
        for t in 0..<targetCount {
            let count = ends[t]
            ends[t] = start
            start &+= count
        }
        for i in chunk.indices {
            let t = Int(targets[i])
            (scratch + ends[t]).initialize(to: chunk[i])
            ends[t] &+= 1
        }
        defer { scratch.deinitialize(count: chunk.count) }
        start = 0
        for t in 0..<targetCount where ends[t] > start {
            try body(t, UnsafeBufferPointer(start: scratch + start, count: ends[t] &- start))
            start = ends[t]
        }
    }
}
