import Synchronization
import SluiceColumnar

/// An allocator for tests: counts allocations and live bytes, and fails on demand to simulate exhaustion.
public final class CountingAllocator: Sendable {
    private struct State {
        var allocations = 0
        var deallocations = 0
        var liveBytes = 0
        var failAfter: Int?
    }

    private let state = Mutex(State())
    private let base: BufferAllocator

    /// Counts the calls to `base` (jemalloc by default).
    public init(base: BufferAllocator = .standard) {
        self.base = base
    }

    /// Successful allocations so far.
    public var allocations: Int { state.withLock { $0.allocations } }
    /// Deallocations so far.
    public var deallocations: Int { state.withLock { $0.deallocations } }
    /// Bytes allocated and not yet deallocated.
    public var liveBytes: Int { state.withLock { $0.liveBytes } }

    /// After `count` more successful allocations every allocation fails; `nil` lifts the limit.
    public func failAfter(_ count: Int?) {
        state.withLock { s in s.failAfter = count.map { $0 + s.allocations } }
    }

    /// The allocator to hand to a ``BufferPool``.
    public var allocator: BufferAllocator {
        let base = self.base
        return BufferAllocator(
            allocate: { [self] byteCount in
                let allowed = state.withLock { s -> Bool in
                    if let limit = s.failAfter, s.allocations >= limit { return false }
                    s.allocations += 1
                    s.liveBytes += byteCount
                    return true
                }
                return allowed ? base.allocate(byteCount: byteCount) : nil
            },
            deallocate: { [self] pointer, byteCount in
                state.withLock {
                    $0.deallocations += 1
                    $0.liveBytes -= byteCount
                }
                base.deallocate(pointer, byteCount: byteCount)
            })
    }
}
