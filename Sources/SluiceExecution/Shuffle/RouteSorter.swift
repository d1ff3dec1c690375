/// Groups each chunk of a routing shuffle's elements by target: a stable counting sort into scratch memory, so
/// that the map side appends a target's elements to its list at once (one table lookup and one bulk copy per
/// target and chunk), not with a lookup and an array append, with its uniqueness and capacity checks, per
/// element.
///
/// Noncopyable: the scratch memory has one owner, freed when the sorter goes.
@usableFromInline
package struct RouteSorter<Element>: ~Copyable {
    /// Room for `capacity` elements (one more than a chunk; twice that for two targets), uninitialized between
    /// calls of ``sort(_:by:_:)``.
    @usableFromInline var scratch: UnsafeMutablePointer<Element>
    /// Each element's target, for the chunk being sorted.
    @usableFromInline var targets: UnsafeMutablePointer<Int32>
    @usableFromInline var capacity: Int
    /// Per target: its element count, then where its next element goes, then where its elements end.
    @usableFromInline var ends: UnsafeMutablePointer<Int>
    @usableFromInline let targetCount: Int
    /// Up to this many targets, plain elements are sorted with one pass per target; two targets take one pass for
    /// both (see ``sort(_:by:_:)``).
    @usableFromInline static var fewTargets: Int { 4 }

    /// The scratch's room: a chunk's worth for each of two targets (see ``sort(_:by:_:)``), else one.
    @inlinable
    static func scratchCapacity(_ capacity: Int, _ targetCount: Int) -> Int { targetCount == 2 ? 2 &* capacity : capacity }

    /// A sorter for targets `0..<targetCount`.
    @inlinable
    package init(targetCount: Int) {
        self.targetCount = targetCount
        capacity = chunkCapacity + 1
        scratch = .allocate(capacity: Self.scratchCapacity(capacity, targetCount))
        targets = .allocate(capacity: capacity)
        ends = .allocate(capacity: targetCount)
    }

    deinit {
        scratch.deallocate()
        targets.deallocate()
        ends.deallocate()
    }

    /// Calls `body` once for each target that `router` gives any element of `chunk`, with those elements in
    /// their order in the chunk, targets in increasing order. `router` must return a target in
    /// `0..<targetCount`.
    @inlinable
    package mutating func sort(
        _ chunk: UnsafeBufferPointer<Element>, by router: inout some Router<Element>,
        _ body: (_ target: Int, _ elements: UnsafeBufferPointer<Element>) throws -> Void
    ) rethrows {
        if targetCount == 1 {
            if !chunk.isEmpty { try body(0, chunk) }
            return
        }
        if chunk.count >= capacity {
            scratch.deallocate()
            targets.deallocate()
            capacity = chunk.count + 1
            scratch = .allocate(capacity: Self.scratchCapacity(capacity, targetCount))
            targets = .allocate(capacity: capacity)
        }
        // Safe: every index below is under chunk.count < capacity, or a target checked to be in range.
        if _isPOD(Element.self) && targetCount == 2 {
            // Two targets (a routing shuffle on local[2]): one pass, each element written at both targets' next
            // positions (the second target's in the scratch's second half) and only its own target's position
            // moving. Plain bytes, so an element written over is no leak.
            let (first, second) = (scratch, scratch + capacity)
            var (firstEnd, secondEnd) = (0, 0)
            for i in chunk.indices {
                let t = router.target(of: chunk[i])
                precondition(UInt(bitPattern: t) < 2, "an element routed to \(t), outside 0..<2")
                (first + firstEnd).initialize(to: chunk[i])
                (second + secondEnd).initialize(to: chunk[i])
                secondEnd &+= t
                firstEnd &+= 1 &- t
            }
            if firstEnd > 0 { try body(0, UnsafeBufferPointer(start: first, count: firstEnd)) }
            if secondEnd > 0 { try body(1, UnsafeBufferPointer(start: second, count: secondEnd)) }
            return
        }
        if _isPOD(Element.self) && targetCount <= Self.fewTargets {
            for i in chunk.indices {
                let t = router.target(of: chunk[i])
                precondition(t >= 0 && t < targetCount, "an element routed to \(t), outside 0..<\(targetCount)")
                targets[i] = 1 &<< Int32(truncatingIfNeeded: t)  // a bit per target
            }
            // One pass over the chunk per target: every element is written at the target's next position, and
            // the position moves past the target's own only (no branch to mispredict, the position in a
            // register). Plain bytes, so an element written over is no leak; the last write of a pass may land
            // one past the chunk (capacity has room). A counting sort keeps each target's position in memory,
            // and with few targets consecutive elements of one target wait on each other's store.
            var end = 0
            for t in 0..<targetCount {
                let (start, bit) = (end, Int32(truncatingIfNeeded: t))
                for i in chunk.indices {
                    (scratch + end).initialize(to: chunk[i])
                    end &+= Int(truncatingIfNeeded: (targets[i] &>> bit) & 1)  // arithmetic: a compare becomes a branch
                }
                if end > start { try body(t, UnsafeBufferPointer(start: scratch + start, count: end &- start)) }
            }
            return
        }
        ends.update(repeating: 0, count: targetCount)
        for i in chunk.indices {
            let t = router.target(of: chunk[i])
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
