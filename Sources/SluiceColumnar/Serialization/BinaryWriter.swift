/// Writes values in Sluice's compact row encoding (Kryo-like): LEB128 varints, zig-zag for signed integers,
/// length-prefixed strings and byte arrays, IEEE floats as 4 or 8 little-endian bytes, `Bool` as one byte.
/// Type tags appear only where a schema cannot tell (optional presence, see ``BlockSerializable``).
public struct BinaryWriter: Sendable {
    /// The bytes written so far. When memory ran out while it grew, writes were left out and
    /// `buffer.allocationFailure` says so: read the bytes through ``withWrittenBytes(_:)``, which checks.
    public var buffer: ArenaBuffer

    /// A writer into `buffer` (appending to what it holds).
    public init(buffer: ArenaBuffer) {
        self.buffer = buffer
    }

    /// A writer into a new pooled buffer.
    /// - Throws: ``MemoryError`` when memory runs out.
    public init(pool: BufferPool = .shared) throws(MemoryError) {
        self.buffer = try ArenaBuffer(pool: pool)
    }

    /// Calls `body` with the bytes written.
    /// - Throws: ``MemoryError`` when a write was left out for want of memory; what `body` throws.
    public func withWrittenBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try buffer.checkAllocation()
        return try buffer.withUnsafeBytes(body)
    }

    /// Forgets what was written, keeping the memory.
    public mutating func reset() { buffer.removeAll() }

    /// Writes one raw byte.
    @inlinable public mutating func writeByte(_ byte: UInt8) { buffer.append(littleEndian: byte) }

    /// Writes `value` as an unsigned LEB128 varint (1 to 10 bytes).
    @inlinable
    public mutating func writeVarUInt(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            buffer.append(littleEndian: UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        buffer.append(littleEndian: UInt8(truncatingIfNeeded: v))
    }

    /// Writes `value` zig-zag encoded, so that small negative numbers stay short.
    @inlinable
    public mutating func writeVarInt(_ value: Int64) {
        writeVarUInt(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// Writes a `Double` as 8 little-endian bytes.
    @inlinable public mutating func writeDouble(_ value: Double) { buffer.append(littleEndian: value.bitPattern) }

    /// Writes a `Float` as 4 little-endian bytes.
    @inlinable public mutating func writeFloat(_ value: Float) { buffer.append(littleEndian: value.bitPattern) }

    /// Writes a `Bool` as one byte (0 or 1).
    @inlinable public mutating func writeBool(_ value: Bool) { buffer.append(littleEndian: UInt8(value ? 1 : 0)) }

    /// Writes raw bytes with a varint length prefix.
    @inlinable
    public mutating func writeBytes(_ bytes: UnsafeRawBufferPointer) {
        writeVarUInt(UInt64(bytes.count))
        buffer.append(contentsOf: bytes)
    }

    /// Writes a string's UTF-8 bytes with a varint length prefix.
    @inlinable
    public mutating func writeString(_ string: String) {
        var string = string
        string.withUTF8 { writeBytes(UnsafeRawBufferPointer($0)) }
    }

    /// Writes raw bytes with no prefix.
    @inlinable
    public mutating func writeRaw(_ bytes: UnsafeRawBufferPointer) { buffer.append(contentsOf: bytes) }
}
