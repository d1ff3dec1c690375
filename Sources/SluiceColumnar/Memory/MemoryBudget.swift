import Synchronization

/// What a reservation holds memory for, so that a report can say where the budget went.
public enum MemoryCategory: String, Sendable, Hashable, Codable, CodingKeyRepresentable, CaseIterable {
    /// Blocks receivers stored and batches have not yet dropped.
    case receive
    /// Shuffles' map and reduce tables.
    case shuffle
    /// Persisted RDDs (`persist`, `cache`) other than state and windows.
    case cache
    /// The state of `updateStateByKey`, `mapWithState` and windows reduced with an inverse.
    case state
    /// Batches kept for the windows that read them.
    case window
    /// Anything else.
    case other
}

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
        var byCategory: [MemoryCategory: Int] = [:]
    }

    private let state = Mutex(State())

    /// A budget of `limit` bytes (unlimited by default).
    public init(limit: Int = .max) {
        self.limit = limit
    }

    /// A new, empty reservation in the name of `consumer` (e.g. "block store", "shuffle 3"), counted under
    /// `category` in reports.
    public func reservation(for consumer: String, category: MemoryCategory = .other) -> MemoryReservation {
        MemoryReservation(budget: self, consumer: consumer, category: category)
    }

    /// Bytes reserved by all consumers.
    public var reservedBytes: Int {
        state.withLock { $0.reserved }
    }

    /// Bytes still free under the limit.
    public var availableBytes: Int {
        limit == .max ? .max : max(0, limit - reservedBytes)
    }

    /// Reserves `bytes` if they fit under the limit, or regardless with `overcommit`.
    func tryReserve(
        _ bytes: Int, for consumer: String, _ category: MemoryCategory, overcommit: Bool = false
    ) -> Result<Void, MemoryError> {
        state.withLock { state in
            guard overcommit || bytes <= limit - state.reserved else {
                return .failure(MemoryError(.budgetExceeded(
                    consumer: consumer, requested: bytes, reserved: state.reserved, limit: limit)))
            }
            state.reserved += bytes
            state.byConsumer[consumer, default: 0] += bytes
            state.byCategory[category, default: 0] += bytes
            return .success(())
        }
    }

    func release(_ bytes: Int, for consumer: String, _ category: MemoryCategory) {
        guard bytes > 0 else { return }
        state.withLock { state in
            state.reserved -= bytes
            let left = state.byConsumer[consumer, default: 0] - bytes
            state.byConsumer[consumer] = left > 0 ? left : nil
            let inCategory = state.byCategory[category, default: 0] - bytes
            state.byCategory[category] = inCategory > 0 ? inCategory : nil
        }
    }

    /// Bytes reserved per category now (categories holding nothing are left out).
    public var reservedByCategory: [MemoryCategory: Int] {
        state.withLock { $0.byCategory }
    }

    /// What the budget and the allocator hold now.
    public func report() -> MemoryReport {
        let (reserved, byConsumer, byCategory) = state.withLock { ($0.reserved, $0.byConsumer, $0.byCategory) }
        return MemoryReport(
            limit: limit, reserved: reserved, byConsumer: byConsumer, byCategory: byCategory,
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
    /// Bytes reserved per category.
    public var byCategory: [MemoryCategory: Int]
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
    /// What the bytes are for, in reports.
    public let category: MemoryCategory
    private let bytes = Mutex(0)

    init(budget: MemoryBudget, consumer: String, category: MemoryCategory) {
        self.budget = budget
        self.consumer = consumer
        self.category = category
    }

    deinit {
        budget.release(bytes.withLock { $0 }, for: consumer, category)
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
            try budget.tryReserve(extra, for: consumer, category).get()
            held += extra
        }
    }

    /// Reserves `extra` more bytes even past the limit: for memory that is held whatever the budget says (data
    /// that cannot wait and has nowhere else to go), so that the report shows it.
    public func overcommit(by extra: Int) {
        precondition(extra >= 0, "a reservation grows by a non-negative amount")
        bytes.withLock { held in
            _ = budget.tryReserve(extra, for: consumer, category, overcommit: true)
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
        budget.release(released, for: consumer, category)
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
