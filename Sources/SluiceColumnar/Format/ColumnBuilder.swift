/// Builds one column row by row; ``finish()`` hands out an immutable ``Column`` sharing its buffers.
///
/// Reusable: ``reset()`` keeps the buffers' capacity (copy-on-write makes a builder that is reused after
/// `finish()` copy once, leaving the finished column intact).
public struct ColumnBuilder: Sendable {
    /// The type of the column being built.
    public let type: ColumnType
    @usableFromInline var _count = 0
    /// Rows appended so far.
    public var count: Int { _count }
    /// Null rows appended so far.
    public internal(set) var nullCount = 0
    @usableFromInline var validity: ArenaBuffer
    @usableFromInline var values: ArenaBuffer
    @usableFromInline var data: ArenaBuffer
    /// The most string or binary data the column may hold (the format's offsets are 32-bit).
    @usableFromInline var maxDataBytes = Int(UInt32.max)
    /// Set when a row would have taken the data past ``maxDataBytes``: that row and every later one were left
    /// out, and ``finish()`` and `BlockBuilder.seal()` throw.
    public var overflowed: Bool { _overflowed }
    @usableFromInline var _overflowed = false

    /// Bytes kept free in front of the column's main buffer (``mainIsData`` says which), through every growth:
    /// room for a block's header, so that the block of a one-column builder is sealed where its rows were
    /// written (`BlockBuilder.sealTakingBuffers()`).
    let headroom: Int

    /// An empty builder whose buffers come from `pool`.
    /// - Throws: ``MemoryError`` when the pool's allocator has no memory.
    public init(type: ColumnType, pool: BufferPool = .shared) throws(MemoryError) {
        try self.init(type: type, pool: pool, headroom: 0)
    }

    /// An empty builder whose main buffer keeps `headroom` bytes free in front of it.
    init(type: ColumnType, pool: BufferPool, headroom: Int) throws(MemoryError) {
        self.type = type
        self.headroom = headroom
        let dataIsMain = type.kind.isVariableWidth
        self.validity = try ArenaBuffer(pool: pool)
        self.values = try ArenaBuffer(minimumCapacity: 0, headroom: dataIsMain ? 0 : headroom, pool: pool)
        self.data = try ArenaBuffer(minimumCapacity: 0, headroom: dataIsMain ? headroom : 0, pool: pool)
        if type.kind.isVariableWidth {
            values.append(littleEndian: UInt32(0))
        }
    }

    /// Whether the column's bulk is its data (string and binary columns: the bytes, beside 4-byte offsets),
    /// else its values.
    var mainIsData: Bool { type.kind.isVariableWidth }

    /// Makes room for `rows` more rows (and `bytes` more bytes of string or binary data).
    /// - Throws: ``MemoryError`` when the allocator has no memory.
    public mutating func reserveCapacity(rows: Int, bytes: Int = 0) throws(MemoryError) {
        let total = count + rows
        if type.nullable { try validity.reserveCapacity((total + 7) / 8) }
        switch type.kind {
        case .bool: try values.reserveCapacity((total + 7) / 8)
        case .string, .binary:
            try values.reserveCapacity((total + 1) * 4)
            try data.reserveCapacity(data.count + bytes)
        default: try values.reserveCapacity(total * (type.kind.fixedWidth ?? 0))
        }
    }

    /// Forgets all rows, keeping the memory.
    public mutating func reset() {
        _count = 0
        nullCount = 0
        _overflowed = false
        validity.removeAll()
        values.removeAll()
        data.removeAll()
        if type.kind.isVariableWidth {
            values.append(littleEndian: UInt32(0))
        }
    }

    @inlinable
    mutating func markPresent() {
        if type.nullable { validity.appendBit(true, index: count) }
    }

    /// Appends a fixed-width value; `T` must match the column's kind.
    @inlinable
    public mutating func append<T: FixedWidthColumnValue>(_ value: T) {
        precondition(T.columnKind == type.kind, "\(T.self) appended to a \(type.kind) column")
        markPresent()
        values.append(raw: value)
        _count += 1
    }

    /// Appends a `bool` value.
    @inlinable
    public mutating func append(_ value: Bool) {
        precondition(type.kind == .bool, "Bool appended to a \(type.kind) column")
        markPresent()
        values.appendBit(value, index: count)
        _count += 1
    }

    /// Appends the bytes of a `string` or `binary` row.
    @inlinable @inline(__always)
    public mutating func append(bytes: UnsafeRawBufferPointer) {
        precondition(type.kind.isVariableWidth, "bytes appended to a \(type.kind) column")
        let n = bytes.count
        let end = data._count &+ n
        guard end <= maxDataBytes, !_overflowed else {
            _overflowed = true
            return
        }
        markPresent()
        // Both buffers are made writable before any store: raw stores may alias the buffers' own fields, so
        // checking first lets the compiler keep pointers and counts in registers for the copies below.
        guard data.makeRoom(for: n), values.makeRoom(for: 4) else { return }  // recorded by the buffer
        let target = data.storage.pointer + data._count
        let offsetSlot = values.storage.pointer + values._count
        if let base = bytes.baseAddress { copyBytes(to: target, from: base, count: n) }
        // Safe: makeRoom made room for n data bytes and one UInt32 offset.
        offsetSlot.storeBytes(of: UInt32(truncatingIfNeeded: end).littleEndian, as: UInt32.self)
        data._count = end
        values._count &+= 4
        _count += 1
    }

    /// Appends a `string` row.
    @inlinable @inline(__always)
    public mutating func append(string: String) {
        withUTF8Bytes(of: string) { append(bytes: $0) }
    }

    /// Appends a null row; the column must be nullable.
    public mutating func appendNull() {
        precondition(type.nullable, "null appended to a non-nullable \(type.kind) column")
        validity.appendBit(false, index: count)
        switch type.kind {
        case .bool: values.appendBit(false, index: count)
        case .string, .binary: values.append(littleEndian: UInt32(truncatingIfNeeded: data.count))
        default: values.appendZeros(type.kind.fixedWidth ?? 0)
        }
        _count += 1
        nullCount += 1
    }

    /// The column built so far. The builder stays usable; its next write copies instead of changing this column.
    /// - Throws: ``FormatError`` (`tooLarge`) when the column's data passed 4 GiB (see ``overflowed``).
    /// - Throws: ``MemoryError`` when a buffer could not grow (see ``allocationFailure``).
    public func finish() throws -> Column {
        if overflowed { throw overflowError(column: nil) }
        if let allocationFailure { throw allocationFailure }
        return Column(
            type: type, count: count, nullCount: nullCount,
            validity: type.nullable ? validity.slice() : nil,
            values: values.slice(),
            data: type.kind.isVariableWidth ? data.slice() : nil)
    }

    /// Why rows were left out for want of memory, if they were: the first buffer that could not grow.
    public var allocationFailure: MemoryError? {
        validity.allocationFailure ?? values.allocationFailure ?? data.allocationFailure
    }

    /// The error for a column whose data passed ``maxDataBytes``.
    func overflowError(column: Int?) -> FormatError {
        FormatError(
            .tooLarge, at: 0,
            "\(column.map { "column \($0)" } ?? "a column")'s \(type.kind) data passed \(maxDataBytes) bytes after "
                + "\(count) rows (the format's offsets are 32-bit): the rows from there on were not added")
    }

    /// The bytes each buffer holds: validity, values, data (for laying out a block).
    var bufferLengths: (validity: Int, values: Int, data: Int) {
        (type.nullable ? validity.count : 0, values.count, type.kind.isVariableWidth ? data.count : 0)
    }
}

extension ColumnBuilder {
    /// Drops the rows from `rows` on (used to undo a partly written row).
    @usableFromInline
    mutating func truncate(toRows rows: Int) {
        guard rows < count else { return }
        let bitmapBytes = (rows + 7) / 8
        switch type.kind {
        case .bool:
            values.truncate(to: bitmapBytes)
            Self.clearBits(from: rows, in: &values)
        case .string, .binary:
            // Safe: offsets hold count + 1 entries and rows < count.
            let end = values.withUnsafeBytes { Int($0.readLE(rows * 4, as: UInt32.self)) }
            values.truncate(to: (rows + 1) * 4)
            data.truncate(to: end)
        default:
            values.truncate(to: rows * (type.kind.fixedWidth ?? 0))
        }
        if type.nullable {
            validity.truncate(to: bitmapBytes)
            Self.clearBits(from: rows, in: &validity)
            let present = validity.withUnsafeBytes { $0.reduce(0) { $0 + $1.nonzeroBitCount } }
            nullCount = rows - present
        }
        _count = rows
    }

    /// Zeroes the bits from `bit` to the end of the last byte, which later appends OR into.
    private static func clearBits(from bit: Int, in bitmap: inout ArenaBuffer) {
        guard bit % 8 != 0, bitmap.count > 0 else { return }
        bitmap.withUnsafeMutableBytes { bytes in
            if let last = bytes.indices.last { bytes[last] &= UInt8((1 << (bit % 8)) - 1) }
        }
    }
}
