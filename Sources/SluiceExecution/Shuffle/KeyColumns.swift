import CSluiceIntrinsics
import Glibc
import SluiceColumnar

/// How a combine table stores, hashes and compares its keys. Four kinds: `Int` keys (hashed by a bijective
/// mix, so an equal hash means an equal key), ``Word`` and `String` keys (up to 15 UTF-8 bytes packed into two
/// integers; a longer word kept as its `String`, a longer `String` key's bytes copied into one buffer) and any
/// other `Hashable` key.
@usableFromInline
protocol KeyColumn<Key>: Sendable {
    associatedtype Key: Sendable
    associatedtype Prober: KeyProber where Prober.Key == Key
    init()
    /// The number of keys stored.
    var count: Int { get }
    /// Bytes held besides the per-key arrays (string bytes).
    var extraBytes: Int { get }
    /// Calls `body` with a prober over the stored keys (valid inside `body` only).
    func withProber<R>(_ body: (Prober) throws -> R) rethrows -> R
    /// Stores `key` as the next entry.
    mutating func append(_ key: Key)
    /// Stores entry `e` of `other`.
    mutating func append(entry e: Int, of other: Self)
    /// Whether entry `e` holds the same key as entry `o` of `other` (whose hashes are equal).
    func matches(_ e: Int, entry o: Int, of other: Self) -> Bool
    /// The key of entry `e`.
    func key(at e: Int) -> Key
    /// Java's hash code of entry `e`'s key (the partitioner's input, see ``SparkHashCode``).
    func hashCode(at e: Int) -> Int32
    /// Whether two keys are equal.
    static func equal(_ a: Key, _ b: Key) -> Bool
    /// Forgets every key, keeping the memory.
    mutating func removeAll()
}

/// Looks keys up among a key column's entries through pointers taken once for many lookups.
@usableFromInline
protocol KeyProber {
    associatedtype Key
    /// `key`'s table hash, the entry holding it (-1 when absent) and the slot probed last.
    func find(
        _ key: Key, _ slots: UnsafeBufferPointer<UInt64>, _ hashes: UnsafeBufferPointer<UInt64>
    ) -> (hash: UInt64, entry: Int, slot: Int)
    /// ``find(_:_:_:)`` of the key `key` points to, read where it lies (an inline ``Word`` is compared there,
    /// with no copy of the value made and dropped around the lookup).
    func find(
        keyAt key: UnsafePointer<Key>, _ slots: UnsafeBufferPointer<UInt64>, _ hashes: UnsafeBufferPointer<UInt64>
    ) -> (hash: UInt64, entry: Int, slot: Int)
    /// `key`'s table hash (as `find` computes it).
    func hash(_ key: Key) -> UInt64
    /// Whether ``hash(_:)`` costs about a load (a hash the key carries, or a few instructions), so that a
    /// table may hash keys ahead of their lookup to prefetch what the lookup reads.
    static var hashesCheaply: Bool { get }
    /// Whether every key stored is found without reading the slots, so that prefetching them is no use.
    var findsWithoutSlots: Bool { get }
    /// Brings what comparing a key with entry `e` reads into cache (nothing when the hash alone decides).
    func prefetchKey(entry e: Int)
}

extension KeyProber {
    @inlinable @inline(__always)
    func find(
        keyAt key: UnsafePointer<Key>, _ slots: UnsafeBufferPointer<UInt64>, _ hashes: UnsafeBufferPointer<UInt64>
    ) -> (hash: UInt64, entry: Int, slot: Int) {
        find(key.pointee, slots, hashes)
    }

    @inlinable static var hashesCheaply: Bool { false }
    @inlinable var findsWithoutSlots: Bool { false }
    @inlinable func prefetchKey(entry e: Int) {}
}

/// MurmurHash3's 64-bit finalizer: a bijection that spreads every input bit over the output.
@inlinable @inline(__always)
package func mix64(_ value: UInt64) -> UInt64 {
    var h = value
    h ^= h >> 33
    h &*= 0xff51_afd7_ed55_8ccd
    h ^= h >> 33
    h &*= 0xc4ce_b9fe_1a85_ec53
    h ^= h >> 33
    return h
}

/// A fast hash of a short byte string: eight bytes per multiply, the tail read with overlapping loads (no
/// byte-by-byte copy, which stalls on store forwarding), then `mix64`.
@inlinable @inline(__always)
func hashBytes(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    let n = bytes.count
    var h = 0x9E37_79B9_7F4A_7C15 &* UInt64(n &+ 1)
    guard let base = bytes.baseAddress, n > 0 else { return mix64(h) }
    var i = 0
    while i &+ 8 <= n {
        // Safe: i + 8 <= n bytes lie within the buffer.
        h = (h ^ base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xbf58_476d_1ce4_e5b9
        h ^= h >> 31
        i &+= 8
    }
    if i < n {
        // Safe: every load below stays within the n bytes (the ones past 8 overlap bytes already hashed).
        let tail: UInt64
        if n >= 8 {
            tail = base.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
        } else if n >= 4 {
            tail = UInt64(base.loadUnaligned(as: UInt32.self))
                | UInt64(base.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)) << 32
        } else {
            tail = UInt64(base.load(as: UInt8.self)) | UInt64(base.load(fromByteOffset: n >> 1, as: UInt8.self)) << 8
                | UInt64(base.load(fromByteOffset: n &- 1, as: UInt8.self)) << 16
        }
        h = (h ^ tail) &* 0x94d0_49bb_1331_11eb
    }
    return mix64(h)
}

/// `Int` keys. Besides the table's hashed slots, a key in `0..<denseKeys` (a `% n` grouping, a small id) has its
/// entry in a direct-mapped array, so that finding it is one load: no hash, no probe (the slots still hold
/// every key, for merges and inserts).
@usableFromInline
struct IntKeys: KeyColumn {
    @usableFromInline var keys: [Int] = []
    /// For each key below ``denseKeys`` that is stored, its entry + 1 (0: absent); empty until one is stored.
    @usableFromInline var dense: [Int32] = []
    /// How many of the keys are in `dense`.
    @usableFromInline var denseCount = 0

    /// Keys below this are direct-mapped: 16 KiB of entries, an L1 cache's share.
    @usableFromInline static let denseKeys = 4_096

    @usableFromInline
    struct Prober: KeyProber {
        @usableFromInline let dense: UnsafeBufferPointer<Int32>
        /// Every key stored is direct-mapped (a `% n` grouping): a prefetch of the slots ahead of its lookup, a
        /// hash and a load a key, would be a fifth of the grouped count's upserts.
        @usableFromInline let findsWithoutSlots: Bool

        @inlinable
        init(dense: UnsafeBufferPointer<Int32>, findsWithoutSlots: Bool) {
            self.dense = dense
            self.findsWithoutSlots = findsWithoutSlots
        }

        @inlinable static var hashesCheaply: Bool { true }
        @inlinable @inline(__always) func hash(_ key: Int) -> UInt64 { mix64(UInt64(bitPattern: Int64(key))) }

        @inlinable @inline(__always)
        func find(
            _ key: Int, _ slots: UnsafeBufferPointer<UInt64>, _ hashes: UnsafeBufferPointer<UInt64>
        ) -> (hash: UInt64, entry: Int, slot: Int) {
            // Safe: a non-negative key below dense.count indexes it (dense is empty or denseKeys long).
            if UInt(bitPattern: key) < UInt(dense.count) {
                let entry = Int(dense[key]) &- 1
                // A hit needs no hash or slot (only an insert uses them).
                if entry >= 0 { return (0, entry, -1) }
            }
            // mix64 is a bijection: an entry with an equal hash holds an equal key.
            let hash = self.hash(key)
            let (entry, slot) = findEntry(hash, slots, hashes) { _ in true }
            return (hash, entry, slot)
        }
    }

    @inlinable init() {}
    @inlinable var count: Int { keys.count }
    @inlinable var extraBytes: Int { dense.capacity &* 4 }

    @inlinable
    func withProber<R>(_ body: (Prober) throws -> R) rethrows -> R {
        try dense.withUnsafeBufferPointer { try body(Prober(dense: $0, findsWithoutSlots: denseCount == keys.count)) }
    }

    @inlinable
    mutating func append(_ key: Int) {
        // An entry past Int32's range (2^31 keys) is found through the slots alone.
        if UInt(bitPattern: key) < UInt(IntKeys.denseKeys) && keys.count < Int(Int32.max) {
            if dense.isEmpty { dense = Array(repeating: 0, count: IntKeys.denseKeys) }
            dense[key] = Int32(truncatingIfNeeded: keys.count &+ 1)
            denseCount &+= 1
        }
        keys.append(key)
    }

    @inlinable mutating func append(entry e: Int, of other: IntKeys) { append(other.keys[e]) }
    @inlinable func matches(_ e: Int, entry o: Int, of other: IntKeys) -> Bool { true }
    @inlinable func key(at e: Int) -> Int { keys[e] }
    @inlinable func hashCode(at e: Int) -> Int32 { SparkHashCode.long(Int64(keys[e])) }
    @inlinable static func equal(_ a: Int, _ b: Int) -> Bool { a == b }

    @inlinable
    mutating func removeAll() {
        for key in keys where UInt(bitPattern: key) < UInt(dense.count) { dense[key] = 0 }
        keys.removeAll(keepingCapacity: true)
        denseCount = 0
    }
}

/// `String` keys, never kept as `String`s until read out: a key of up to 15 UTF-8 bytes packed into two integers
/// as ``WordKeys`` packs a word (found by comparing two integers, hashed by one multiplication), a longer one's
/// bytes copied into one buffer, its entry their offset and length. Keeping a long key's `String` instead cost a
/// grouped count by 40-byte keys 60% more: each compare went through the `String`'s object, whose reference count
/// both workers' tables changed (the keys of a cached RDD are the same objects in every task).
@usableFromInline
struct StringKeys: KeyColumn {
    /// An inline key's packed bytes, or a long key's offset in `long` (`low`) and its length under
    /// ``WordKeys/longMarker`` (`high`).
    @usableFromInline var packed: [(low: UInt64, high: UInt64)] = []
    /// The long keys' bytes, end to end.
    @usableFromInline var long: [UInt8] = []

    @usableFromInline
    struct Prober: KeyProber {
        @usableFromInline typealias Key = String
        @usableFromInline let packed: UnsafeBufferPointer<(low: UInt64, high: UInt64)>
        @usableFromInline let long: UnsafeRawBufferPointer

        @inlinable
        init(packed: UnsafeBufferPointer<(low: UInt64, high: UInt64)>, long: UnsafeRawBufferPointer) {
            self.packed = packed
            self.long = long
        }

        @inlinable @inline(__always)
        func find(
            _ key: String, _ slots: UnsafeBufferPointer<UInt64>, _ hashes: UnsafeBufferPointer<UInt64>
        ) -> (hash: UInt64, entry: Int, slot: Int) {
            // Two paths, each reading the bytes in a closure of its own: one closure holding both was too large for
            // the compiler to inline into a table's loop, which then paid a call and a release a key (a grouped
            // count by long keys 20% slower).
            if key.utf8.count > Word.inlineCapacity {
                return withUTF8Bytes(of: key) { bytes in
                    let hash = hashBytes(bytes)
                    let (entry, slot) = findEntry(hash, slots, hashes) { holds(long: $0, bytes) }
                    return (hash, entry, slot)
                }
            }
            let (low, high) = withUTF8Bytes(of: key) { Word.packed($0) ?? (0, 0) }  // at most 15 bytes: packed
            let hash = Word.inlineHash(low: low, high: high)
            let (entry, slot) = findPacked(low: low, high: high, hash: hash, packed, slots, hashes)
            return (hash, entry, slot)
        }

        /// `key`'s hash: the hash of the ``Word`` holding the same bytes.
        @inlinable
        func hash(_ key: String) -> UInt64 {
            withUTF8Bytes(of: key) { bytes in
                guard let (low, high) = Word.packed(bytes) else { return hashBytes(bytes) }
                return Word.inlineHash(low: low, high: high)
            }
        }

        /// Whether entry `e` is a long key of exactly the bytes `bytes`.
        @inlinable @inline(__always)
        func holds(long e: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
            guard packed[e].high == WordKeys.longMarker | UInt64(truncatingIfNeeded: bytes.count),
                let stored = long.baseAddress, let key = bytes.baseAddress
            else { return false }
            // Safe: a long entry's offset and length lie within the stored bytes, and its length is bytes.count.
            return memcmp(stored + Int(truncatingIfNeeded: packed[e].low), key, bytes.count) == 0
        }
    }

    @inlinable init() {}
    @inlinable var count: Int { packed.count }
    @inlinable var extraBytes: Int { long.capacity }

    @inlinable
    func withProber<R>(_ body: (Prober) throws -> R) rethrows -> R {
        try packed.withUnsafeBufferPointer { packed in
            try long.withUnsafeBytes { long in try body(Prober(packed: packed, long: long)) }
        }
    }

    /// Entry `e`'s bytes when it is a long key.
    @inlinable
    func longRange(_ e: Int) -> Range<Int>? {
        let (low, high) = packed[e]
        guard high >> 56 == WordKeys.longMarker >> 56 else { return nil }
        let start = Int(truncatingIfNeeded: low)
        return start..<start + Int(truncatingIfNeeded: high & ~WordKeys.longMarker)
    }

    @inlinable
    mutating func append(_ key: String) {
        withUTF8Bytes(of: key) { append(bytes: $0) }
    }

    @inlinable
    mutating func append(bytes: UnsafeRawBufferPointer) {
        if let (low, high) = Word.packed(bytes) { return packed.append((low, high)) }
        let length = UInt64(truncatingIfNeeded: bytes.count)
        packed.append((UInt64(truncatingIfNeeded: long.count), WordKeys.longMarker | length))
        long.append(contentsOf: bytes)
    }

    @inlinable
    mutating func append(entry e: Int, of other: StringKeys) {
        guard let range = other.longRange(e) else { return packed.append(other.packed[e]) }
        other.long.withUnsafeBytes { append(bytes: UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    @inlinable
    func matches(_ e: Int, entry o: Int, of other: StringKeys) -> Bool {
        guard let range = other.longRange(o) else { return packed[e] == other.packed[o] }
        return withProber { prober in
            other.long.withUnsafeBytes { prober.holds(long: e, UnsafeRawBufferPointer(rebasing: $0[range])) }
        }
    }

    /// Calls `body` with entry `e`'s UTF-8 bytes.
    @inlinable
    func withEntryBytes<R>(_ e: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        guard let range = longRange(e) else { return Word(low: packed[e].low, high: packed[e].high).withUTF8(body) }
        return long.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    @inlinable
    func key(at e: Int) -> String { withEntryBytes(e) { String(decoding: $0, as: UTF8.self) } }
    @inlinable func hashCode(at e: Int) -> Int32 { withEntryBytes(e) { SparkHashCode.utf8($0) } }
    @inlinable static func equal(_ a: String, _ b: String) -> Bool { a == b }

    @inlinable
    mutating func removeAll() {
        packed.removeAll(keepingCapacity: true)
        long.removeAll(keepingCapacity: true)
    }
}

/// The entry among `packed` entries holding the key of up to 15 bytes packed in `low` and `high` (-1 when absent),
/// and the slot probed last.
@inlinable @inline(__always)
func findPacked(
    low: UInt64, high: UInt64, hash: UInt64, _ packed: UnsafeBufferPointer<(low: UInt64, high: UInt64)>,
    _ slots: UnsafeBufferPointer<UInt64>, _ hashes: UnsafeBufferPointer<UInt64>
) -> (entry: Int, slot: Int) {
    // Equal packed integers are equal bytes (a long key's entry never equals a packed one: its top byte is 0xFF,
    // a packed key's its length); the slot's tag has already ruled out most entries.
    findEntry(hash, slots, hashes, checkHash: false) { packed[$0].low == low && packed[$0].high == high }
}

/// Whether `string` holds exactly the UTF-8 bytes `bytes`.
@inlinable
func holdsBytes(_ string: String, _ bytes: UnsafeRawBufferPointer) -> Bool {
    withUTF8Bytes(of: string) { stored in
        // Safe: both buffers hold `count` bytes when their counts are equal.
        stored.count == bytes.count
            && (bytes.isEmpty || memcmp(stored.baseAddress!, bytes.baseAddress!, bytes.count) == 0)
    }
}

/// ``Word`` keys, packed: an inline word as its two integers (16 bytes a key, no tag byte, no hash: the table's
/// `hashes` hold it), a long word as its index among the strings kept beside them. A probe for an inline word
/// compares two integers of one dense array, so that a table of the word count's 10,000 keys (slots, keys and
/// combiners) stays in a core's L2 cache.
@usableFromInline
struct WordKeys: KeyColumn {
    /// An inline word's packed bytes, or a long word's index in `long` with ``longMarker`` as `high`.
    @usableFromInline var packed: [(low: UInt64, high: UInt64)] = []
    /// The long words' strings.
    @usableFromInline var long: [String] = []
    /// Bytes the long words' strings take: their UTF-8 bytes and each one's heap object.
    @usableFromInline var longBytes = 0

    /// A native `String`'s heap object besides its bytes: the object header, its capacity and its count.
    @usableFromInline static let stringObjectBytes = 32

    /// The `high` of a long word's entry: an inline word's top byte is its length, at most 15.
    @usableFromInline static let longMarker: UInt64 = 0xFF << 56

    @usableFromInline
    struct Prober: KeyProber {
        @usableFromInline let packed: UnsafeBufferPointer<(low: UInt64, high: UInt64)>
        @usableFromInline let long: UnsafeBufferPointer<String>

        @inlinable
        init(packed: UnsafeBufferPointer<(low: UInt64, high: UInt64)>, long: UnsafeBufferPointer<String>) {
            self.packed = packed
            self.long = long
        }

        @inlinable static var hashesCheaply: Bool { true }
        @inlinable @inline(__always) func hash(_ key: Word) -> UInt64 { key.hash }

        @inlinable @inline(__always)
        func prefetchKey(entry e: Int) {
            // Safe: a prefetch never faults; e is an entry index below packed.count.
            sluice_prefetch(packed.baseAddress.map { UnsafeRawPointer($0 + e) })
        }

        @inlinable @inline(__always)
        func find(
            _ key: Word, _ slots: UnsafeBufferPointer<UInt64>, _ hashes: UnsafeBufferPointer<UInt64>
        ) -> (hash: UInt64, entry: Int, slot: Int) {
            switch key.storage {
            case .inline(let low, let high):
                return findInline(low: low, high: high, hash: key.hash, slots, hashes)
            case .string(let string):
                let (entry, slot) = withUTF8Bytes(of: string) { bytes in
                    findEntry(key.hash, slots, hashes) { holds(long: $0, bytes) }
                }
                return (key.hash, entry, slot)
            }
        }

        /// Whether entry `e` is a long word of exactly the bytes `bytes`.
        @inlinable
        func holds(long e: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
            packed[e].high == WordKeys.longMarker && holdsBytes(long[Int(truncatingIfNeeded: packed[e].low)], bytes)
        }

        @inlinable @inline(__always)
        func find(
            keyAt key: UnsafePointer<Word>, _ slots: UnsafeBufferPointer<UInt64>, _ hashes: UnsafeBufferPointer<UInt64>
        ) -> (hash: UInt64, entry: Int, slot: Int) {
            // An inline word's integers are read in place; only a long word is copied (its String retained).
            guard let (low, high, hash) = Word.inlineParts(at: key) else { return find(key.pointee, slots, hashes) }
            return findInline(low: low, high: high, hash: hash, slots, hashes)
        }

        /// The entry of the inline word packed in `low` and `high`.
        @inlinable @inline(__always)
        func findInline(
            low: UInt64, high: UInt64, hash: UInt64, _ slots: UnsafeBufferPointer<UInt64>,
            _ hashes: UnsafeBufferPointer<UInt64>
        ) -> (hash: UInt64, entry: Int, slot: Int) {
            let (entry, slot) = findPacked(low: low, high: high, hash: hash, packed, slots, hashes)
            return (hash, entry, slot)
        }
    }

    @inlinable init() {}
    @inlinable var count: Int { packed.count }
    @inlinable var extraBytes: Int { longBytes }

    @inlinable
    func withProber<R>(_ body: (Prober) throws -> R) rethrows -> R {
        try packed.withUnsafeBufferPointer { packed in
            try long.withUnsafeBufferPointer { long in try body(Prober(packed: packed, long: long)) }
        }
    }

    @inlinable
    mutating func append(_ key: Word) {
        switch key.storage {
        case .inline(let low, let high): packed.append((low, high))
        case .string(let string): append(long: string)
        }
    }

    /// Stores a long word's string (shared, not copied).
    @inlinable
    mutating func append(long string: String) {
        packed.append((UInt64(truncatingIfNeeded: long.count), WordKeys.longMarker))
        long.append(string)
        longBytes &+= string.utf8.count &+ WordKeys.stringObjectBytes
    }

    @inlinable
    mutating func append(entry e: Int, of other: WordKeys) {
        let (low, high) = other.packed[e]
        guard high == WordKeys.longMarker else { return packed.append((low, high)) }
        append(long: other.long[Int(truncatingIfNeeded: low)])
    }

    @inlinable
    func matches(_ e: Int, entry o: Int, of other: WordKeys) -> Bool {
        let (mine, theirs) = (packed[e], other.packed[o])
        if mine.high == WordKeys.longMarker && theirs.high == WordKeys.longMarker {
            return withUTF8Bytes(of: other.long[Int(truncatingIfNeeded: theirs.low)]) {
                holdsBytes(long[Int(truncatingIfNeeded: mine.low)], $0)
            }
        }
        return mine == theirs
    }

    @inlinable
    func key(at e: Int) -> Word {
        let (low, high) = packed[e]
        guard high == WordKeys.longMarker else { return Word(low: low, high: high) }
        return Word(long: long[Int(truncatingIfNeeded: low)])
    }

    @inlinable func hashCode(at e: Int) -> Int32 { key(at: e).javaHashCode }
    @inlinable static func equal(_ a: Word, _ b: Word) -> Bool { a == b }

    @inlinable
    mutating func removeAll() {
        packed.removeAll(keepingCapacity: true)
        long.removeAll(keepingCapacity: true)
        longBytes = 0
    }
}

/// Any other `Hashable` key, hashed by its `hashValue`.
@usableFromInline
struct HashableKeys<K: Hashable & Sendable>: KeyColumn {
    @usableFromInline var keys: [K] = []

    @usableFromInline
    struct Prober: KeyProber {
        @usableFromInline let keys: UnsafeBufferPointer<K>

        @inlinable init(keys: UnsafeBufferPointer<K>) { self.keys = keys }

        @inlinable @inline(__always)
        func find(
            _ key: K, _ slots: UnsafeBufferPointer<UInt64>, _ hashes: UnsafeBufferPointer<UInt64>
        ) -> (hash: UInt64, entry: Int, slot: Int) {
            let hash = self.hash(key)
            let (entry, slot) = findEntry(hash, slots, hashes) { keys[$0] == key }
            return (hash, entry, slot)
        }

        @inlinable
        func hash(_ key: K) -> UInt64 { UInt64(bitPattern: Int64(key.hashValue)) }
    }

    @inlinable init() {}
    @inlinable var count: Int { keys.count }
    @inlinable var extraBytes: Int { 0 }

    @inlinable
    func withProber<R>(_ body: (Prober) throws -> R) rethrows -> R {
        try keys.withUnsafeBufferPointer { try body(Prober(keys: $0)) }
    }

    @inlinable mutating func append(_ key: K) { keys.append(key) }
    @inlinable mutating func append(entry e: Int, of other: HashableKeys<K>) { keys.append(other.keys[e]) }
    @inlinable func matches(_ e: Int, entry o: Int, of other: HashableKeys<K>) -> Bool { keys[e] == other.keys[o] }
    @inlinable func key(at e: Int) -> K { keys[e] }
    @inlinable func hashCode(at e: Int) -> Int32 { SparkHashCode.of(keys[e]) }
    @inlinable static func equal(_ a: K, _ b: K) -> Bool { a == b }
    @inlinable mutating func removeAll() { keys.removeAll(keepingCapacity: true) }
}
