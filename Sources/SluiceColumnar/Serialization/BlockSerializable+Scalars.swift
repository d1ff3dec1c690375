// Column fast paths for the standard scalars: one column each, values stored in place.

extension Int: BlockSerializable {
    public static var columnTypes: [ColumnType] { [ColumnType(.int64)] }
    @inlinable public static func writeColumns(_ value: Int, to builder: inout BlockBuilder) throws { builder.write(Int64(value)) }
    public static func readColumns(from row: inout RowReader) throws -> Int { Int(row.read(Int64.self)) }
    public func encode(to writer: inout BinaryWriter) { writer.writeVarInt(Int64(self)) }
    public static func decode(from reader: inout BinaryReader) throws -> Int { try reader.readVarInt(as: Int.self) }
}

extension Int64: BlockSerializable {
    public static var columnTypes: [ColumnType] { [ColumnType(.int64)] }
    @inlinable public static func writeColumns(_ value: Int64, to builder: inout BlockBuilder) throws { builder.write(value) }
    public static func readColumns(from row: inout RowReader) throws -> Int64 { row.read(Int64.self) }
    public func encode(to writer: inout BinaryWriter) { writer.writeVarInt(self) }
    public static func decode(from reader: inout BinaryReader) throws -> Int64 { try reader.readVarInt() }
}

extension Int32: BlockSerializable {
    public static var columnTypes: [ColumnType] { [ColumnType(.int32)] }
    @inlinable public static func writeColumns(_ value: Int32, to builder: inout BlockBuilder) throws { builder.write(value) }
    public static func readColumns(from row: inout RowReader) throws -> Int32 { row.read(Int32.self) }
    public func encode(to writer: inout BinaryWriter) { writer.writeVarInt(Int64(self)) }
    public static func decode(from reader: inout BinaryReader) throws -> Int32 { try reader.readVarInt(as: Int32.self) }
}

extension UInt64: BlockSerializable {
    public static var columnTypes: [ColumnType] { [ColumnType(.uint64)] }
    @inlinable public static func writeColumns(_ value: UInt64, to builder: inout BlockBuilder) throws { builder.write(value) }
    public static func readColumns(from row: inout RowReader) throws -> UInt64 { row.read(UInt64.self) }
    public func encode(to writer: inout BinaryWriter) { writer.writeVarUInt(self) }
    public static func decode(from reader: inout BinaryReader) throws -> UInt64 { try reader.readVarUInt() }
}

extension UInt: BlockSerializable {
    public static var columnTypes: [ColumnType] { [ColumnType(.uint64)] }
    @inlinable public static func writeColumns(_ value: UInt, to builder: inout BlockBuilder) throws { builder.write(UInt64(value)) }
    public static func readColumns(from row: inout RowReader) throws -> UInt { UInt(row.read(UInt64.self)) }
    public func encode(to writer: inout BinaryWriter) { writer.writeVarUInt(UInt64(self)) }
    public static func decode(from reader: inout BinaryReader) throws -> UInt { try reader.readVarInt(as: UInt.self) }
}

extension UInt8: BlockSerializable {
    public static var columnTypes: [ColumnType] { [ColumnType(.int32)] }
    @inlinable public static func writeColumns(_ value: UInt8, to builder: inout BlockBuilder) throws { builder.write(Int32(value)) }
    public static func readColumns(from row: inout RowReader) throws -> UInt8 {
        let (at, column) = (row.row, row.column)
        let v = row.read(Int32.self)
        guard let b = UInt8(exactly: v) else {
            throw FormatError(.invalidValue, at: 0, "row \(at), column \(column): \(v) does not fit UInt8")
        }
        return b
    }
    public func encode(to writer: inout BinaryWriter) { writer.writeByte(self) }
    public static func decode(from reader: inout BinaryReader) throws -> UInt8 { try reader.readByte() }
}

extension Double: BlockSerializable {
    public static var columnTypes: [ColumnType] { [ColumnType(.double)] }
    @inlinable public static func writeColumns(_ value: Double, to builder: inout BlockBuilder) throws { builder.write(value) }
    public static func readColumns(from row: inout RowReader) throws -> Double { row.read(Double.self) }
    public func encode(to writer: inout BinaryWriter) { writer.writeDouble(self) }
    public static func decode(from reader: inout BinaryReader) throws -> Double { try reader.readDouble() }
}

extension Float: BlockSerializable {
    public static var columnTypes: [ColumnType] { [ColumnType(.float)] }
    @inlinable public static func writeColumns(_ value: Float, to builder: inout BlockBuilder) throws { builder.write(value) }
    public static func readColumns(from row: inout RowReader) throws -> Float { row.read(Float.self) }
    public func encode(to writer: inout BinaryWriter) { writer.writeFloat(self) }
    public static func decode(from reader: inout BinaryReader) throws -> Float { try reader.readFloat() }
}

extension Bool: BlockSerializable {
    public static var columnTypes: [ColumnType] { [ColumnType(.bool)] }
    @inlinable public static func writeColumns(_ value: Bool, to builder: inout BlockBuilder) throws { builder.write(value) }
    public static func readColumns(from row: inout RowReader) throws -> Bool { row.readBool() }
    public func encode(to writer: inout BinaryWriter) { writer.writeBool(self) }
    public static func decode(from reader: inout BinaryReader) throws -> Bool { try reader.readBool() }
}

extension String: BlockSerializable {
    public static var columnTypes: [ColumnType] { [ColumnType(.string)] }
    @inlinable public static func writeColumns(_ value: String, to builder: inout BlockBuilder) throws { builder.write(string: value) }
    public static func readColumns(from row: inout RowReader) throws -> String { row.readString() }
    public func encode(to writer: inout BinaryWriter) { writer.writeString(self) }
    public static func decode(from reader: inout BinaryReader) throws -> String { try reader.readString() }
}
