/// A type whose values Sluice can store in blocks (for the write-ahead log, checkpoints, serialized storage
/// levels and spill files) and in its compact row encoding.
///
/// Built in: `Int`, `Int64`, `Int32`, `UInt64`, `UInt`, `UInt8`, `Double`, `Float`, `Bool`, `String`, and
/// `Optional` and `Array` of these. Tuples and pairs go through ``ElementCodec`` (`ElementCodec.tuple`),
/// one column group per component, since Swift tuples cannot conform to protocols.
///
/// A `Codable` type needs no declaration at all: the engine stores it through ``CompactEncoder`` in one `binary`
/// column (``ElementCodecs/codable(_:)``), as Spark stores any `Serializable` object. Conform to this protocol
/// for a faster, smaller encoding of your own: `encode(to:)` and `decode(from:)` (a `Codable` type that conforms
/// gets both), and the column requirements to store a value as several columns.
public protocol BlockSerializable: Sendable {
    /// The columns a value occupies, in order. Default: one `binary` column holding the row encoding.
    static var columnTypes: [ColumnType] { get }
    /// `columnTypes.count`, cheap to ask per row. Default: 1.
    static var columnCount: Int { get }
    /// Whether any column can hold a null. Default: `false`.
    static var hasNullableColumns: Bool { get }
    /// Writes `value` into the builder's next ``columnCount`` columns.
    /// - Throws: whatever encoding the value throws (a user type's `Encodable` conformance may).
    static func writeColumns(_ value: Self, to builder: inout BlockBuilder) throws
    /// Reads a value from the reader's next ``columnCount`` columns.
    static func readColumns(from row: inout RowReader) throws -> Self
    /// Writes the value in the compact row encoding.
    /// - Throws: whatever encoding the value throws (a user type's `Encodable` conformance may).
    func encode(to writer: inout BinaryWriter) throws
    /// Reads a value written by ``encode(to:)``.
    /// - Throws: ``FormatError`` naming the problem and offset when the bytes are not a valid encoding.
    static func decode(from reader: inout BinaryReader) throws -> Self
}

extension BlockSerializable {
    public static var columnTypes: [ColumnType] { [ColumnType(.binary)] }
    public static var columnCount: Int { 1 }
    public static var hasNullableColumns: Bool { false }

    public static func writeColumns(_ value: Self, to builder: inout BlockBuilder) throws {
        try builder.writeEncoded(value)
    }

    public static func readColumns(from row: inout RowReader) throws -> Self {
        try row.readEncoded(Self.self)
    }
}

extension BlockBuilder {
    /// Writes `value`'s row encoding as the next `binary` column, through a reused scratch buffer.
    /// - Throws: what encoding `value` throws, or ``MemoryError`` for the scratch buffer.
    public mutating func writeEncoded<T: BlockSerializable>(_ value: T) throws {
        try writeEncoded { try value.encode(to: &$0) }
    }

    /// Writes what `encode` writes as the next `binary` column, through a reused scratch buffer.
    /// - Throws: what `encode` throws, or ``MemoryError`` for the scratch buffer.
    public mutating func writeEncoded(_ encode: (inout BinaryWriter) throws -> Void) throws {
        var writer = try scratch ?? BinaryWriter(pool: pool)
        scratch = nil  // moved out, so that the writer's buffer stays uniquely owned while it is written
        writer.reset()
        defer { scratch = writer }
        try encode(&writer)
        try writer.withWrittenBytes { write(bytes: $0) }
    }
}

/// Reads one row of a ``Block`` column by column, in the order a ``BlockSerializable`` type wrote them.
public struct RowReader {
    /// The block read from.
    public let block: Block
    /// The row read.
    public let row: Int
    /// The next column to read.
    public private(set) var column: Int

    /// A reader of row `row` of `block`, starting at column `column`.
    public init(block: Block, row: Int, column: Int = 0) {
        precondition(row >= 0 && row < block.rowCount, "row \(row) out of 0..<\(block.rowCount)")
        self.block = block
        self.row = row
        self.column = column
    }

    mutating func next() -> Column {
        defer { column += 1 }
        return block.column(column)
    }

    /// Whether the next column is null at this row (does not advance).
    public func isNextNull() -> Bool {
        block.column(column).isNull(row)
    }

    /// Skips `count` columns.
    public mutating func skip(_ count: Int) { column += count }

    /// Reads a fixed-width value from the next column.
    public mutating func read<T: FixedWidthColumnValue>(_ type: T.Type = T.self) -> T {
        next().value(at: row, as: T.self)
    }

    /// Reads a `bool` from the next column.
    public mutating func readBool() -> Bool { next().bool(at: row) }

    /// Reads a `string` from the next column.
    public mutating func readString() -> String { next().string(at: row) }

    /// Calls `body` with the bytes of the next `string`/`binary` column at this row.
    public mutating func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try next().withBytes(at: row, body)
    }

    /// Decodes a value's row encoding from the next `binary` column; every byte must be used.
    /// - Throws: ``FormatError`` with the offset within the row's bytes.
    public mutating func readEncoded<T: BlockSerializable>(_ type: T.Type) throws -> T {
        try readEncoded { try T.decode(from: &$0) }
    }

    /// Decodes the next `binary` column with `decode`, which must use every byte.
    /// - Throws: what `decode` throws; ``FormatError`` with the offset within the row's bytes.
    public mutating func readEncoded<T>(_ decode: (inout BinaryReader) throws -> T) throws -> T {
        let (row, column) = (self.row, self.column)
        return try withBytes { bytes in
            try BinaryReader.withReader(bytes) { reader in
                let value = try decode(&reader)
                guard reader.isAtEnd else {
                    throw FormatError(.inconsistent, at: reader.offset,
                        "row \(row), column \(column): \(reader.remaining) bytes left after decoding \(T.self)")
                }
                return value
            }
        }
    }
}
