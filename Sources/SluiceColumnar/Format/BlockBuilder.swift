import CSluiceChecksum

/// Builds a ``Block`` column by column or row by row, then seals it.
///
/// Row by row: the element serializers (``BlockSerializable``) write one value per column in order with the
/// `write…` methods and close the row with ``endRow()``. Column by column: ``withColumn(_:_:)`` hands out one
/// column's builder. ``reset()`` keeps every buffer for the next block.
public struct BlockBuilder: Sendable {
    /// The column types, in order.
    public let schema: [ColumnType]
    @usableFromInline var columns: [ColumnBuilder]
    @usableFromInline var cursor = 0
    @usableFromInline var _rowCount = 0
    /// Rows written so far.
    public var rowCount: Int { _rowCount }
    /// Bytes of column data written so far (what a block of these rows holds, less its header and directory).
    public var byteCount: Int {
        columns.reduce(0) { total, column in
            let lengths = column.bufferLengths
            return total + lengths.validity + lengths.values + lengths.data
        }
    }
    let pool: BufferPool
    /// Scratch space for values stored through their row encoding.
    var scratch: BinaryWriter?

    /// An empty builder for `schema` whose buffers come from `pool`.
    /// - Throws: ``MemoryError`` when memory runs out.
    public init(schema: [ColumnType], pool: BufferPool = .shared) throws(MemoryError) {
        self.schema = schema
        self.pool = pool
        var columns: [ColumnBuilder] = []
        columns.reserveCapacity(schema.count)
        for type in schema {
            columns.append(try ColumnBuilder(type: type, pool: pool))
        }
        self.columns = columns
    }

    /// Forgets all rows, keeping the memory.
    public mutating func reset() {
        for i in columns.indices { columns[i].reset() }
        cursor = 0
        _rowCount = 0
    }

    /// Makes room for `rows` more rows and `bytes` more bytes in each variable-width column.
    /// - Throws: ``MemoryError`` when memory runs out.
    public mutating func reserveCapacity(rows: Int, bytesPerVariableColumn bytes: Int = 0) throws(MemoryError) {
        for i in columns.indices { try columns[i].reserveCapacity(rows: rows, bytes: bytes) }
    }

    /// Runs `body` on the builder of column `index` (column-wise building; keep all columns the same length).
    @inlinable
    public mutating func withColumn<R>(_ index: Int, _ body: (inout ColumnBuilder) throws -> R) rethrows -> R {
        try body(&columns[index])
    }

    // MARK: Row-wise writing

    /// Writes a fixed-width value into the next column of the current row.
    @inlinable
    public mutating func write<T: FixedWidthColumnValue>(_ value: T) {
        columns[cursor].append(value)
        cursor += 1
    }

    /// Writes a `bool` into the next column of the current row.
    @inlinable
    public mutating func write(_ value: Bool) {
        columns[cursor].append(value)
        cursor += 1
    }

    /// Writes a `string` into the next column of the current row.
    @inlinable
    public mutating func write(string: String) {
        columns[cursor].append(string: string)
        cursor += 1
    }

    /// Writes `string` or `binary` bytes into the next column of the current row.
    @inlinable
    public mutating func write(bytes: UnsafeRawBufferPointer) {
        columns[cursor].append(bytes: bytes)
        cursor += 1
    }

    /// Writes nulls into the next `count` columns of the current row.
    public mutating func writeNulls(_ count: Int = 1) {
        for _ in 0..<count {
            columns[cursor].appendNull()
            cursor += 1
        }
    }

    /// Closes the current row; every column must have been written once.
    @inlinable
    public mutating func endRow() {
        precondition(cursor == columns.count, "a row wrote \(cursor) of \(columns.count) columns")
        cursor = 0
        _rowCount += 1
    }

    /// Writes one row with `write` and closes it; when `write` throws, every column goes back to where the row
    /// started, so that no partial row is left behind.
    @inlinable
    public mutating func appendRow(_ write: (inout BlockBuilder) throws -> Void) rethrows {
        do {
            try write(&self)
            endRow()
        } catch {
            let rows = _rowCount
            for i in columns.indices { columns[i].truncate(toRows: rows) }
            cursor = 0
            throw error
        }
    }

    // MARK: Sealing

    /// Lays the columns out as one block in pooled memory and checksums it. The builder is unchanged.
    /// - Throws: ``FormatError`` (`tooLarge`) past 4 GiB or 2³² rows, or a column's data past 4 GiB (naming
    ///   the column and the row), or when columns differ in length;
    ///   ``MemoryError`` when memory runs out.
    public func seal() throws -> Block {
        let rows = columns.first?.count ?? rowCount
        guard rows <= Int(UInt32.max) else {
            throw FormatError(.tooLarge, at: 12, "\(rows) rows do not fit one block (at most \(UInt32.max))")
        }
        for (i, column) in columns.enumerated() where column.overflowed { throw column.overflowError(column: i) }
        for column in columns { if let failure = column.allocationFailure { throw failure } }
        for (i, column) in columns.enumerated() where column.count != rows {
            throw FormatError(.inconsistent, at: 12, "column \(i) has \(column.count) rows, column 0 has \(rows)")
        }
        var total = BlockLayout.align(BlockLayout.directoryEnd(columns: columns.count))
        for column in columns {
            let lengths = column.bufferLengths
            total += BlockLayout.align(lengths.validity) + BlockLayout.align(lengths.values)
                + BlockLayout.align(lengths.data)
        }
        guard total <= Int(UInt32.max) else {
            throw FormatError(.tooLarge, at: 16, "a block of \(total) bytes is over the format's 4 GiB")
        }
        var out = try ArenaBuffer(minimumCapacity: total, pool: pool)
        out.append(littleEndian: BlockLayout.magic)
        out.append(littleEndian: BlockLayout.version)
        out.append(littleEndian: UInt16(0))
        out.append(littleEndian: UInt32(columns.count))
        out.append(littleEndian: UInt32(rows))
        out.append(littleEndian: UInt64(total))
        out.append(littleEndian: UInt32(0))  // checksum, filled in below
        out.append(littleEndian: UInt32(0))
        // Directory: buffer offsets follow from the lengths, in column order.
        var next = BlockLayout.align(BlockLayout.directoryEnd(columns: columns.count))
        for column in columns {
            let lengths = column.bufferLengths
            out.append(littleEndian: column.type.kind.rawValue)
            out.append(littleEndian: UInt8(column.type.nullable ? 1 : 0))
            out.append(littleEndian: UInt16(0))
            out.append(littleEndian: UInt32(column.nullCount))
            // Three calls, not a loop over an array literal: sealing a recycled block allocates nothing.
            func entry(_ length: Int) {
                out.append(littleEndian: UInt32(next))
                out.append(littleEndian: UInt32(length))
                next += BlockLayout.align(length)
            }
            entry(lengths.validity)
            entry(lengths.values)
            entry(lengths.data)
        }
        out.pad(toMultipleOf: BlockLayout.bufferAlignment)
        for column in columns {
            if column.type.nullable { column.validity.withUnsafeBytes { out.append(contentsOf: $0) } }
            out.pad(toMultipleOf: BlockLayout.bufferAlignment)
            column.values.withUnsafeBytes { out.append(contentsOf: $0) }
            out.pad(toMultipleOf: BlockLayout.bufferAlignment)
            if column.type.kind.isVariableWidth { column.data.withUnsafeBytes { out.append(contentsOf: $0) } }
            out.pad(toMultipleOf: BlockLayout.bufferAlignment)
        }
        let checksum = out.withUnsafeBytes { BlockLayout.checksum($0) }
        out.set(littleEndian: checksum, at: BlockLayout.checksumOffset)
        try out.checkAllocation()
        return Block(storage: out.storage, byteCount: total, rowCount: rows, columnCount: columns.count)
    }
}
