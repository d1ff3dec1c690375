/// Spreads keys over `numPartitions` partitions by their hash code, as Spark's `HashPartitioner` does:
/// partition = hashCode mod numPartitions, made non-negative.
///
/// For `Int` (Scala's `Long`), `Int64`, `Int32`, `Bool`, `String` and ``Word`` keys the hash code is Java's, so a key lands
/// in the same partition as in Spark, and in every run of the program. Other keys use Swift's `hashValue`, which
/// Swift seeds per process: their placement holds within a run only (state restored from a checkpoint is moved
/// to where this run places its keys; see ``SparkHashCode/isProcessIndependent(_:)``).
public struct HashPartitioner: Sendable, Hashable, CustomStringConvertible {
    /// The number of partitions.
    public let numPartitions: Int
    /// `2^64 / numPartitions`, rounded up (wrapping to 0 for one partition): a hash code's remainder is then
    /// two multiplications (Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019), where a
    /// division costs tens of cycles on every key of a shuffle.
    @usableFromInline let reciprocal: UInt64
    /// `2^32 mod numPartitions`: the correction for a negative hash code, whose bits read unsigned are 2^32 more.
    @usableFromInline let wrapRemainder: UInt64

    /// The partition counts a partitioner takes (a hash code has 32 bits).
    public static let validCounts = 1...Int(Int32.max)

    /// A partitioner over `numPartitions` (in ``validCounts``) partitions.
    public init(numPartitions: Int) {
        precondition(
            Self.validCounts.contains(numPartitions),
            "a partitioner needs \(Self.validCounts) partitions, got \(numPartitions)")
        self.numPartitions = numPartitions
        let n = UInt64(numPartitions)
        reciprocal = UInt64.max / n &+ 1
        wrapRemainder = (1 << 32) % n
    }

    /// The partition of `key` (the common key types' hash codes decided at compile time where the caller is
    /// specialized, see ``sparkHashCode(of:)``).
    @inlinable
    public func partition<K: Hashable>(for key: K) -> Int {
        partition(forHashCode: sparkHashCode(of: key))
    }

    /// The partition of a key whose hash code is `hashCode`: `hashCode mod numPartitions`, made non-negative
    /// (Spark's `Utils.nonNegativeMod`), without a division or a branch.
    @inlinable
    public func partition(forHashCode hashCode: Int32) -> Int {
        let n = UInt64(truncatingIfNeeded: numPartitions)
        // The bits as an unsigned number (hashCode, plus 2^32 when negative) mod n ...
        let unsigned = UInt64(UInt32(bitPattern: hashCode))
        let r = (reciprocal &* unsigned).multipliedFullWidth(by: n).high
        // ... less 2^32 mod n when negative, brought back into 0..<n.
        let negative = UInt64(bitPattern: Int64(hashCode >> 31))  // all ones when negative
        let d = Int64(bitPattern: r &- (wrapRemainder & negative))
        return Int(d &+ (Int64(bitPattern: n) & (d >> 63)))
    }

    public var description: String { "HashPartitioner(\(numPartitions))" }
}

/// Java's `hashCode` for the key types Spark programs use most, so that partitioning matches Spark's.
public enum SparkHashCode {
    /// Java's hash code of `key` for `Int`/`Int64` (as `Long`), `Int32`, `Bool` and `String` (and a ``Word``, as its
    /// string); Swift's
    /// `hashValue` folded to 32 bits otherwise.
    public static func of<K: Hashable>(_ key: K) -> Int32 {
        switch key {
        case let v as Int: return long(Int64(v))
        case let v as Int64: return long(v)
        case let v as Int32: return v
        case let v as Bool: return v ? 1231 : 1237
        case let v as String: return string(v)
        case let v as Word: return v.javaHashCode
        default: return long(Int64(key.hashValue))
        }
    }

    /// Whether keys of `type` have the same hash code in every process (the types with Java's hash code), so
    /// that data placed by key in one run is where the next run looks for it. Any other key's hash code is
    /// Swift's `hashValue`, seeded per process.
    public static func isProcessIndependent(_ type: Any.Type) -> Bool {
        type == Int.self || type == Int64.self || type == Int32.self || type == Bool.self || type == String.self
            || type == Word.self
    }

    /// `java.lang.Long.hashCode`.
    @inlinable
    public static func long(_ value: Int64) -> Int32 {
        let bits = UInt64(bitPattern: value)
        return Int32(truncatingIfNeeded: bits ^ (bits >> 32))
    }

    /// `java.lang.String.hashCode`: s[0]*31^(n-1) + ... over UTF-16 code units.
    public static func string(_ value: String) -> Int32 {
        var s = value
        return s.withUTF8 { utf8(UnsafeRawBufferPointer($0)) }
    }

    /// `java.lang.String.hashCode` of the string whose UTF-8 bytes are `bytes` (ASCII is hashed byte by byte;
    /// anything else through its UTF-16 code units).
    public static func utf8(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        var h: Int32 = 0
        for b in bytes {
            guard b < 0x80 else {
                h = 0
                for unit in String(decoding: bytes, as: UTF8.self).utf16 { h = h &* 31 &+ Int32(unit) }
                return h
            }
            h = h &* 31 &+ Int32(b)
        }
        return h
    }
}

/// Java's hash code of `key` (see ``SparkHashCode``), with the common key types decided at compile time when
/// the caller is specialized.
@inlinable
public func sparkHashCode<K: Hashable>(of key: K) -> Int32 {
    if let value = key as? Int { return SparkHashCode.long(Int64(value)) }
    if let value = key as? String { return SparkHashCode.string(value) }
    if let value = key as? Word { return value.javaHashCode }
    return SparkHashCode.of(key)
}
