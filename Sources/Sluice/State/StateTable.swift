import CSluiceIntrinsics
import Glibc
import SluiceExecution

/// A key's hash for a state table: a bijective mix for `Int` keys (cheap, and every bit counts), `hashValue`
/// for any other key.
@inlinable @inline(__always)
func stateHash<K: Hashable>(_ key: K) -> Int {
    if K.self == Int.self {
        // Safe: K is Int here, so the cast is the identity.
        return Int(truncatingIfNeeded: mix64(UInt64(UInt(bitPattern: unsafeBitCast(key, to: Int.self)))))
    }
    return key.hashValue
}

/// A key and its value in a ``StateTable`` slot.
@usableFromInline
struct StateSlot<K, Value> {
    @usableFromInline var key: K
    @usableFromInline var value: Value

    @inlinable init(key: K, value: Value) {
        self.key = key
        self.value = value
    }

    @inlinable
    mutating func modifyValue(_ body: (inout Value) -> Void) { body(&value) }
}

/// The slots of a ``StateTable``: a fixed number, all initialized (empty slots are nil). Large tables are
/// mapped with transparent huge pages requested: a lookup in a state of hundreds of megabytes then misses the
/// cache but rarely the TLB (with 4 KiB pages nearly every lookup also walked the page table).
@usableFromInline
final class StateSlots<K, Value>: @unchecked Sendable {
    // @unchecked: a table mutates its slots only while it holds the only reference (copy on write), so slots
    // reachable from more than one table are only read.
    @usableFromInline typealias Slot = StateSlot<K, Value>?
    @usableFromInline let base: UnsafeMutablePointer<Slot>
    @usableFromInline let capacity: Int
    /// The bytes mapped with mmap, or 0 when allocated.
    private let mappedBytes: Int

    /// From this size on, slots are mapped rather than allocated.
    static var hugePageThreshold: Int { 4 << 20 }

    @usableFromInline
    init(capacity: Int) {
        self.capacity = capacity
        let bytes = capacity * MemoryLayout<Slot>.stride
        var mapped: UnsafeMutableRawPointer?
        if bytes >= Self.hugePageThreshold,
            let address = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            address != MAP_FAILED
        {
            _ = madvise(address, bytes, MADV_HUGEPAGE)  // a hint: without it the table only runs slower
            mapped = address
        }
        if let mapped {
            base = mapped.bindMemory(to: Slot.self, capacity: capacity)
            mappedBytes = bytes
        } else {
            base = .allocate(capacity: capacity)
            mappedBytes = 0
        }
        base.initialize(repeating: nil, count: capacity)
    }

    /// A copy of these slots.
    @usableFromInline
    func copy() -> StateSlots {
        let copy = StateSlots(capacity: capacity)
        copy.base.update(from: base, count: capacity)
        return copy
    }

    deinit {
        base.deinitialize(count: capacity)
        if mappedBytes > 0 {
            munmap(base, mappedBytes)
        } else {
            base.deallocate()
        }
    }
}

/// The table behind `mapWithState`'s per-partition state: an open-addressing hash table that keeps each key
/// and its value together in its slot, so that a lookup in a table far larger than the cache touches one cache
/// line or two (Swift's `Dictionary` keeps keys and values apart), and a batch can prefetch the slots of the
/// records a few ahead (``prefetch(hash:)``). Linear probing, at most 3/4 full (1/4 while small), removal by
/// backward shift (no tombstones, so lookups never slow down as keys come and go). A value type: copies share
/// slots until one of them changes.
@usableFromInline
struct StateTable<K: Hashable, Value> {
    @usableFromInline var storage: StateSlots<K, Value>
    @usableFromInline var count = 0

    @inlinable
    init() { storage = StateSlots(capacity: 16) }

    /// Tables up to this many slots (2 MiB of 32-byte slots, about the caches of a core) are kept at most 1/4
    /// full, larger ones 3/4: in a table in cache a lookup's cost is its mispredicted probes, and a key sits
    /// past its first slot about a third of the time at half full, a seventh at a quarter.
    @usableFromInline static var sparseSlots: Int { 65_536 }

    @inlinable var mask: Int { storage.capacity &- 1 }

    /// The slot holding `key` (`found`), or the empty slot where it would go.
    @inlinable
    func find(_ key: K, hash: Int) -> (found: Bool, slot: Int) {
        let (base, mask) = (storage.base, self.mask)
        var slot = hash & mask
        // Safe: slot is masked into the table, whose slots are all initialized; the table is never full.
        while let occupant = base[slot] {
            if occupant.key == key { return (true, slot) }
            slot = (slot &+ 1) & mask
        }
        return (false, slot)
    }

    @inlinable
    func find(_ key: K) -> (found: Bool, slot: Int) { find(key, hash: stateHash(key)) }

    /// The value of `key`, if present.
    @inlinable
    subscript(key: K) -> Value? {
        let (found, slot) = find(key)
        return found ? value(at: slot) : nil
    }

    /// The value in `slot`, a slot a successful ``find(_:hash:)`` returned.
    @inlinable
    func value(at slot: Int) -> Value {
        // Safe: a found slot is in range and holds a key.
        storage.base[slot].unsafelyUnwrapped.value
    }

    /// The bytes of the slots.
    @inlinable var slotBytes: Int { storage.capacity &* MemoryLayout<StateSlots<K, Value>.Slot>.stride }

    /// Whether the slots are more than a core's L2 cache holds (512 KiB), so that a lookup may miss it.
    @inlinable var outgrowsCache: Bool { slotBytes > 1 << 19 }

    /// Whether the slots are more than the last-level cache is likely to hold for them (8 MiB: a quarter of a
    /// 32 MiB L3 shared by every core), so that nearly every lookup misses it.
    @inlinable var outgrowsLastLevelCache: Bool { slotBytes > 8 << 20 }

    /// Brings the slots a key of this hash probes first into cache: its slot's cache line and the next (a probe
    /// often runs on past the end of the first line).
    @inlinable
    func prefetch(hash: Int) {
        // Safe: the masked index is within the table; a prefetch never faults, even past its end.
        let slot = UnsafeRawPointer(storage.base + (hash & mask))
        sluice_prefetch_for_write(slot)
        sluice_prefetch_for_write(slot + 64)
    }

    @inlinable
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    /// Changes the value in `slot`, a slot a successful ``find(_:hash:)`` returned.
    @inlinable
    mutating func modifyValue(at slot: Int, _ body: (inout Value) -> Void) {
        makeUnique()
        // Safe: a found slot is in range and holds a key; the storage is this table's alone.
        let pointer = storage.base + slot
        var occupant = pointer.move().unsafelyUnwrapped
        body(&occupant.value)
        pointer.initialize(to: occupant)
    }

    /// Changes the value in `slot` (a slot a successful ``find(_:hash:)`` returned) in place, without the
    /// copy-on-write check: for loops that called ``makeUnique()`` first and copied the table in no way since
    /// (a per-record uniqueness check was a tenth of `mapWithState`'s per-record cost).
    @inlinable
    func modifyUniqueValue(at slot: Int, _ body: (inout Value) -> Void) {
        // Safe: a found slot is in range and holds a key; the caller made the storage this table's alone.
        (storage.base + slot).pointee?.modifyValue(body)
    }

    /// Sets the value in `slot`, a slot a successful ``find(_:hash:)`` returned.
    @inlinable
    mutating func setValue(_ value: Value, at slot: Int) { modifyValue(at: slot) { $0 = value } }

    /// Stores `value` for `key` in `slot`, the empty slot a failed ``find(_:hash:)`` returned (no other change
    /// in between).
    @inlinable
    mutating func insert(_ key: K, _ value: Value, at slot: Int) {
        makeUnique()
        storage.base[slot] = StateSlot(key: key, value: value)
        count &+= 1
        if count &* 4 > storage.capacity &* (storage.capacity <= StateTable.sparseSlots ? 1 : 3) { grow() }
    }

    /// Sets `key`'s value, adding the key if missing.
    @inlinable
    mutating func set(_ key: K, _ value: Value) {
        let (found, slot) = find(key)
        if found { setValue(value, at: slot) } else { insert(key, value, at: slot) }
    }

    /// Removes the key in `slot` (a slot a successful ``find(_:hash:)`` returned), shifting back the keys
    /// after it whose probe passed through it.
    @inlinable
    mutating func remove(at slot: Int) {
        makeUnique()
        let (base, mask) = (storage.base, self.mask)
        var hole = slot
        var next = slot
        base[hole] = nil
        count &-= 1
        while true {
            next = (next &+ 1) & mask
            guard let occupant = base[next] else { return }
            let home = stateHash(occupant.key) & mask
            // The occupant may stay if its home lies cyclically in (hole, next]; otherwise it moves to the hole.
            let stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next)
            if !stays {
                base[hole] = base[next]
                base[next] = nil
                hole = next
            }
        }
    }

    @inlinable
    mutating func grow() {
        let old = storage
        storage = StateSlots(capacity: old.capacity &* 2)
        let (base, mask) = (storage.base, self.mask)
        for i in 0..<old.capacity {
            guard let occupant = old.base[i] else { continue }
            var slot = stateHash(occupant.key) & mask
            while base[slot] != nil { slot = (slot &+ 1) & mask }
            base[slot] = occupant
        }
    }

    /// Calls `body` with each key and value, in slot order.
    @inlinable
    func forEach(_ body: (K, Value) throws -> Void) rethrows {
        let base = storage.base
        for i in 0..<storage.capacity {
            if let occupant = base[i] { try body(occupant.key, occupant.value) }
        }
    }
}

extension StateTable: Sendable where K: Sendable, Value: Sendable {}
