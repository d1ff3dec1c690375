import Testing
import Sluice

/// What a streaming program sees through `import Sluice` alone: its own types become storable by conforming.
struct Click: Codable, BlockSerializable, Equatable {
    var user: String
    var page: Int
}

/// A type with a hand-written row encoding.
struct Point: BlockSerializable, Equatable {
    var x: Int
    var y: Int

    func encode(to writer: inout BinaryWriter) {
        writer.writeVarInt(Int64(x))
        writer.writeVarInt(Int64(y))
    }

    static func decode(from reader: inout BinaryReader) throws -> Point {
        Point(x: Int(try reader.readVarInt()), y: Int(try reader.readVarInt()))
    }
}

@Suite struct UserTypeTests {
    @Test func userTypesConformWithOnlyImportSluice() throws {
        #expect(Click.columnTypes == [ColumnType(.binary)])
        #expect(Point.columnCount == 1)
        let p = Point(x: -3, y: 1 << 40)
        var bytes: [UInt8] = []
        // The encoding of a point is two zig-zag varints.
        bytes = try encodeToBytes(p)
        #expect(bytes.count == 1 + 6)
        #expect(try decodeFromBytes(bytes, as: Point.self) == p)
        let c = Click(user: "ann", page: 4)
        #expect(try decodeFromBytes(try encodeToBytes(c), as: Click.self) == c)
    }

    @Test func truncatedBytesAreAFormatErrorWithTheOffset() throws {
        let bytes = try encodeToBytes(Click(user: "bob", page: 1))
        let error = #expect(throws: FormatError.self) { _ = try decodeFromBytes(Array(bytes.dropLast()), as: Click.self) }
        #expect(error?.offset ?? -1 >= 0)
    }
}

func encodeToBytes<T: BlockSerializable>(_ value: T) throws -> [UInt8] {
    var writer = try BinaryWriter()
    try value.encode(to: &writer)
    return writer.buffer.withUnsafeBytes { Array($0) }
}

func decodeFromBytes<T: BlockSerializable>(_ bytes: [UInt8], as: T.Type) throws -> T {
    try bytes.withUnsafeBytes { raw in try BinaryReader.withReader(raw) { try T.decode(from: &$0) } }
}
