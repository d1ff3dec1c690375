import Testing
@testable import SluiceColumnar

struct NotStorable: Sendable { let x: Int }

/// A user's state as a Spark program would have it: a plain Codable struct, nothing declared.
struct PlainState: Codable, Sendable, Equatable {
    var counter: Int
    var expireCounter: Int
    var label: String?
    var history: [Double]
}

@Suite struct CodecLookupTests {
    func roundTrip<T>(_ codec: ElementCodec<T>, _ values: [T]) throws -> [T] {
        let block = try codec.encode(values)
        let decoded = try codec.decode(try Block(validating: block.buffer))
        var writer = try BinaryWriter()
        for v in values { try codec.encode(v, to: &writer) }
        let rows = try writer.buffer.withUnsafeBytes { bytes in
            try BinaryReader.withReader(bytes) { reader in try values.map { _ in try codec.decode(from: &reader) } }
        }
        #expect(rows.count == decoded.count)
        return decoded
    }

    @Test func serializableTypesAreFoundAtRunTime() throws {
        #expect(ElementCodecs.lookup(Int.self)?.columnTypes == [ColumnType(.int64)])
        #expect(ElementCodecs.lookup(String?.self)?.columnTypes == [ColumnType(.string, nullable: true)])
        #expect(ElementCodecs.lookup([Double].self) != nil)
        #expect(ElementCodecs.lookup(NotStorable.self) == nil)
        #expect(ElementCodecs.lookup((Int, NotStorable).self) == nil)
    }

    @Test func codableTypesNeedNoDeclaration() throws {
        let states = [
            PlainState(counter: 1, expireCounter: 0, label: nil, history: []),
            PlainState(counter: -7, expireCounter: 2, label: "caf\u{E9}", history: [1.5, -0.0, .infinity]),
        ]
        let codec = try #require(ElementCodecs.lookup(PlainState.self))
        #expect(codec.columnTypes == [ColumnType(.binary)])
        #expect(try roundTrip(codec, states) == states)
        // In optionals, arrays and tuples (a keyed state, a window of pairs) too.
        #expect(try roundTrip(try #require(ElementCodecs.lookup(PlainState?.self)), [nil, states[1]]) == [nil, states[1]])
        #expect(try roundTrip(try #require(ElementCodecs.lookup([PlainState].self)), [states, []]) == [states, []])
        let pairs = [("a", states[0]), ("b", states[1])]
        let pairCodec = try #require(ElementCodecs.lookup((String, PlainState).self))
        #expect(pairCodec.columnTypes == [ColumnType(.string), ColumnType(.binary)])
        let back = try roundTrip(pairCodec, pairs)
        #expect(back.map(\.0) == ["a", "b"] && back.map(\.1) == states)
        let sampled = try #require(ElementCodecs.lookup((String, PlainState).self, sample: pairs[0]))
        #expect(try roundTrip(sampled, pairs).map(\.1) == states)
        // Corrupt bytes: an error, never a crash.
        var writer = try BinaryWriter()
        try codec.encode(states[1], to: &writer)
        let bytes = writer.buffer.withUnsafeBytes { Array($0) }
        for cut in 0..<bytes.count {
            _ = bytes.prefix(cut).withUnsafeBytes { prefix in
                #expect(throws: (any Error).self) { try BinaryReader.withReader(prefix) { try codec.decode(from: &$0) } }
            }
        }
    }

    @Test func tuplesAreFoundFromTheirTypeAlone() throws {
        let pairs = [(1, "one"), (-2, ""), (3, "three 日本")]
        let codec = try #require(ElementCodecs.lookup((Int, String).self))
        #expect(codec.columnTypes == [ColumnType(.int64), ColumnType(.string)])
        let back = try roundTrip(codec, pairs)
        #expect(back.map(\.0) == pairs.map(\.0) && back.map(\.1) == pairs.map(\.1))

        // Padding between components (Bool then Int) and labels.
        typealias Row = (flag: Bool, n: Int, name: String, tag: Int32, score: Double?)
        let rows: [Row] = [(true, 1, "a", 7, nil), (false, -2, "bb", -1, 2.5)]
        let rowCodec = try #require(ElementCodecs.lookup(Row.self))
        let rowsBack = try roundTrip(rowCodec, rows)
        #expect(rowsBack.map(\.n) == [1, -2] && rowsBack.map(\.name) == ["a", "bb"])
        #expect(rowsBack.map(\.flag) == [true, false] && rowsBack.map(\.tag) == [7, -1])
        #expect(rowsBack.map(\.score) == [nil, 2.5])
        #expect(ElementCodecs.lookup((String, [Int]).self) != nil)
        #expect(ElementCodecs.lookup(((Int, Int), String).self) == nil, "a nested tuple is not BlockSerializable")
    }

    @Test func tuplesAreFoundThroughASample() throws {
        let pairs = [(1, "one"), (-2, ""), (3, "three 日本")]
        let codec = try #require(ElementCodecs.lookup((Int, String).self, sample: pairs[0]))
        #expect(codec.columnTypes == [ColumnType(.int64), ColumnType(.string)])
        let back = try roundTrip(codec, pairs)
        #expect(back.map(\.0) == pairs.map(\.0) && back.map(\.1) == pairs.map(\.1))

        typealias Row = (name: String, flag: Bool, score: Double?, tag: Int32, n: Int)
        let rows: [Row] = [("a", true, nil, 7, 1), ("bb", false, 2.5, -1, 2)]
        let rowCodec = try #require(ElementCodecs.lookup(Row.self, sample: rows[0]))
        let rowsBack = try roundTrip(rowCodec, rows)
        #expect(rowsBack.map(\.name) == ["a", "bb"])
        #expect(rowsBack.map(\.score) == [nil, 2.5])
        #expect(rowsBack.map(\.tag) == [7, -1])
        #expect(rowsBack.map(\.n) == [1, 2])
        #expect(ElementCodecs.lookup((Int, NotStorable).self, sample: (1, NotStorable(x: 1))) == nil)
        #expect(ElementCodecs.lookup(NotStorable.self, sample: NotStorable(x: 1)) == nil)
    }

    @Test func pairAndArrayCodecsCompose() throws {
        let pair = ElementCodecs.pair(ElementCodecs.standard(String.self), ElementCodecs.standard([Int].self))
        let values = [("x", [1, 2]), ("", [])]
        let back = try roundTrip(pair, values)
        #expect(back.map(\.0) == ["x", ""] && back.map(\.1) == [[1, 2], []])

        let tupleCodec = try #require(ElementCodecs.lookup((Int, Bool).self, sample: (0, false)))
        let arrays = ElementCodecs.array(tupleCodec)
        let groups = [[(1, true), (2, false)], [], [(3, true)]]
        let groupsBack = try roundTrip(arrays, groups)
        #expect(groupsBack.map { $0.map(\.0) } == [[1, 2], [], [3]])
        #expect(groupsBack.map { $0.map(\.1) } == [[true, false], [], [true]])
    }

    @Test func aDecodingFailureInsideATupleLeavesNothingHalfMade() throws {
        let codec = try #require(ElementCodecs.lookup((String, [String]).self, sample: ("a", ["b"])))
        var writer = try BinaryWriter()
        writer.writeString("first")
        writer.writeVarUInt(3)  // three strings promised, one given
        writer.writeString("only")
        let error = writer.buffer.withUnsafeBytes { bytes in
            #expect(throws: FormatError.self) {
                try BinaryReader.withReader(bytes) { reader in try codec.decode(from: &reader) }
            }
        }
        #expect(error?.code == .truncated || error?.code == .inconsistent)
    }
}
