import CSluiceIntrinsics

/// How values of a key combine (Spark's `Aggregator`): a combiner is created from a key's first value, values
/// merge into it in place, and combiners from different tasks merge with each other.
@usableFromInline
struct Aggregator<V, C>: Sendable {
    @usableFromInline let createCombiner: @Sendable (V) throws -> C
    @usableFromInline let mergeValue: @Sendable (inout C, V) throws -> Void
    @usableFromInline let mergeCombiners: @Sendable (inout C, C) throws -> Void
    /// The user's function itself when merging a value is `combiner = reduce(combiner, value)` (`reduceByKey`,
    /// `combineByKey`): the map side calls it directly, one call a pair instead of two.
    @usableFromInline let reduce: (@Sendable (C, V) throws -> C)?
    /// The same function when values and combiners are `Int`s (`reduceByKey(+)` of counts), kept as a function
    /// of `Int`s: stored as a function of the generic `(C, V)` it is called through thunks that pass its
    /// arguments in memory (three calls a pair, a tenth of the grouped count's samples), as itself with its
    /// arguments in registers.
    @usableFromInline let intReduce: (@Sendable (Int, Int) throws -> Int)?

    @inlinable
    init(
        createCombiner: @escaping @Sendable (V) throws -> C,
        mergeValue: @escaping @Sendable (inout C, V) throws -> Void,
        mergeCombiners: @escaping @Sendable (inout C, C) throws -> Void,
        reduce: (@Sendable (C, V) throws -> C)? = nil, intReduce: (@Sendable (Int, Int) throws -> Int)? = nil
    ) {
        self.createCombiner = createCombiner
        self.mergeValue = mergeValue
        self.mergeCombiners = mergeCombiners
        self.reduce = reduce
        self.intReduce = intReduce
    }
}

/// Tables of at least this many slots (32 KiB of them, an L1 cache) prefetch the lookups of a chunk's pairs a
/// few ahead; smaller ones are in cache already.
@usableFromInline let prefetchingSlots = 4096

/// How many pairs ahead a table prefetches: enough for a slot's line to arrive before its key's is asked for.
@usableFromInline let lookahead = 16

/// The high half of a slot: the top 32 bits of the hash of the entry it points to (a tag that rules out almost
/// every other entry without reading it).
@usableFromInline let slotTagMask: UInt64 = 0xFFFF_FFFF_0000_0000

/// The slot value for entry `entry` of hash `hash`: its tag, and the entry index + 1 in the low half (0 = free).
@inlinable @inline(__always)
func slotValue(entry: Int, hash: UInt64) -> UInt64 {
    (hash & slotTagMask) | UInt64(truncatingIfNeeded: entry &+ 1)
}

/// Finds the entry holding a key: `slots` hold a hash tag and an entry index + 1 (0 = free), probed linearly
/// from the hash's low bits; an entry whose tag matches is checked against its full hash in `hashes` (unless
/// `checkHash` is false, for keys that compare their own hash) and then `isKey`. Returns the entry (-1 when
/// absent) and the slot probed last (where an absent key goes).
@inlinable @inline(__always)
func findEntry(
    _ hash: UInt64, _ slots: UnsafeBufferPointer<UInt64>, _ hashes: UnsafeBufferPointer<UInt64>,
    checkHash: Bool = true, _ isKey: (Int) -> Bool
) -> (entry: Int, slot: Int) {
    let mask = slots.count &- 1
    let tag = hash & slotTagMask
    var slot = Int(truncatingIfNeeded: hash) & mask
    while true {
        // Safe: slot is masked into range; a stored entry index is below hashes.count.
        let packed = slots[slot]
        if packed == 0 { return (-1, slot) }
        if packed & slotTagMask == tag {
            let entry = Int(truncatingIfNeeded: packed & ~slotTagMask) &- 1
            if (!checkHash || hashes[entry] == hash) && isKey(entry) { return (entry, slot) }
        }
        slot = (slot &+ 1) & mask
    }
}

/// An open-addressing hash table from keys to combiners, the core of map-side combining and of the reduce
/// side of every shuffle.
///
/// Entries are dense (keys, hashes and combiners in insertion order, in parallel arrays: columns), and a
/// power-of-two slot array with linear probing maps hashes to entries, kept at most 40% full up to 32,768
/// slots and 70% past that (the 32-bit tag in each slot makes the longer probes cheap, and a smaller slot array
/// stays in cache; in a table in cache a lookup's cost is its mispredicted probes, which the sparser small
/// table cuts: the word count's 10,000 keys in 32,768 slots rather than 16,384 took its batch's processing
/// from 107-110 to 98-99 ms in alternated runs). Reading the entries out is a walk over the dense arrays.
@usableFromInline
struct CombineTable<Keys: KeyColumn, C>: @unchecked Sendable {
    // @unchecked: a table moves between tasks whole and is never shared, so C need not be Sendable.
    @usableFromInline var slots: [UInt64]
    @usableFromInline var hashes: [UInt64] = []
    @usableFromInline var keys = Keys()
    @usableFromInline var combiners: [C] = []
    /// Values the combiners hold: one per value merged in, plus what merged combiners held (the size of a
    /// grouping combiner).
    @usableFromInline var heldValues = 0
    /// Bytes of the memory budget this table holds (managed by its owner).
    @usableFromInline var reservedBytes = 0

    @inlinable
    init() { slots = Array(repeating: 0, count: 64) }

    /// Slot arrays up to this size (256 KiB) are kept at most 40% full, larger ones 70%.
    @usableFromInline static var sparseSlots: Int { 32_768 }

    /// The number of keys.
    @inlinable var count: Int { hashes.count }

    /// Merges each (key, value) of `pairs` into its key's combiner with `merge`, adding new keys with
    /// `create`. A run of keys already present is probed and merged inside one set of pointer scopes, left
    /// only to insert a new key (after warm-up, rarely), so that no array is retained per pair.
    @inlinable
    mutating func upsert<V>(
        _ pairs: UnsafeBufferPointer<(Keys.Key, V)>, create: (V) throws -> C, merge: (inout C, V) throws -> Void
    ) rethrows {
        heldValues &+= pairs.count
        var i = 0
        while i < pairs.count {
            let miss = try slots.withUnsafeBufferPointer { slots in
                try hashes.withUnsafeBufferPointer { hashes in
                    try combiners.withUnsafeMutableBufferPointer { combiners in
                        try keys.withProber { prober -> (hash: UInt64, slot: Int)? in
                            let prefetching = Keys.Prober.hashesCheaply && !prober.findsWithoutSlots
                                && slots.count >= prefetchingSlots
                            // Each pair's key and value are read where they lie: `pairs[i].0` would copy the whole
                            // pair (a Word's copy and drop are calls) to compare a key and pass a value. Safe:
                            // a tuple's first element is at its start, its last ends where the tuple does, and
                            // i < pairs.count.
                            let base = UnsafeRawPointer(pairs.baseAddress)
                            let valueOffset = MemoryLayout<(Keys.Key, V)>.size &- MemoryLayout<V>.size
                            while i < pairs.count {
                                if prefetching { CombineTable.prefetch(ahead: i, pairs, slots, combiners, prober) }
                                guard let pair = base?.advanced(by: i &* MemoryLayout<(Keys.Key, V)>.stride) else { break }
                                let found = prober.find(keyAt: pair.assumingMemoryBound(to: Keys.Key.self), slots, hashes)
                                if found.entry < 0 { return (found.hash, found.slot) }
                                try merge(
                                    &combiners[found.entry],
                                    pair.advanced(by: valueOffset).assumingMemoryBound(to: V.self).pointee)
                                i &+= 1
                            }
                            return nil
                        }
                    }
                }
            }
            guard let (hash, slot) = miss else { return }
            let combiner = try create(pairs[i].1)
            insert(hash: hash, slot: slot, combiner: combiner)
            keys.append(pairs[i].0)
            i &+= 1
        }
    }

    /// Brings what the lookups of pairs a few after `i` read into cache, in two steps so that the loads of one
    /// lookup overlap those of the next ones instead of waiting in turn: the slot of pair `i + 2 * lookahead`,
    /// then the key and combiner of pair `i + lookahead`'s slot (read from the line prefetched before; its first
    /// probe, where a key present almost always is).
    @inlinable @inline(__always)
    static func prefetch<V>(
        ahead i: Int, _ pairs: UnsafeBufferPointer<(Keys.Key, V)>, _ slots: UnsafeBufferPointer<UInt64>,
        _ combiners: UnsafeMutableBufferPointer<C>, _ prober: Keys.Prober
    ) {
        let mask = slots.count &- 1
        guard let slotBase = slots.baseAddress, let combinerBase = combiners.baseAddress else { return }
        // Safe (every pointer below): masked slot indices are within slots, and a stored entry index is below
        // the combiners' count; a prefetch never faults.
        let far = i &+ 2 &* lookahead
        if far < pairs.count {
            sluice_prefetch(slotBase + (Int(truncatingIfNeeded: prober.hash(pairs[far].0)) & mask))
        }
        let near = i &+ lookahead
        if near < pairs.count {
            let packed = slotBase[Int(truncatingIfNeeded: prober.hash(pairs[near].0)) & mask]
            if packed != 0 {
                let entry = Int(truncatingIfNeeded: packed & ~slotTagMask) &- 1
                prober.prefetchKey(entry: entry)
                sluice_prefetch_for_write(combinerBase + entry)
            }
        }
    }

    /// Finds `key`'s combiner and merges into it with `merge`, or adds the key with `create()`.
    @inlinable
    mutating func upsert(_ key: Keys.Key, create: () throws -> C, merge: (inout C) throws -> Void) rethrows {
        let found = slots.withUnsafeBufferPointer { slots in
            hashes.withUnsafeBufferPointer { hashes in keys.withProber { $0.find(key, slots, hashes) } }
        }
        heldValues &+= 1
        if found.entry >= 0 {
            try merge(&combiners[found.entry])
        } else {
            let combiner = try create()
            insert(hash: found.hash, slot: found.slot, combiner: combiner)
            keys.append(key)
        }
    }

    /// Merges entry `e` of `other` (same key kind) into this table with `mergeCombiners`; the combiner holds
    /// `values` values.
    @inlinable
    mutating func merge(
        entry e: Int, of other: CombineTable, values: Int, _ mergeCombiners: (inout C, C) throws -> Void
    ) rethrows {
        heldValues &+= values
        let hash = other.hashes[e]
        let found = slots.withUnsafeBufferPointer { slots in
            hashes.withUnsafeBufferPointer { hashes in
                findEntry(hash, slots, hashes) { mine in keys.matches(mine, entry: e, of: other.keys) }
            }
        }
        if found.entry >= 0 {
            try mergeCombiners(&combiners[found.entry], other.combiners[e])
        } else {
            insert(hash: hash, slot: found.slot, combiner: other.combiners[e])
            keys.append(entry: e, of: other.keys)
        }
    }

    @inlinable
    mutating func insert(hash: UInt64, slot: Int, combiner: C) {
        slots[slot] = slotValue(entry: hashes.count, hash: hash)
        hashes.append(hash)
        combiners.append(combiner)
        if hashes.count &* 10 > slots.count &* (slots.count <= CombineTable.sparseSlots ? 4 : 7) { grow() }
    }

    @usableFromInline
    mutating func grow() {
        var fresh = [UInt64](repeating: 0, count: slots.count * 2)
        let mask = fresh.count - 1
        for (e, hash) in hashes.enumerated() {
            var slot = Int(truncatingIfNeeded: hash) & mask
            while fresh[slot] != 0 { slot = (slot + 1) & mask }
            fresh[slot] = slotValue(entry: e, hash: hash)
        }
        slots = fresh
    }

    /// Forgets every entry, keeping the memory.
    @usableFromInline
    mutating func removeAll() {
        for i in slots.indices { slots[i] = 0 }
        hashes.removeAll(keepingCapacity: true)
        combiners.removeAll(keepingCapacity: true)
        keys.removeAll()
        heldValues = 0
    }

    /// An estimate of the table's memory: its arrays, key bytes, and for grouping combiners the values they
    /// hold (`bytesPerValue` each).
    func estimatedBytes(bytesPerValue: Int) -> Int {
        let perEntry = MemoryLayout<UInt64>.stride + MemoryLayout<C>.stride + MemoryLayout<Keys.Key>.stride
        return slots.count * 8 + hashes.capacity * perEntry + keys.extraBytes + heldValues * bytesPerValue
    }

    /// Entry indices ordered by hash (for sorted spill runs).
    func entriesByHash() -> [Int] {
        hashes.indices.sorted { hashes[$0] < hashes[$1] }
    }
}
