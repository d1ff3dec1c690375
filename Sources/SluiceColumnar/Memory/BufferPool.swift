import Synchronization

/// Recycles buffer memory in power-of-two size classes, so that a steady stream of batches reaches a steady
/// state in which building a block calls no allocator at all.
///
/// Buffers from 64 bytes up to 1 GiB are pooled; larger ones go straight to the allocator. Memory released by a
/// buffer goes back to its class's free list; when that would pass `maxRetainedBytes`, free buffers of other
/// classes are given back to the allocator to make room (the buffer just released is the one most likely to be
/// needed again), and only a buffer larger than the whole limit is returned itself. Rounding up to a power of
/// two costs address space, not resident memory: pages past the bytes a buffer writes are never touched.
///
/// Thread-safe: one short critical section per buffer taken or released, none per element.
public final class BufferPool: Sendable {
    /// The process-wide pool over ``BufferAllocator/standard`` (jemalloc), retaining at most 512 MiB of free buffers.
    public static let shared = BufferPool(allocator: .standard, maxRetainedBytes: defaultRetainedBytes)
    /// What the shared pool keeps of free buffers when no memory budget says less: a batch's worth of the largest
    /// blocks a receiver makes (a batch of 40M Ints, the grouped job at 80M records/s, is 320 MB). With 256 MiB,
    /// every third such block went back to jemalloc and came again as fresh pages: page faults took 15% of
    /// that job's CPU (1.25-1.41 cores against 1.04-1.05 with 512 MiB, at the same peak RSS, since jemalloc
    /// keeps freed pages for its 10 s decay anyway).
    public static let defaultRetainedBytes = 512 << 20

    /// Sizes are `64 << sizeClass` for `sizeClass` in `0..<classCount` (64 B to 1 GiB).
    static let classCount = 25
    static let minimumCapacity = 64
    /// A request its class cannot serve from the free lists takes a free buffer of up to this many classes
    /// larger (up to 4x its size).
    static let reuseSpan = 2

    /// The allocator behind the pool.
    public let allocator: BufferAllocator
    /// At most this many bytes of free buffers are kept for reuse (see ``retainAtMost(_:)``).
    public var maxRetainedBytes: Int { state.withLock { $0.limit } }

    private struct State {
        // Addresses as plain integers: Sendable, unlike pointers.
        var freeMemory: [[UInt]] = Array(repeating: [], count: BufferPool.classCount)
        var freeStorage: [[ArenaStorage]] = Array(repeating: [], count: BufferPool.classCount)
        var retainedBytes = 0
        var limit: Int
        var statistics = BufferPool.Statistics()

        /// Counts a free buffer of `capacity` bytes taken for reuse.
        mutating func taken(_ capacity: Int) {
            retainedBytes -= capacity
            statistics.reuses += 1
            statistics.bytesInUse += capacity
            statistics.bytesRetained = retainedBytes
        }
    }

    private let state: Mutex<State>

    /// Counters since the pool was made.
    public struct Statistics: Sendable, Equatable {
        /// Calls to the allocator for new memory.
        public var allocatorCalls = 0
        /// Buffers served from a free list, no allocator call.
        public var reuses = 0
        /// Bytes of capacity held by live buffers.
        public var bytesInUse = 0
        /// Bytes of capacity kept on free lists.
        public var bytesRetained = 0
    }

    /// A pool over `allocator` that keeps at most `maxRetainedBytes` of free buffers.
    public init(allocator: BufferAllocator, maxRetainedBytes: Int) {
        self.allocator = allocator
        self.state = Mutex(State(limit: max(0, maxRetainedBytes)))
    }

    /// Bounds the memory behind the shared pool for a process under a memory budget of `limit` bytes (`.max`:
    /// none): free buffers kept for reuse stay within a quarter of it, and pages the pool gives back return to
    /// the system at once rather than after jemalloc's 10 s decay. Without a limit, the defaults apply.
    public static func bound(toBudget limit: Int) {
        shared.retainAtMost(limit == .max ? defaultRetainedBytes : min(defaultRetainedBytes, limit / 4))
        #if !SLUICE_SYSTEM_ALLOCATOR
        _ = JemallocArena.setDecay(milliseconds: limit == .max ? 10_000 : 0)
        #endif
    }

    /// Keeps at most `bytes` of free buffers from now on, giving back to the allocator what is over: a process
    /// under a memory budget (`sluice.memory.limit`) keeps its free buffers within a share of it.
    public func retainAtMost(_ bytes: Int) {
        var evicted = Evicted()
        state.withLock { state in
            state.limit = max(0, bytes)
            _ = Self.makeRoom(0, keeping: -1, limit: state.limit, in: &state, evicted: &evicted)
            state.statistics.bytesRetained = state.retainedBytes
        }
        release(evicted)
    }

    /// The counters now.
    public var statistics: Statistics {
        state.withLock { $0.statistics }
    }

    /// The size class that holds `byteCount` bytes, or `nil` when it is too large to pool.
    static func sizeClass(for byteCount: Int) -> Int? {
        let needed = max(byteCount, minimumCapacity)
        // Safe: needed >= 64, so the subtraction cannot underflow.
        let c = (Int.bitWidth - (needed - 1).leadingZeroBitCount) - 6
        return c < classCount ? c : nil
    }

    /// A buffer's storage of at least `minimumCapacity` bytes after `headroom` bytes kept in front of them (for
    /// a header to be written there later, see ``ArenaStorage/rebased(headroom:)``), or `nil` when the
    /// allocator is exhausted.
    func takeStorage(minimumCapacity: Int, headroom: Int) -> ArenaStorage? {
        guard headroom > 0 else { return takeStorage(minimumCapacity: minimumCapacity) }
        return takeStorage(minimumCapacity: minimumCapacity + headroom)?.rebased(headroom: headroom)
    }

    /// A buffer's storage of at least `minimumCapacity` bytes, or `nil` when the allocator is exhausted.
    func takeStorage(minimumCapacity: Int) -> ArenaStorage? {
        guard let sizeClass = Self.sizeClass(for: minimumCapacity) else {
            guard let pointer = allocator.allocate(byteCount: minimumCapacity) else { return nil }
            state.withLock {
                $0.statistics.allocatorCalls += 1
                $0.statistics.bytesInUse += minimumCapacity
            }
            return ArenaStorage(pointer: pointer, capacity: minimumCapacity, sizeClass: -1, pool: self)
        }
        enum Found { case storage(ArenaStorage), memory(UnsafeMutableRawPointer, sizeClass: Int), none }
        let found: Found = state.withLock { state in
            // Its own class first, else a free buffer up to `reuseSpan` classes larger: memory the pool holds
            // anyway, where a fresh one would be pages to fault in.
            for c in sizeClass...min(sizeClass + Self.reuseSpan, Self.classCount - 1) {
                let capacity = Self.minimumCapacity << c
                if let storage = state.freeStorage[c].popLast() {
                    state.taken(capacity)
                    return .storage(storage)
                }
                if let address = state.freeMemory[c].popLast(), let pointer = UnsafeMutableRawPointer(bitPattern: address) {
                    state.taken(capacity)
                    return .memory(pointer, sizeClass: c)
                }
            }
            return .none
        }
        let capacity = Self.minimumCapacity << sizeClass
        switch found {
        case .storage(let storage):
            return storage
        case .memory(let pointer, let c):
            return ArenaStorage(pointer: pointer, capacity: Self.minimumCapacity << c, sizeClass: c, pool: self)
        case .none:
            guard let pointer = allocator.allocate(byteCount: capacity) else { return nil }
            state.withLock {
                $0.statistics.allocatorCalls += 1
                $0.statistics.bytesInUse += capacity
            }
            return ArenaStorage(pointer: pointer, capacity: capacity, sizeClass: sizeClass, pool: self)
        }
    }

    /// Free buffers taken off the lists to make room; released outside the lock.
    private struct Evicted {
        var memory: [(UInt, Int)] = []
        var storage: [ArenaStorage] = []
    }

    /// Makes room for `capacity` more retained bytes by evicting free buffers of other classes, largest class
    /// first. Returns `false` when `capacity` alone passes the limit.
    private static func makeRoom(
        _ capacity: Int, keeping sizeClass: Int, limit: Int, in state: inout State, evicted: inout Evicted
    ) -> Bool {
        guard capacity <= limit else { return false }
        var c = classCount - 1
        while state.retainedBytes + capacity > limit && c >= 0 {
            if c != sizeClass, let s = state.freeStorage[c].popLast() {
                evicted.storage.append(s)
                state.retainedBytes -= s.capacity
            } else if c != sizeClass, let address = state.freeMemory[c].popLast() {
                evicted.memory.append((address, minimumCapacity << c))
                state.retainedBytes -= minimumCapacity << c
            } else {
                c -= 1
            }
        }
        return state.retainedBytes + capacity <= limit
    }

    private func release(_ evicted: Evicted) {
        for (address, capacity) in evicted.memory {
            if let pointer = UnsafeMutableRawPointer(bitPattern: address) {
                allocator.deallocate(pointer, byteCount: capacity)
            }
        }
        for s in evicted.storage { s.freeOnDeinit = true }
        // `evicted.storage` goes out of scope with the caller's value; each deinit frees its memory.
    }

    /// Takes back a whole storage object (memory and object) that no one else references.
    func recycle(_ storage: ArenaStorage) {
        let sizeClass = storage.sizeClass
        // Unpooled, or with headroom (the free lists hold whole allocations): its deinit frees or returns it.
        guard sizeClass >= 0, storage.headroom == 0, storage.ownsMemory else { return }
        var evicted = Evicted()
        state.withLock { state in
            // When it cannot be kept, the storage's deinit returns (or frees) its memory.
            guard Self.makeRoom(storage.capacity, keeping: sizeClass, limit: state.limit,
                in: &state, evicted: &evicted) else { return }
            state.statistics.bytesInUse -= storage.capacity
            state.retainedBytes += storage.capacity
            state.statistics.bytesRetained = state.retainedBytes
            state.freeStorage[sizeClass].append(storage)
        }
        release(evicted)
    }

    /// Called by a storage's deinit: keeps its memory for reuse or returns it to the allocator.
    func returnMemory(_ pointer: UnsafeMutableRawPointer, capacity: Int, sizeClass: Int) {
        var evicted = Evicted()
        let kept: Bool = state.withLock { state in
            state.statistics.bytesInUse -= capacity
            guard sizeClass >= 0, Self.makeRoom(capacity, keeping: sizeClass, limit: state.limit,
                in: &state, evicted: &evicted) else { return false }
            state.retainedBytes += capacity
            state.statistics.bytesRetained = state.retainedBytes
            state.freeMemory[sizeClass].append(UInt(bitPattern: pointer))
            return true
        }
        if !kept {
            allocator.deallocate(pointer, byteCount: capacity)
        }
        release(evicted)
    }

    /// Returns every retained free buffer to the allocator.
    public func trim() {
        let evicted: Evicted = state.withLock { state in
            var evicted = Evicted()
            for c in 0..<Self.classCount {
                evicted.memory += state.freeMemory[c].map { ($0, Self.minimumCapacity << c) }
                evicted.storage += state.freeStorage[c]
                state.freeMemory[c].removeAll()
                state.freeStorage[c].removeAll()
            }
            state.retainedBytes = 0
            state.statistics.bytesRetained = 0
            return evicted
        }
        release(evicted)
    }
}

/// The memory behind a buffer: a 64-byte aligned allocation from a ``BufferPool``.
///
/// Mutated only by the one value that references it uniquely (copy-on-write), read-only once shared.
@usableFromInline
final class ArenaStorage: @unchecked Sendable {
    // Safe (@unchecked Sendable): the bytes are written only through a uniquely referenced owner; a shared
    // storage is immutable, so concurrent readers never race a writer.
    /// The buffer's bytes: `capacity` of them, `headroom` bytes into the allocation.
    @usableFromInline let pointer: UnsafeMutableRawPointer
    @usableFromInline let capacity: Int
    /// Bytes of the allocation before `pointer`, kept free for a header (0 for most buffers).
    let headroom: Int
    let sizeClass: Int
    let pool: BufferPool
    var freeOnDeinit = false
    /// False once another storage took over the memory (``rebased(headroom:)``): this one then frees nothing.
    private(set) var ownsMemory = true

    init(pointer: UnsafeMutableRawPointer, capacity: Int, sizeClass: Int, pool: BufferPool, headroom: Int = 0) {
        self.pointer = pointer
        self.capacity = capacity
        self.headroom = headroom
        self.sizeClass = sizeClass
        self.pool = pool
    }

    /// A storage over the same allocation with `headroom` bytes before its buffer instead of this one's,
    /// which hands the memory over: this storage must not be used again (its owner drops it). How a block is
    /// sealed in the memory its rows were written to: the header goes in the headroom, and the storage then
    /// starts at the header.
    func rebased(headroom: Int) -> ArenaStorage {
        precondition(ownsMemory, "a storage's memory handed over twice")
        let base = pointer - self.headroom
        let allocated = capacity + self.headroom
        precondition(headroom >= 0 && headroom <= allocated, "headroom \(headroom) outside an allocation of \(allocated)")
        ownsMemory = false
        let moved = ArenaStorage(
            pointer: base + headroom, capacity: allocated - headroom, sizeClass: sizeClass, pool: pool,
            headroom: headroom)
        moved.freeOnDeinit = freeOnDeinit
        return moved
    }

    /// A storage of no bytes that is never freed: what a recycled block holds.
    static let empty: ArenaStorage = {
        let pool = BufferPool(allocator: BufferPool.shared.allocator, maxRetainedBytes: 0)
        guard let storage = pool.takeStorage(minimumCapacity: 0) else {
            fatalError("Sluice: no memory for a 64-byte buffer at start-up")
        }
        return storage
    }()

    deinit {
        guard ownsMemory else { return }
        let (base, allocated) = (pointer - headroom, capacity + headroom)
        if freeOnDeinit {
            pool.allocator.deallocate(base, byteCount: allocated)
        } else {
            pool.returnMemory(base, capacity: allocated, sizeClass: sizeClass)
        }
    }
}
