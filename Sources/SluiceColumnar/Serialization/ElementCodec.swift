/// How values of `Element` map to columns and to the row encoding: the bridge the engine uses for any element
/// type, including tuples and pairs (which Swift cannot make conform to ``BlockSerializable``).
///
/// Make one with ``ElementCodecs``: `ElementCodecs.standard(Int.self)` or
/// `ElementCodecs.tuple(String.self, Int.self)` for `(String, Int)` pairs, stored as a key column and a value
/// column.
public struct ElementCodec<Element>: Sendable {
    /// The columns one element occupies.
    public let columnTypes: [ColumnType]
    @usableFromInline let writeColumns: @Sendable (Element, inout BlockBuilder) throws -> Void
    let readColumns: @Sendable (inout RowReader) throws -> Element
    let encodeRow: @Sendable (Element, inout BinaryWriter) throws -> Void
    let decodeRow: @Sendable (inout BinaryReader) throws -> Element

    /// A codec from its parts (for element types with a mapping of their own).
    public init(
        columnTypes: [ColumnType],
        writeColumns: @escaping @Sendable (Element, inout BlockBuilder) throws -> Void,
        readColumns: @escaping @Sendable (inout RowReader) throws -> Element,
        encode: @escaping @Sendable (Element, inout BinaryWriter) throws -> Void,
        decode: @escaping @Sendable (inout BinaryReader) throws -> Element
    ) {
        self.columnTypes = columnTypes
        self.writeColumns = writeColumns
        self.readColumns = readColumns
        self.encodeRow = encode
        self.decodeRow = decode
    }

    /// A builder for blocks of this element type.
    /// - Throws: ``MemoryError`` when memory runs out.
    public func makeBuilder(pool: BufferPool = .shared) throws(MemoryError) -> BlockBuilder {
        try BlockBuilder(schema: columnTypes, pool: pool)
    }

    /// Appends one element as a row; when encoding it throws, the builder is left as it was.
    @inlinable
    public func append(_ element: Element, to builder: inout BlockBuilder) throws {
        try builder.appendRow { try writeColumns(element, &$0) }
    }

    /// Writes `element` into the builder's next columns without closing the row (for rows that carry more
    /// columns than the element's own, e.g. a hash before a spilled key and value).
    /// - Throws: what encoding the element throws.
    public func write(_ element: Element, to builder: inout BlockBuilder) throws {
        try writeColumns(element, &builder)
    }

    /// Reads an element from the reader's next columns (the counterpart of ``write(_:to:)``).
    /// - Throws: ``FormatError`` when a value cannot be decoded.
    public func read(from row: inout RowReader) throws -> Element {
        try readColumns(&row)
    }

    /// Encodes `elements` into one sealed block.
    /// - Throws: ``FormatError`` (`tooLarge`) or ``MemoryError``.
    public func encode(_ elements: some Sequence<Element>, pool: BufferPool = .shared) throws -> Block {
        var builder = try makeBuilder(pool: pool)
        for element in elements { try append(element, to: &builder) }
        return try builder.seal()
    }

    /// Checks that `block` has exactly this codec's columns.
    /// - Throws: ``FormatError`` (`schemaMismatch`) naming both schemas.
    public func checkSchema(of block: Block) throws(FormatError) {
        var matches = block.columnCount == columnTypes.count
        if matches {
            for (i, type) in columnTypes.enumerated() where block.columnType(at: i) != type {
                matches = false
            }
        }
        guard matches else {
            throw FormatError(.schemaMismatch, at: 8,
                "block columns \(block.schema) do not match \(Element.self)'s columns \(columnTypes)")
        }
    }

    /// The element in row `row` of a block whose schema was checked.
    public func element(at row: Int, of block: Block) throws -> Element {
        var reader = RowReader(block: block, row: row)
        return try readColumns(&reader)
    }

    /// Every element of `block`, in row order.
    /// - Throws: ``FormatError`` when the schema does not match or a row cannot be decoded.
    public func decode(_ block: Block) throws -> [Element] {
        try checkSchema(of: block)
        var result: [Element] = []
        result.reserveCapacity(block.rowCount)
        for row in 0..<block.rowCount {
            result.append(try element(at: row, of: block))
        }
        return result
    }

    /// Writes `element` in the compact row encoding.
    /// - Throws: what encoding the element throws.
    public func encode(_ element: Element, to writer: inout BinaryWriter) throws { try encodeRow(element, &writer) }

    /// Reads an element written by ``encode(_:to:)``.
    public func decode(from reader: inout BinaryReader) throws -> Element { try decodeRow(&reader) }
}

/// Makers of ``ElementCodec``s.
public enum ElementCodecs {
    /// The codec of a ``BlockSerializable`` type.
    public static func standard<T: BlockSerializable>(_ type: T.Type) -> ElementCodec<T> {
        ElementCodec(
            columnTypes: T.columnTypes,
            writeColumns: { value, builder in try T.writeColumns(value, to: &builder) },
            readColumns: { row in try T.readColumns(from: &row) },
            encode: { value, writer in try value.encode(to: &writer) },
            decode: { reader in try T.decode(from: &reader) })
    }

    /// The codec of a `Codable` type that is not ``BlockSerializable``: its compact row encoding
    /// (``CompactEncoder``) in one `binary` column. Slower and larger than a column mapping, and needs no
    /// declaration: what Spark's Java serialization of any `Serializable` object is to a Spark program.
    public static func codable<T: Codable>(_: T.Type) -> ElementCodec<T> {
        binaryColumn(
            CompactCoding<T>(
                encode: { value, writer in try CompactEncoder.encode(value, to: &writer) },
                decode: { reader in try CompactDecoder.decode(T.self, from: &reader) }))
    }

    /// A codec storing each element's row encoding by `coding` in one `binary` column. (Its closures are made
    /// where `T` has no protocol requirement, so they capture no conformance of it.)
    private static func binaryColumn<T>(_ coding: CompactCoding<T>) -> ElementCodec<T> {
        ElementCodec(
            columnTypes: [ColumnType(.binary)],
            writeColumns: { value, builder in try builder.writeEncoded { try coding.encode(value, to: &$0) } },
            readColumns: { row in try row.readEncoded { try coding.decode(from: &$0) } },
            encode: { value, writer in try coding.encode(value, to: &writer) },
            decode: { reader in try coding.decode(from: &reader) })
    }

    /// The codec of a tuple of ``BlockSerializable`` types: the components' columns side by side, the
    /// components' row encodings one after the other. Pairs `(K, V)` are the common case.
    public static func tuple<each T: BlockSerializable>(_ types: repeat (each T).Type) -> ElementCodec<(repeat each T)> {
        var columns: [ColumnType] = []
        for type in repeat each types { columns += type.columnTypes }
        return ElementCodec(
            columnTypes: columns,
            writeColumns: { value, builder in
                for component in repeat each value { try writeComponent(component, &builder) }
            },
            readColumns: { row in (repeat try (each T).readColumns(from: &row)) },
            encode: { value, writer in
                for component in repeat each value { try component.encode(to: &writer) }
            },
            decode: { reader in (repeat try (each T).decode(from: &reader)) })
    }

    /// The codec of pairs whose components have codecs `first` and `second`: their columns side by side.
    public static func pair<A, B>(_ first: ElementCodec<A>, _ second: ElementCodec<B>) -> ElementCodec<(A, B)> {
        ElementCodec<(A, B)>(
            columnTypes: first.columnTypes + second.columnTypes,
            writeColumns: { value, builder in
                try first.writeColumns(value.0, &builder)
                try second.writeColumns(value.1, &builder)
            },
            readColumns: { row in (try first.readColumns(&row), try second.readColumns(&row)) },
            encode: { value, writer in
                try first.encodeRow(value.0, &writer)
                try second.encodeRow(value.1, &writer)
            },
            decode: { reader in (try first.decodeRow(&reader), try second.decodeRow(&reader)) })
    }

    /// The codec of arrays whose elements have codec `element`: one `binary` column holding a varint count
    /// and the elements' row encodings (for element types found at run time, e.g. tuples).
    public static func array<E>(_ element: ElementCodec<E>) -> ElementCodec<[E]> {
        @Sendable func encode(_ value: [E], _ writer: inout BinaryWriter) throws {
            writer.writeVarUInt(UInt64(value.count))
            for e in value { try element.encodeRow(e, &writer) }
        }
        @Sendable func decode(_ reader: inout BinaryReader) throws -> [E] {
            let n = try reader.readCount(for: "an array of \(E.self)")
            var result: [E] = []
            result.reserveCapacity(n)
            for _ in 0..<n { result.append(try element.decodeRow(&reader)) }
            return result
        }
        return ElementCodec<[E]>(
            columnTypes: [ColumnType(.binary)],
            writeColumns: { value, builder in try builder.writeEncoded { try encode(value, &$0) } },
            readColumns: { row in try row.readEncoded(decode) },
            encode: encode, decode: decode)
    }

    private static func writeComponent<U: BlockSerializable>(_ value: U, _ builder: inout BlockBuilder) throws {
        try U.writeColumns(value, to: &builder)
    }
}

/// The compact row encoding of a `Codable` type, as a value the codec's closures share.
// @unchecked: the closures capture nothing but T's metatype and its Codable conformance, immutable type metadata
// that any thread may use; Swift cannot know that of a type that is not SendableMetatype.
private struct CompactCoding<T>: @unchecked Sendable {
    let encode: (T, inout BinaryWriter) throws -> Void
    let decode: (inout BinaryReader) throws -> T

    func encode(_ value: T, to writer: inout BinaryWriter) throws { try encode(value, &writer) }
    func decode(from reader: inout BinaryReader) throws -> T { try decode(&reader) }
}
