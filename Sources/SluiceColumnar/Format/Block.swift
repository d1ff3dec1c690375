/// A sealed, self-describing columnar block: header, column directory, then the columns' buffers.
///
/// Immutable once sealed. Opening a block (``init(validating:)``) checks every field against the bytes, so
/// reading its columns afterwards is zero-copy and cannot go out of bounds. The same bytes go to the WAL, to
/// checkpoints and (compressed) to spill files. See ``BlockLayout`` for the byte layout.
public struct Block: Sendable {
    @usableFromInline private(set) var storage: ArenaStorage
    /// The block's size in bytes.
    public private(set) var byteCount: Int
    /// The number of rows.
    public private(set) var rowCount: Int
    /// The number of columns.
    public private(set) var columnCount: Int

    init(storage: ArenaStorage, byteCount: Int, rowCount: Int, columnCount: Int) {
        self.storage = storage
        self.byteCount = byteCount
        self.rowCount = rowCount
        self.columnCount = columnCount
    }

    /// Calls `body` with the block's bytes (to write them out). The pointer must not escape `body`.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: storage.pointer, count: byteCount))
    }

    /// The block's bytes as a buffer sharing its storage.
    public var buffer: ArenaBuffer { ArenaBuffer(storage: storage, count: byteCount) }

    func directoryField(_ column: Int, _ field: Int) -> Int {
        // Safe: column < columnCount and the directory was validated to lie within the block.
        Int(UInt32(littleEndian: storage.pointer.loadUnaligned(
            fromByteOffset: BlockLayout.headerSize + column * BlockLayout.directoryEntrySize + field, as: UInt32.self)))
    }

    /// The type of column `index`.
    public func columnType(at index: Int) -> ColumnType {
        precondition(index >= 0 && index < columnCount, "column \(index) out of 0..<\(columnCount)")
        let entry = BlockLayout.headerSize + index * BlockLayout.directoryEntrySize
        let kind = storage.pointer.load(fromByteOffset: entry, as: UInt8.self)
        let flags = storage.pointer.load(fromByteOffset: entry + 1, as: UInt8.self)
        // Safe: validation accepted only defined kinds.
        return ColumnType(ColumnKind(rawValue: kind) ?? .binary, nullable: flags & 1 == 1)
    }

    /// The types of all columns.
    public var schema: [ColumnType] {
        (0..<columnCount).map(columnType(at:))
    }

    /// Column `index`, sharing the block's memory.
    public func column(_ index: Int) -> Column {
        let type = columnType(at: index)
        func slice(_ field: Int) -> BufferSlice {
            BufferSlice(storage: storage, offset: directoryField(index, field), length: directoryField(index, field + 4))
        }
        return Column(
            type: type, count: rowCount, nullCount: directoryField(index, 4),
            validity: type.nullable ? slice(8) : nil,
            values: slice(16),
            data: type.kind.isVariableWidth ? slice(24) : nil)
    }

    /// Hands the block's memory back to its pool for the next block, when no other value (a copy of the block,
    /// a ``Column`` read from it) shares it; the block is left empty (no rows, no columns). The way a batch's
    /// blocks are released when the batch is cleaned up, so that steady state allocates nothing.
    ///
    /// Mutating rather than consuming: taking the storage out of the caller's own variable makes uniqueness
    /// independent of how long the compiler keeps a named value alive.
    public mutating func recycle() {
        var taken = storage
        storage = ArenaStorage.empty
        byteCount = 0
        rowCount = 0
        columnCount = 0
        if isKnownUniquelyReferenced(&taken) {
            taken.pool.recycle(taken)
        }
    }
}

extension Block {
    /// Opens the block in `buffer` (which must hold exactly one block), checking every field.
    /// - Throws: ``FormatError`` naming the problem and its byte offset: truncated, bad magic, unknown version,
    ///   length or checksum mismatch, or a directory entry that disagrees with the bytes.
    public init(validating buffer: ArenaBuffer) throws(FormatError) {
        let (rows, columns) = try buffer.withUnsafeBytes { (bytes) throws(FormatError) in
            try Block.validate(bytes)
        }
        self.init(storage: buffer.storage, byteCount: buffer.count, rowCount: rows, columnCount: columns)
    }

    /// Opens a block from `bytes`, copying them into pooled memory first.
    /// - Throws: ``FormatError`` as ``init(validating:)``; ``MemoryError`` when memory runs out.
    public init(copying bytes: UnsafeRawBufferPointer, pool: BufferPool = .shared) throws {
        var buffer = try ArenaBuffer(minimumCapacity: bytes.count, pool: pool)
        buffer.append(contentsOf: bytes)
        try self.init(validating: buffer)
    }

    static func validate(_ bytes: UnsafeRawBufferPointer) throws(FormatError) -> (rows: Int, columns: Int) {
        let n = bytes.count
        guard n >= BlockLayout.headerSize else {
            throw FormatError(.truncated, at: n, "block truncated: \(n) bytes, the header alone needs 32")
        }
        let magic = bytes.readLE(0, as: UInt32.self)
        guard magic == BlockLayout.magic else {
            throw FormatError(.badMagic, at: 0, "not a Sluice block: magic is 0x\(String(magic, radix: 16))")
        }
        let version = bytes.readLE(4, as: UInt16.self)
        guard version == BlockLayout.version else {
            throw FormatError(.unsupportedVersion, at: 4, "block format version \(version) (this build reads 1)")
        }
        let total = bytes.readLE(16, as: UInt64.self)
        guard total == UInt64(n) else {
            let code: FormatError.Code = total > UInt64(n) ? .truncated : .inconsistent
            throw FormatError(code, at: 16, "block length field says \(total) bytes, \(n) are present")
        }
        let stored = bytes.readLE(BlockLayout.checksumOffset, as: UInt32.self)
        let computed = BlockLayout.checksum(bytes)
        guard stored == computed else {
            throw FormatError(
                .checksumMismatch, at: BlockLayout.checksumOffset,
                "block checksum mismatch: stored 0x\(String(stored, radix: 16)), "
                    + "bytes give 0x\(String(computed, radix: 16)); the block is corrupt")
        }
        // The checksum matched; the structure is still checked in full, so that a forged block cannot make a
        // reader go out of bounds.
        let flags = bytes.readLE(6, as: UInt16.self)
        guard flags == 0 else { throw FormatError(.invalidValue, at: 6, "unknown block flags 0x\(String(flags, radix: 16))") }
        guard bytes.readLE(28, as: UInt32.self) == 0 else {
            throw FormatError(.invalidValue, at: 28, "reserved header field is not zero")
        }
        let columns = Int(bytes.readLE(8, as: UInt32.self))
        guard columns <= BlockLayout.maxColumns else {
            throw FormatError(.tooLarge, at: 8, "block claims \(columns) columns (at most \(BlockLayout.maxColumns))")
        }
        let directoryEnd = BlockLayout.directoryEnd(columns: columns)
        guard directoryEnd <= n else {
            throw FormatError(.truncated, at: 8, "block claims \(columns) columns, whose directory ends past its \(n) bytes")
        }
        let rows = Int(bytes.readLE(12, as: UInt32.self))
        for c in 0..<columns {
            try validateColumn(c, rows: rows, directoryEnd: directoryEnd, bytes)
        }
        return (rows, columns)
    }

    private static func validateColumn(
        _ c: Int, rows: Int, directoryEnd: Int, _ bytes: UnsafeRawBufferPointer
    ) throws(FormatError) {
        let entry = BlockLayout.headerSize + c * BlockLayout.directoryEntrySize
        let rawKind = bytes[entry]
        guard let kind = ColumnKind(rawValue: rawKind) else {
            throw FormatError(.invalidValue, at: entry, "column \(c) has unknown kind \(rawKind)")
        }
        let flags = bytes[entry + 1]
        guard flags & ~1 == 0, bytes.readLE(entry + 2, as: UInt16.self) == 0 else {
            throw FormatError(.invalidValue, at: entry + 1, "column \(c) has unknown flags 0x\(String(flags, radix: 16))")
        }
        let nullable = flags & 1 == 1
        let nullCount = Int(bytes.readLE(entry + 4, as: UInt32.self))
        let bitmapBytes = (rows + 7) / 8

        func range(_ field: Int, expected: Int?, name: String) throws(FormatError) -> Range<Int> {
            let offset = Int(bytes.readLE(entry + field, as: UInt32.self))
            let length = Int(bytes.readLE(entry + field + 4, as: UInt32.self))
            if let expected, length != expected {
                throw FormatError(.inconsistent, at: entry + field + 4,
                    "column \(c) (\(kind)): \(name) buffer is \(length) bytes, \(rows) rows need \(expected)")
            }
            guard offset % 8 == 0, offset >= directoryEnd, offset + length <= bytes.count else {
                throw FormatError(.inconsistent, at: entry + field,
                    "column \(c) (\(kind)): \(name) buffer at \(offset)+\(length) lies outside the block's "
                        + "\(directoryEnd)..<\(bytes.count) or is misaligned")
            }
            return offset..<(offset + length)
        }

        let validity = try range(8, expected: nullable ? bitmapBytes : 0, name: "validity")
        if nullable {
            var present = 0
            for i in validity { present += bytes[i].nonzeroBitCount }
            // Bits past the last row do not count.
            if rows % 8 != 0, let last = validity.last {
                present -= (bytes[last] >> UInt8(rows % 8)).nonzeroBitCount
            }
            guard rows - present == nullCount else {
                throw FormatError(.inconsistent, at: entry + 4,
                    "column \(c) (\(kind)): null count \(nullCount) but the validity bitmap marks \(rows - present)")
            }
        } else if nullCount != 0 {
            throw FormatError(.inconsistent, at: entry + 4, "column \(c) (\(kind)) is not nullable but counts \(nullCount) nulls")
        }

        switch kind {
        case .bool:
            _ = try range(16, expected: bitmapBytes, name: "values")
            _ = try range(24, expected: 0, name: "data")
        case .string, .binary:
            let offsets = try range(16, expected: (rows + 1) * 4, name: "offsets")
            let data = try range(24, expected: nil, name: "data")
            var previous: UInt32 = 0
            for r in 0...rows {
                let at = offsets.lowerBound + r * 4
                let value = bytes.readLE(at, as: UInt32.self)
                guard value >= previous, (r > 0 || value == 0) else {
                    throw FormatError(.inconsistent, at: at,
                        "column \(c) (\(kind)): offset \(r) is \(value), after \(previous); offsets must start at 0 and not decrease")
                }
                previous = value
            }
            guard Int(previous) == data.count else {
                throw FormatError(.inconsistent, at: offsets.upperBound - 4,
                    "column \(c) (\(kind)): last offset is \(previous) but the data buffer holds \(data.count) bytes")
            }
        default:
            _ = try range(16, expected: rows * (kind.fixedWidth ?? 0), name: "values")
            _ = try range(24, expected: 0, name: "data")
        }
    }
}
