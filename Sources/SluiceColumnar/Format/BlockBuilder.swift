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
        // One column, not nullable nor bool: its main buffer keeps room for the header, so that
        // sealTakingBuffers() need not copy it.
        let inPlace = schema.count == 1 && !schema[0].nullable && schema[0].kind != .bool
        for type in schema {
            columns.append(try ColumnBuilder(type: type, pool: pool, headroom: inPlace ? BlockBuilder.headerRoom : 0))
        }
        self.columns = columns
    }

    /// The header and directory of a one-column block, rounded up to the buffers' alignment.
    static let headerRoom = BlockLayout.align(BlockLayout.directoryEnd(columns: 1))

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
        let rows = try sealableRows()
        var total = BlockLayout.align(BlockLayout.directoryEnd(columns: columns.count))
        for column in columns {
            let lengths = column.bufferLengths
            total += BlockLayout.align(lengths.validity) + BlockLayout.align(lengths.values)
                + BlockLayout.align(lengths.data)
        }
        try checkSize(total)
        var out = try ArenaBuffer(minimumCapacity: total, pool: pool)
        Self.appendHeader(to: &out, columns: columns.count, rows: rows, total: total)
        // Directory: buffer offsets follow from the lengths, in column order.
        var next = BlockLayout.align(BlockLayout.directoryEnd(columns: columns.count))
        for column in columns {
            let lengths = column.bufferLengths
            let validity = (next, lengths.validity)
            next += BlockLayout.align(lengths.validity)
            let values = (next, lengths.values)
            next += BlockLayout.align(lengths.values)
            let data = (next, lengths.data)
            next += BlockLayout.align(lengths.data)
            Self.appendDirectoryEntry(
                to: &out, type: column.type, nullCount: column.nullCount, validity: validity, values: values, data: data)
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

    /// Seals the block and leaves the builder empty (as ``seal()`` then ``reset()``). A builder of one column
    /// that is neither nullable nor bool (the schema of a stream of `Int`s, `String`s or bytes) seals it in the
    /// memory its rows were written to: the header and directory go in the room kept in front of the column's
    /// bytes (or values), a string column's offsets after them, and the builder takes a fresh buffer from the
    /// pool for its next rows; the rows themselves are not copied. The block's buffers are then in another
    /// order than ``seal()``'s (the format allows any), and it keeps the buffer's spare capacity.
    /// - Throws: as ``seal()``; the builder is unchanged when it throws.
    public mutating func sealTakingBuffers() throws -> Block {
        let room = Self.headerRoom
        guard columns.count == 1, columns[0].headroom >= room else {
            let block = try seal()
            reset()
            return block
        }
        let rows = try sealableRows()
        // No copy of the column builder is kept: the buffer taken out of it must be this function's alone.
        let (type, nullCount, headroom) = (columns[0].type, columns[0].nullCount, columns[0].headroom)
        let dataIsMain = columns[0].mainIsData
        let lengths = columns[0].bufferLengths
        let mainLength = dataIsMain ? lengths.data : lengths.values
        let sideLength = dataIsMain ? lengths.values : 0  // a string column's offsets
        let sideOffset = room + BlockLayout.align(mainLength)
        let total = sideOffset + BlockLayout.align(sideLength)
        try checkSize(total)
        var header = try ArenaBuffer(minimumCapacity: room, pool: pool)
        Self.appendHeader(to: &header, columns: 1, rows: rows, total: total)
        let (main, side) = ((room, mainLength), (sideOffset, sideLength))
        Self.appendDirectoryEntry(
            to: &header, type: type, nullCount: nullCount, validity: (room, 0), values: dataIsMain ? side : main,
            data: dataIsMain ? main : (total, 0))
        header.pad(toMultipleOf: room)
        try header.checkAllocation()
        // The next rows' buffer (as large as these rows took) goes in; the rows' buffer comes out.
        var rowsBuffer = try ArenaBuffer(minimumCapacity: mainLength, headroom: headroom, pool: pool)
        func exchange() {
            if dataIsMain { swap(&rowsBuffer, &columns[0].data) } else { swap(&rowsBuffer, &columns[0].values) }
        }
        exchange()
        do {
            // Room after the rows for padding and the offsets (a copy, into a larger buffer, only when it is full).
            try rowsBuffer.reserveCapacity(total - room)
        } catch {
            exchange()  // the builder as it was
            throw error
        }
        rowsBuffer.pad(toMultipleOf: BlockLayout.bufferAlignment)
        if dataIsMain { columns[0].values.withUnsafeBytes { rowsBuffer.append(contentsOf: $0) } }
        rowsBuffer.pad(toMultipleOf: BlockLayout.bufferAlignment)
        // Safe: the buffer keeps `headroom >= room` bytes of its allocation in front of its bytes, its storage
        // is this function's alone (taken out of the column; `append` made it unique if it grew), and it holds
        // total - room bytes after them.
        let storage = rowsBuffer.storage
        let start = storage.pointer - room
        header.withUnsafeBytes { start.copyMemory(from: $0.baseAddress.unsafelyUnwrapped, byteCount: room) }
        let checksum = BlockLayout.checksum(UnsafeRawBufferPointer(start: start, count: total))
        (start + BlockLayout.checksumOffset).storeBytes(of: checksum.littleEndian, as: UInt32.self)
        let block = Block(
            storage: storage.rebased(headroom: storage.headroom - room), byteCount: total, rowCount: rows,
            columnCount: 1)
        reset()
        return block
    }

    /// The row count of the block to seal, after checking that one can be: the same in every column, within
    /// the format's bounds, nothing left out for want of memory.
    private func sealableRows() throws -> Int {
        let rows = columns.first?.count ?? rowCount
        guard rows <= Int(UInt32.max) else {
            throw FormatError(.tooLarge, at: 12, "\(rows) rows do not fit one block (at most \(UInt32.max))")
        }
        for (i, column) in columns.enumerated() where column.overflowed { throw column.overflowError(column: i) }
        for column in columns { if let failure = column.allocationFailure { throw failure } }
        for (i, column) in columns.enumerated() where column.count != rows {
            throw FormatError(.inconsistent, at: 12, "column \(i) has \(column.count) rows, column 0 has \(rows)")
        }
        return rows
    }

    private func checkSize(_ total: Int) throws {
        guard total <= Int(UInt32.max) else {
            throw FormatError(.tooLarge, at: 16, "a block of \(total) bytes is over the format's 4 GiB")
        }
    }

    /// Appends a block header: `columns` columns, `rows` rows, `total` bytes, the checksum left 0.
    private static func appendHeader(to out: inout ArenaBuffer, columns: Int, rows: Int, total: Int) {
        out.append(littleEndian: BlockLayout.magic)
        out.append(littleEndian: BlockLayout.version)
        out.append(littleEndian: UInt16(0))
        out.append(littleEndian: UInt32(columns))
        out.append(littleEndian: UInt32(rows))
        out.append(littleEndian: UInt64(total))
        out.append(littleEndian: UInt32(0))  // checksum, filled in when the bytes are all there
        out.append(littleEndian: UInt32(0))
    }

    /// Appends `column`'s directory entry: where its validity, values and data buffers lie in the block, as
    /// (offset from the block's start, length).
    private static func appendDirectoryEntry(
        to out: inout ArenaBuffer, type: ColumnType, nullCount: Int, validity: (Int, Int), values: (Int, Int),
        data: (Int, Int)
    ) {
        out.append(littleEndian: type.kind.rawValue)
        out.append(littleEndian: UInt8(type.nullable ? 1 : 0))
        out.append(littleEndian: UInt16(0))
        out.append(littleEndian: UInt32(nullCount))
        // Three calls, not a loop over an array literal: sealing a recycled block allocates nothing.
        func entry(_ buffer: (offset: Int, length: Int)) {
            out.append(littleEndian: UInt32(buffer.offset))
            out.append(littleEndian: UInt32(buffer.length))
        }
        entry(validity)
        entry(values)
        entry(data)
    }
}
