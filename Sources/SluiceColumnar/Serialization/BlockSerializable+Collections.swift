/// `Optional` of a type whose columns cannot be null: the same columns made nullable, `nil` a null in each.
/// Nested optionals (or wrapped types with nullable columns) go into one nullable `binary` column through the
/// row encoding, where a presence byte (0 = nil, 1 = value) tells them apart.
extension Optional: BlockSerializable where Wrapped: BlockSerializable {
    public static var columnTypes: [ColumnType] {
        if Wrapped.hasNullableColumns { return [ColumnType(.binary, nullable: true)] }
        return Wrapped.columnTypes.map { ColumnType($0.kind, nullable: true) }
    }

    public static var columnCount: Int { Wrapped.hasNullableColumns ? 1 : Wrapped.columnCount }
    public static var hasNullableColumns: Bool { true }

    public static func writeColumns(_ value: Wrapped?, to builder: inout BlockBuilder) throws {
        if Wrapped.hasNullableColumns {
            if value == nil { builder.writeNulls(1) } else { try builder.writeEncoded(value) }
        } else if let value {
            try Wrapped.writeColumns(value, to: &builder)
        } else {
            builder.writeNulls(Wrapped.columnCount)
        }
    }

    public static func readColumns(from row: inout RowReader) throws -> Wrapped? {
        if row.isNextNull() {
            row.skip(columnCount)
            return nil
        }
        if Wrapped.hasNullableColumns { return try row.readEncoded(Wrapped?.self) }
        return try Wrapped.readColumns(from: &row)
    }

    public func encode(to writer: inout BinaryWriter) throws {
        if let value = self {
            writer.writeByte(1)
            try value.encode(to: &writer)
        } else {
            writer.writeByte(0)
        }
    }

    public static func decode(from reader: inout BinaryReader) throws -> Wrapped? {
        let at = reader.offset
        switch try reader.readByte() {
        case 0: return nil
        case 1: return try Wrapped.decode(from: &reader)
        case let tag:
            throw FormatError(.invalidValue, at: reader.baseOffset + at, "optional presence byte is \(tag), not 0 or 1")
        }
    }
}

/// `Array`: one `binary` column holding the row encoding (a varint count, then the elements). `[UInt8]` is
/// stored as its raw bytes, with no count (the column's offsets give the length).
extension Array: BlockSerializable where Element: BlockSerializable {
    public static func writeColumns(_ value: [Element], to builder: inout BlockBuilder) throws {
        // A type check, not `as? [UInt8]`: an empty array of any type casts to [UInt8].
        if Element.self == UInt8.self {
            (value as! [UInt8]).withUnsafeBytes { builder.write(bytes: $0) }  // Safe: Element is UInt8.
        } else {
            try builder.writeEncoded(value)
        }
    }

    public static func readColumns(from row: inout RowReader) throws -> [Element] {
        if Element.self == UInt8.self {
            return row.withBytes { Array<UInt8>($0) } as! [Element]  // Safe: Element is UInt8.
        }
        return try row.readEncoded([Element].self)
    }

    public func encode(to writer: inout BinaryWriter) throws {
        if Element.self == UInt8.self {
            (self as! [UInt8]).withUnsafeBytes { writer.writeBytes($0) }  // Safe: Element is UInt8.
            return
        }
        writer.writeVarUInt(UInt64(count))
        for element in self { try element.encode(to: &writer) }
    }

    public static func decode(from reader: inout BinaryReader) throws -> [Element] {
        if Element.self == UInt8.self {
            return Array<UInt8>(try reader.readBytes()) as! [Element]  // Safe: Element is UInt8.
        }
        // Every element takes at least one byte, so a lying count fails before anything is reserved.
        let n = try reader.readCount(for: "an array of \(Element.self)")
        var result: [Element] = []
        result.reserveCapacity(n)
        for _ in 0..<n { result.append(try Element.decode(from: &reader)) }
        return result
    }
}
