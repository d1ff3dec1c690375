import Synchronization

/// The process-wide memory budget (`sluice.memory.limit`): named consumers reserve bytes from it, and a
/// reservation that would pass the limit fails, so that its owner can spill instead of the process dying
/// (the idea of DataFusion's memory pool).
///
/// The budget counts what consumers declare, not what the allocator holds; ``report()`` shows both.
public final class MemoryBudget: Sendable {
    /// The limit in bytes; `Int.max` means unlimited.
    public let limit: Int

    private struct State {
        var reserved = 0
        var byConsumer: [String: Int] = [:]
    }

    private let state = Mutex(State())

    /// A budget of `limit` bytes (unlimited by default).
    public init(limit: Int = .max) {
        self.limit = limit
    }

    /// A new, empty reservation in the name of `consumer` (e.g. "block store", "shuffle 3").
    public func reservation(for consumer: String) -> MemoryReservation {
        MemoryReservation(budget: self, consumer: consumer)
    }

    /// Bytes reserved by all consumers.
    public var reservedBytes: Int {
        state.withLock { $0.reserved }
    }

    /// Bytes still free under the limit.
    public var availableBytes: Int {
        limit == .max ? .max : max(0, limit - reservedBytes)
    }

    func tryReserve(_ bytes: Int, for consumer: String) -> Result<Void, MemoryError> {
        state.withLock { state in
            guard bytes <= limit - state.reserved else {
                return .failure(MemoryError(.budgetExceeded(
                    consumer: consumer, requested: bytes, reserved: state.reserved, limit: limit)))
            }
            state.reserved += bytes
            state.byConsumer[consumer, default: 0] += bytes
            return .success(())
        }
    }

    func release(_ bytes: Int, for consumer: String) {
        guard bytes > 0 else { return }
        state.withLock { state in
            state.reserved -= bytes
            let left = state.byConsumer[consumer, default: 0] - bytes
            state.byConsumer[consumer] = left > 0 ? left : nil
        }
    }

    /// What the budget and the allocator hold now.
    public func report() -> MemoryReport {
        let (reserved, byConsumer) = state.withLock { ($0.reserved, $0.byConsumer) }
        return MemoryReport(
            limit: limit, reserved: reserved, byConsumer: byConsumer,
            pool: BufferPool.shared.statistics, allocator: AllocatorStatistics.current())
    }
}

/// A snapshot of memory use: the budget's reservations, the shared buffer pool and jemalloc's statistics.
public struct MemoryReport: Sendable {
    /// The budget's limit in bytes (`Int.max` when unlimited).
    public var limit: Int
    /// Bytes reserved by all consumers.
    public var reserved: Int
    /// Bytes reserved per consumer name.
    public var byConsumer: [String: Int]
    /// The shared buffer pool's counters.
    public var pool: BufferPool.Statistics
    /// jemalloc's statistics, `nil` when unavailable.
    public var allocator: AllocatorStatistics?
}

/// Bytes reserved from a ``MemoryBudget`` by one consumer. Released when freed or deinitialized.
///
/// Thread-safe; usually owned by one component (a block store, a shuffle buffer, a state store).
public final class MemoryReservation: Sendable {
    /// The budget reserved from.
    public let budget: MemoryBudget
    /// The consumer's name, shown in errors and reports.
    public let consumer: String
    private let bytes = Mutex(0)

    init(budget: MemoryBudget, consumer: String) {
        self.budget = budget
        self.consumer = consumer
    }

    deinit {
        budget.release(bytes.withLock { $0 }, for: consumer)
    }

    /// Bytes this reservation holds.
    public var size: Int {
        bytes.withLock { $0 }
    }

    /// Reserves `extra` more bytes.
    /// - Throws: ``MemoryError`` (`budgetExceeded`) when the budget cannot grant them; nothing changes then.
    public func grow(by extra: Int) throws(MemoryError) {
        precondition(extra >= 0, "a reservation grows by a non-negative amount")
        try bytes.withLock { (held: inout Int) throws(MemoryError) in
            try budget.tryReserve(extra, for: consumer).get()
            held += extra
        }
    }

    /// Reserves `extra` more bytes if the budget allows; `false` (and no change) otherwise.
    public func tryGrow(by extra: Int) -> Bool {
        do {
            try grow(by: extra)
            return true
        } catch {
            return false
        }
    }

    /// Gives back `amount` bytes (at most what is held).
    public func shrink(by amount: Int) {
        let released = bytes.withLock { (held: inout Int) -> Int in
            let r = min(max(amount, 0), held)
            held -= r
            return r
        }
        budget.release(released, for: consumer)
    }

    /// Grows or shrinks to exactly `newSize` bytes.
    /// - Throws: ``MemoryError`` when growing is refused; the size is then unchanged.
    public func resize(to newSize: Int) throws(MemoryError) {
        let current = size
        if newSize > current {
            try grow(by: newSize - current)
        } else {
            shrink(by: current - newSize)
        }
    }

    /// Gives back everything held.
    public func free() {
        shrink(by: .max)
    }
}
