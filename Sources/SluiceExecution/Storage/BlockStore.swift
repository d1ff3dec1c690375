import SluiceColumnar
import Synchronization

/// A holder of cached partitions that the block store may ask to give memory back.
protocol CacheOwner: AnyObject, Sendable {
    var id: Int { get }
    /// What the cached partitions are for, in memory reports (`.cache`, `.state` or `.window`).
    var category: MemoryCategory { get }
    /// Moves partition `partition` out of memory: to disk if its storage level allows, else drops it.
    /// Returns whether it left memory (a failed disk write keeps it where it was).
    func evict(partition: Int) -> Bool
}

/// The engine's cached partitions as far as memory goes: what each holds of the budget (as the "block store"
/// consumer of its owner's category: cached RDDs, state, windows), and least-recently-used eviction when a new partition needs room. A partition is never evicted
/// to make room for another partition of the same RDD (Spark's rule), so a cache larger than memory keeps its
/// first partitions and sends the rest to disk or recomputation.
final class BlockStore: Sendable {
    struct Key: Hashable {
        let owner: Int
        let partition: Int
    }

    private struct Entry {
        var bytes: Int
        var lastUse: UInt64
        let category: MemoryCategory
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var owners: [Int: WeakOwner] = [:]
        var clock: UInt64 = 0
    }

    /// The budget's reservations, one per category of owner.
    private let cached, states, windows: MemoryReservation
    private let budget: MemoryBudget
    private let state = Mutex(State())

    init(memory: MemoryBudget) {
        budget = memory
        cached = memory.reservation(for: "block store (cache)", category: .cache)
        states = memory.reservation(for: "block store (state)", category: .state)
        windows = memory.reservation(for: "block store (window)", category: .window)
    }

    func register(_ owner: some CacheOwner) {
        let box = WeakOwner(owner)
        state.withLock { $0.owners[owner.id] = box }
    }

    func unregister(owner: Int) {
        state.withLock { $0.owners[owner] = nil }
    }

    /// Bytes of the budget cached partitions hold.
    var bytesInMemory: Int { cached.size + states.size + windows.size }

    /// The reservation partitions of `category` hold (other categories count as cached RDDs).
    private func reservation(_ category: MemoryCategory) -> MemoryReservation {
        switch category {
        case .state: states
        case .window: windows
        default: cached
        }
    }

    /// Reserves `bytes` for partition `partition` of `owner`, evicting least recently used partitions of other
    /// owners when the budget is short. Returns false when there is still no room.
    func reserve(_ bytes: Int, owner: Int, partition: Int) -> Bool {
        let key = Key(owner: owner, partition: partition)
        if tryAdd(key, bytes) { return true }
        let victims = state.withLock { state -> [(Key, WeakOwner)] in
            var needed = bytes - budget.availableBytes
            var chosen: [(Key, WeakOwner)] = []
            let candidates = state.entries.filter { $0.key.owner != owner }.sorted { $0.value.lastUse < $1.value.lastUse }
            for (victim, entry) in candidates where needed > 0 {
                guard let box = state.owners[victim.owner] else { continue }
                chosen.append((victim, box))
                needed -= entry.bytes
            }
            return chosen
        }
        guard !victims.isEmpty else { return false }
        for (victim, box) in victims { _ = box.owner?.evict(partition: victim.partition) }
        return tryAdd(key, bytes)
    }

    private func tryAdd(_ key: Key, _ bytes: Int) -> Bool {
        let category = state.withLock { $0.owners[key.owner]?.category } ?? .cache
        guard reservation(category).tryGrow(by: bytes) else { return false }
        let replaced = state.withLock { state -> Entry? in
            state.clock += 1
            defer { state.entries[key] = Entry(bytes: bytes, lastUse: state.clock, category: category) }
            return state.entries[key]
        }
        if let replaced { reservation(replaced.category).shrink(by: replaced.bytes) }
        return true
    }

    /// Gives back what partition `partition` of `owner` held.
    func release(owner: Int, partition: Int) {
        let key = Key(owner: owner, partition: partition)
        if let entry = state.withLock({ $0.entries.removeValue(forKey: key) }) {
            reservation(entry.category).shrink(by: entry.bytes)
        }
    }

    /// Marks a partition as just used.
    func touch(owner: Int, partition: Int) {
        state.withLock { state in
            state.clock += 1
            state.entries[Key(owner: owner, partition: partition)]?.lastUse = state.clock
        }
    }
}

/// A weak reference to a cache owner, so that the store never keeps an RDD's cache alive.
final class WeakOwner: @unchecked Sendable {
    // @unchecked: `weak` storage is read and cleared atomically by the runtime.
    weak var owner: (any CacheOwner)?
    /// The owner's category, kept for its partitions after it is gone.
    let category: MemoryCategory
    init(_ owner: any CacheOwner) {
        self.owner = owner
        self.category = owner.category
    }
}
