/// A byte range of a buffer's storage, kept alive by the reference.
@usableFromInline
struct BufferSlice: Sendable {
    @usableFromInline let storage: ArenaStorage
    @usableFromInline let offset: Int
    @usableFromInline let length: Int

    @usableFromInline
    init(storage: ArenaStorage, offset: Int, length: Int) {
        self.storage = storage
        self.offset = offset
        self.length = length
    }

    @inlinable var base: UnsafeRawPointer { UnsafeRawPointer(storage.pointer + offset) }

    @inlinable
    func bit(_ index: Int) -> Bool {
        // Safe: callers check index < rows and validation checked length == ceil(rows / 8).
        (base.load(fromByteOffset: index >> 3, as: UInt8.self) >> UInt8(index & 7)) & 1 == 1
    }
}

/// An immutable column of values: a builder's result, or a zero-copy view of a column in a ``Block``.
///
/// Value semantics over shared, read-only storage. Fixed-width values are stored in place; `bool` values and
/// the validity bitmap are bit-packed (bit i of byte i/8, 1 = present); `string` and `binary` keep
/// `count + 1` UInt32 offsets into a byte buffer. Accessors check the row and the kind with preconditions:
/// a kind mismatch is a programming error, since a block's schema is checked when it is opened.
public struct Column: Sendable {
    /// The column's type.
    public let type: ColumnType
    /// The number of rows.
    public let count: Int
    /// The number of null rows.
    public let nullCount: Int
    @usableFromInline let validity: BufferSlice?
    @usableFromInline let values: BufferSlice
    @usableFromInline let data: BufferSlice?

    @usableFromInline
    init(type: ColumnType, count: Int, nullCount: Int, validity: BufferSlice?, values: BufferSlice, data: BufferSlice?) {
        self.type = type
        self.count = count
        self.nullCount = nullCount
        self.validity = validity
        self.values = values
        self.data = data
    }

    /// Whether row `row` is null.
    @inlinable
    public func isNull(_ row: Int) -> Bool {
        precondition(row >= 0 && row < count, "row \(row) out of 0..<\(count)")
        guard let validity else { return false }
        return !validity.bit(row)
    }

    /// The fixed-width value at `row` (whatever is stored there when the row is null, usually 0).
    @inlinable
    public func value<T: FixedWidthColumnValue>(at row: Int, as type: T.Type = T.self) -> T {
        precondition(T.columnKind == self.type.kind, "a \(self.type.kind) column read as \(T.self)")
        precondition(row >= 0 && row < count, "row \(row) out of 0..<\(count)")
        // Safe: the kind matches T, row < count, and values.length == count * stride (builder or validation).
        return values.base.load(fromByteOffset: row &* MemoryLayout<T>.stride, as: T.self)
    }

    /// Calls `body` with all values of a fixed-width column. The pointer must not escape `body`.
    @inlinable
    public func withValues<T: FixedWidthColumnValue, R, E: Error>(
        as type: T.Type, _ body: (UnsafeBufferPointer<T>) throws(E) -> R
    ) throws(E) -> R {
        precondition(T.columnKind == self.type.kind, "a \(self.type.kind) column read as \(T.self)")
        // Safe: values are 64-byte aligned (builder buffers and block offsets) and hold count values of T.
        let pointer = values.base.assumingMemoryBound(to: T.self)
        return try body(UnsafeBufferPointer(start: pointer, count: count))
    }

    /// The `bool` value at `row`.
    @inlinable
    public func bool(at row: Int) -> Bool {
        precondition(type.kind == .bool, "a \(type.kind) column read as Bool")
        precondition(row >= 0 && row < count, "row \(row) out of 0..<\(count)")
        return values.bit(row)
    }

    @inlinable
    func byteRange(_ row: Int) -> Range<Int> {
        precondition(type.kind.isVariableWidth, "a \(type.kind) column has no bytes per row")
        precondition(row >= 0 && row < count, "row \(row) out of 0..<\(count)")
        // Safe: offsets hold count + 1 entries, validated monotonic and within the data buffer.
        let start = Int(values.base.load(fromByteOffset: row &* 4, as: UInt32.self))
        let end = Int(values.base.load(fromByteOffset: (row &+ 1) &* 4, as: UInt32.self))
        return start..<end
    }

    /// Calls `body` with the bytes of a `string` or `binary` row. The pointer must not escape `body`.
    @inlinable
    public func withBytes<R, E: Error>(at row: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let range = byteRange(row)
        let base = data.map { $0.base } ?? values.base
        return try body(UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count))
    }

    /// The `string` at `row`. Bytes that are not valid UTF-8 (possible only in a hand-made block whose checksum
    /// was forged) are replaced with U+FFFD rather than trapping.
    @inlinable
    public func string(at row: Int) -> String {
        withBytes(at: row) { String(decoding: $0, as: UTF8.self) }
    }

    /// The `binary` (or `string`) row as an array of bytes.
    public func bytes(at row: Int) -> [UInt8] {
        withBytes(at: row) { Array($0) }
    }
}
