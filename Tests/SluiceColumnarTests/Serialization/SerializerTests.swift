import Testing
@testable import SluiceColumnar
import SluiceTesting

func roundTripRow<T: BlockSerializable & Equatable>(_ value: T) throws -> T {
    var writer = try BinaryWriter()
    try value.encode(to: &writer)
    return try writer.buffer.withUnsafeBytes { raw in
        try BinaryReader.withReader(raw) { reader in
            let back = try T.decode(from: &reader)
            #expect(reader.isAtEnd)
            return back
        }
    }
}

func roundTripBlock<T: BlockSerializable & Equatable>(_ values: [T]) throws -> [T] {
    let codec = ElementCodecs.standard(T.self)
    let block = try codec.encode(values)
    #expect(block.schema == T.columnTypes)
    return try codec.decode(Block(validating: try ArenaBuffer(copying: block.withUnsafeBytes { Array($0) })))
}

struct Reading: Codable, BlockSerializable, Equatable {
    enum Unit: String, Codable { case celsius, kelvin }
    struct Place: Codable, Equatable { var lat: Double; var lon: Double }
    var sensor: String
    var values: [Double]
    var unit: Unit
    var place: Place?
    var labels: [String: Int]
    var byId: [Int: String]
    var note: String?
    var flag: Bool
    var small: Int8
}

@Suite struct SerializerTests {
    @Test func varintsAndZigZagAtTheBoundaries() throws {
        let values: [Int64] = [0, 1, -1, 63, -64, 64, -65, 127, 128, 300, .max, .min, Int64(Int32.max), Int64(Int32.min)]
        for v in values { #expect(try roundTripRow(v) == v) }
        var writer = try BinaryWriter()
        writer.writeVarInt(-1)
        writer.writeVarUInt(300)
        #expect(writer.buffer.bytes == [0x01, 0xAC, 0x02])
        for u: UInt64 in [0, 127, 128, .max] { #expect(try roundTripRow(u) == u) }
    }

    @Test func scalarsRoundTripThroughRowsAndColumns() throws {
        var g = SeededGenerator(seed: 11)
        let ints = (0..<500).map { _ in Int.random(in: .min ... .max, using: &g) }
        #expect(try roundTripBlock(ints) == ints)
        #expect(try ints.allSatisfy { try roundTripRow($0) == $0 })
        let strings = (0..<500).map { "s\($0)-é🙂" }
        #expect(try roundTripBlock(strings) == strings)
        let doubles = (0..<100).map { Double($0) / 7 } + [.infinity, -0.0, .leastNonzeroMagnitude]
        #expect(try roundTripBlock(doubles) == doubles)
        #expect(try roundTripBlock([Float(1.5), -2]) == [1.5, -2])
        #expect(try roundTripBlock([true, false, true]) == [true, false, true])
        #expect(try roundTripBlock([Int32.min, 0, .max]) == [.min, 0, .max])
        #expect(try roundTripBlock([UInt8(0), 255]) == [0, 255])
        #expect(try roundTripBlock([UInt.max, 0]) == [.max, 0])
    }

    @Test func optionalsUseNullableColumnsAndNestedOptionalsStayDistinct() throws {
        #expect(Int?.columnTypes == [ColumnType(.int64, nullable: true)])
        let values: [Int?] = [1, nil, 3, nil]
        #expect(try roundTripBlock(values) == values)
        #expect(Int??.columnTypes == [ColumnType(.binary, nullable: true)])
        let nested: [Int??] = [.some(.some(1)), .some(.none), .none]
        #expect(try roundTripBlock(nested) == nested)
        #expect(try roundTripRow(nested[1]) == nested[1])
        let strings: [String?] = [nil, "", "x"]
        #expect(try roundTripBlock(strings) == strings)
    }

    @Test func arraysAndByteArrays() throws {
        #expect([UInt8].columnTypes == [ColumnType(.binary)])
        let bytes: [[UInt8]] = [[], [0, 1, 2], Array(repeating: 255, count: 1_000)]
        #expect(try roundTripBlock(bytes) == bytes)
        let block = try ElementCodecs.standard([UInt8].self).encode(bytes)
        #expect(block.column(0).bytes(at: 1) == [0, 1, 2], "byte arrays are stored raw")
        let lists: [[String]] = [[], ["a", "b"], ["ü"]]
        #expect(try roundTripBlock(lists) == lists)
        let nested: [[[Int?]]] = [[[1, nil], []], []]
        #expect(try roundTripBlock(nested) == nested)
    }

    @Test func pairsAreAKeyColumnAndAValueColumn() throws {
        let codec = ElementCodecs.tuple(String.self, Int.self)
        #expect(codec.columnTypes == [ColumnType(.string), ColumnType(.int64)])
        var g = SeededGenerator(seed: 3)
        let pairs = (0..<1_000).map { _ in ("w\(Int.random(in: 0..<50, using: &g))", Int.random(in: -5...5, using: &g)) }
        let block = try codec.encode(pairs)
        let back = try codec.decode(block)
        #expect(back.map(\.0) == pairs.map(\.0))
        #expect(back.map(\.1) == pairs.map(\.1))
        #expect(block.column(0).string(at: 5) == pairs[5].0)

        let triple = ElementCodecs.tuple(Int?.self, Double.self, [UInt8].self)
        let rows: [(Int?, Double, [UInt8])] = [(nil, 1.5, [1]), (4, -2, [])]
        let decoded = try triple.decode(triple.encode(rows))
        #expect(decoded.map(\.0) == [nil, 4])
        #expect(decoded.map(\.2) == [[1], []])

        var writer = try BinaryWriter()
        try codec.encode(("k", 9), to: &writer)
        let one = try writer.buffer.withUnsafeBytes { raw in try BinaryReader.withReader(raw) { try codec.decode(from: &$0) } }
        #expect(one == ("k", 9))
    }

    @Test func codableTypesTakeTheSlowPath() throws {
        let r = Reading(
            sensor: "t-1", values: [1, 2.5], unit: .kelvin, place: .init(lat: 1, lon: -2),
            labels: ["a": 1, "b": 2], byId: [7: "seven"], note: nil, flag: true, small: -3)
        #expect(try roundTripRow(r) == r)
        var other = r
        other.place = nil
        other.note = "n"
        other.labels = [:]
        #expect(try roundTripBlock([r, other]) == [r, other])
        #expect(Reading.columnTypes == [ColumnType(.binary)])
    }

    @Test func schemaMismatchIsAClearError() throws {
        let block = try ElementCodecs.standard(Int.self).encode([1, 2])
        let error = #expect(throws: FormatError.self) { try ElementCodecs.standard(String.self).decode(block) }
        #expect(error?.code == .schemaMismatch)
        #expect(error?.message.contains("[int64]") == true)
        #expect(error?.message.contains("[string]") == true)
    }

    @Test func lyingLengthsNeverAllocate() throws {
        // A count of 2^62 elements with 3 bytes behind it is refused before anything is reserved.
        var writer = try BinaryWriter()
        writer.writeVarUInt(1 << 62)
        [UInt8]([1, 2, 3]).withUnsafeBytes { writer.writeRaw($0) }
        let error = #expect(throws: FormatError.self) {
            try writer.buffer.withUnsafeBytes { raw in try BinaryReader.withReader(raw) { try [Int].decode(from: &$0) } }
        }
        #expect(error?.code == .inconsistent)
        #expect(error?.offset == 0)
        let bad: [UInt8] = [2, 0xC3, 0x28]  // a length-2 string that is not UTF-8
        let utf8 = #expect(throws: FormatError.self) {
            try bad.withUnsafeBytes { raw in try BinaryReader.withReader(raw, baseOffset: 100) { try String.decode(from: &$0) } }
        }
        #expect(utf8?.offset == 100)
        let long: [UInt8] = Array(repeating: 0xFF, count: 11)
        #expect(throws: FormatError.self) {
            try long.withUnsafeBytes { raw in try BinaryReader.withReader(raw) { try $0.readVarUInt() } }
        }
    }
}

/// A user type whose `Encodable` conformance refuses some values.
struct Picky: Codable, BlockSerializable, Equatable {
    struct Refused: Error, Equatable { let value: Int }
    var value: Int

    init(_ value: Int) { self.value = value }

    func encode(to encoder: any Encoder) throws {
        if value < 0 { throw Refused(value: value) }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(value, forKey: .value)
    }
}

@Suite struct ThrowingEncodeTests {
    @Test func aUserEncodeErrorReachesTheCallerInsteadOfTrapping() throws {
        #expect(throws: Picky.Refused(value: -1)) { try ElementCodecs.standard(Picky.self).encode([Picky(1), Picky(-1)]) }
        var writer = try BinaryWriter()
        #expect(throws: Picky.Refused(value: -2)) { try [Picky(3), Picky(-2)].encode(to: &writer) }
    }

    @Test func aRowThatFailsHalfwayIsRolledBackAndLaterRowsAreIntact() throws {
        // The pair's key column is written before the value's encoding throws: that half row must go.
        let codec = ElementCodecs.tuple(String?.self, Bool.self, Picky.self)
        var builder = try codec.makeBuilder()
        var accepted: [(String?, Bool, Picky)] = []
        var g = SeededGenerator(seed: 12)
        for i in 0..<500 {
            let row: (String?, Bool, Picky) = (
                i % 3 == 0 ? nil : "k\(i)", Bool.random(using: &g), Picky(Int.random(in: -3...10, using: &g)))
            do {
                try codec.append(row, to: &builder)
                accepted.append(row)
            } catch is Picky.Refused {
                #expect(builder.rowCount == accepted.count)
            }
        }
        #expect(accepted.count < 500 && accepted.count > 300)
        let back = try codec.decode(Block(validating: builder.seal().buffer))
        #expect(back.map(\.0) == accepted.map(\.0))
        #expect(back.map(\.1) == accepted.map(\.1))
        #expect(back.map(\.2) == accepted.map(\.2))
    }
}
