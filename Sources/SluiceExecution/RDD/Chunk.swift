/// Elements travel from one operator to the next in chunks of at most this many: enough to amortise the call
/// per chunk, few enough to stay in cache. Sources cut their partitions into chunks and pass a
/// ``WorkStealingPool/yieldPoint()`` between them.
@usableFromInline let chunkCapacity = 1024

/// An operator's reusable output chunk: filled element by element, handed on when full or when its input
/// chunk is done, then emptied keeping its memory.
///
/// One fixed allocation of ``chunkCapacity`` elements, written through a pointer: an append is a store and an
/// increment, with none of an array's uniqueness and capacity checks per element (the hot loop of every narrow
/// operator). Noncopyable, so that the memory has one owner, freed when the buffer goes.
@usableFromInline
package struct ChunkBuffer<Element>: ~Copyable {
    @usableFromInline let base: UnsafeMutablePointer<Element>
    @usableFromInline var count = 0

    @inlinable
    package init() {
        base = .allocate(capacity: chunkCapacity)
    }

    deinit {
        destroy(base, count)
        base.deallocate()
    }

    /// Destroys the first `count` elements at `base`, each through the code specialized for `Element` (the
    /// runtime's generic `deinitialize(count:)` calls value witnesses per element: several calls for a pair).
    /// The word path's elements, a ``Word`` or a `(Word, Int)`, are destroyed only when the word is long: an
    /// inline word holds no reference, and testing for one here costs less than the call that drops it.
    @inlinable @inline(__always)
    func destroy(_ base: UnsafeMutablePointer<Element>, _ count: Int) {
        if _isPOD(Element.self) { return }
        // The type checks are resolved where the code is specialized; each pointer is base's own memory under
        // the name of the type Element is.
        if Element.self == Word.self {
            let words = UnsafeMutableRawPointer(base).assumingMemoryBound(to: Word.self)
            for i in 0..<count where !words[i].isInline { (words + i).deinitialize(count: 1) }
        } else if Element.self == (Word, Int).self {
            let pairs = UnsafeMutableRawPointer(base).assumingMemoryBound(to: (Word, Int).self)
            for i in 0..<count where !pairs[i].0.isInline { (pairs + i).deinitialize(count: 1) }
        } else {
            for i in 0..<count { _ = (base + i).move() }
        }
    }

    @inlinable package var isFull: Bool { count >= chunkCapacity }

    /// Appends `element`; the buffer must not be full (callers flush a full buffer first, or append at most
    /// ``chunkCapacity`` elements between flushes).
    @inlinable @inline(__always)
    package mutating func append(_ element: consuming Element) {
        assert(count < chunkCapacity, "append to a full chunk buffer")
        // Safe: callers keep count below chunkCapacity, the allocation's size.
        (base + count).initialize(to: element)
        count &+= 1
    }

    /// Appends `element`, a value of `Element`'s own type seen under another name (a generic `T` known to be
    /// `Element`), moved in without a copy. The buffer must not be full.
    @inlinable @inline(__always)
    package mutating func append<T>(moving element: consuming T) {
        precondition(T.self == Element.self, "\(T.self) appended to a buffer of \(Element.self)")
        assert(count < chunkCapacity, "append to a full chunk buffer")
        // Safe: T is Element (checked above, and resolved where the call is specialized); count < capacity.
        UnsafeMutableRawPointer(base + count).initializeMemory(as: T.self, to: element)
        count &+= 1
    }

    /// Appends `element` and, when that fills the buffer, hands it to `sink`, then passes a
    /// ``WorkStealingPool/yieldPoint()``: how a reduce side emits what it reads.
    @inlinable
    package mutating func append(
        _ element: consuming Element, flushingFullTo sink: (UnsafeBufferPointer<Element>) throws -> Void
    ) throws {
        append(element)
        if isFull {
            try flush(to: sink)
            WorkStealingPool.yieldPoint()
        }
    }

    /// Hands the elements over to `sink`, which takes them (moves out or deinitializes each, even when it throws),
    /// and empties the buffer.
    @inlinable
    package mutating func flush(handingOverTo sink: (UnsafeMutableBufferPointer<Element>) throws -> Void) throws {
        guard count > 0 else { return }
        defer { count = 0 }  // the sink took them, thrown or not
        try sink(UnsafeMutableBufferPointer(start: base, count: count))
    }

    /// Hands the elements to `sink` (if there are any) and empties the buffer.
    @inlinable
    package mutating func flush(to sink: (UnsafeBufferPointer<Element>) throws -> Void) throws {
        guard count > 0 else { return }
        // Emptied whether or not the sink throws: the elements go either way.
        defer {
            destroy(base, count)
            count = 0
        }
        try sink(UnsafeBufferPointer(start: base, count: count))
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

extension UnsafeBufferPointer {
    /// `f` of element `i` (below `count`). A ``Word`` goes through ``withWord(at:_:)``: an inline one is handed to
    /// `f` rebuilt from its integers, known inline where `f` is called (`f(self[i])` copies the element and drops
    /// the copy around the call: for a word, two calls that test whether it holds a String). Other elements go as
    /// `f(self[i])`.
    @inlinable @inline(__always)
    func apply<U>(_ f: (Element) throws -> U, at i: Int) rethrows -> U {
        if Element.self == Word.self {
            // Element is Word (resolved where the code is specialized).
            return try same(as: Word.self).withWord(at: i) { try f(unsafeBitCast($0, to: Element.self)) }
        }
        return try f(self[i])
    }
}

/// Calls `body` with consecutive ranges of at most ``chunkCapacity`` of `0..<count`, with a yield point after
/// each: how sources cut a partition into chunks.
@inlinable
func forEachChunk(of count: Int, _ body: (Range<Int>) throws -> Void) rethrows {
    try forEachChunk(of: 0..<count, body)
}

/// ``forEachChunk(of:_:)`` over the indices `range`.
@inlinable
func forEachChunk(of range: Range<Int>, _ body: (Range<Int>) throws -> Void) rethrows {
    var start = range.lowerBound
    while start < range.upperBound {
        let end = min(start + chunkCapacity, range.upperBound)
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

extension UnsafeBufferPointer where Element == Word {
    /// Word `i` (below `count`) handed to `body` owned, as the word forms of `map` hand it to their closures: an
    /// inline word rebuilt from its integers (as ``apply(_:at:)`` does: no copy, nothing to drop), a long one
    /// copied (its String retained).
    @inlinable @inline(__always)
    func withWord<R>(at i: Int, _ body: (consuming Word) throws -> R) rethrows -> R {
        // Safe: i < count, so the buffer has a base address and word i is in it.
        if let base = baseAddress, let (low, high, hash) = Word.inlineParts(at: base + i) {
            return try body(Word(storage: .inline(low: low, high: high), hash: hash))
        }
        return try body(self[i])
    }
}
