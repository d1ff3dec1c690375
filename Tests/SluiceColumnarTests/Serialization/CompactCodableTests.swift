import SluiceTesting
import Testing

@testable import SluiceColumnar

/// Optionals kept by hand in an unkeyed container, the way many hand-written `Codable` types do: `encodeNil()`
/// for nil, and `decodeNil()` asked before each value.
struct HandWrittenOptionals: Codable, Equatable {
    var ints: [Int?]
    var strings: [String?]
    var flags: [Bool?]

    init(ints: [Int?], strings: [String?], flags: [Bool?]) {
        self.ints = ints
        self.strings = strings
        self.flags = flags
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(ints.count)
        try c.encode(strings.count)
        try c.encode(flags.count)
        for x in ints { if let x { try c.encode(x) } else { try c.encodeNil() } }
        for x in strings { if let x { try c.encode(x) } else { try c.encodeNil() } }
        for x in flags { if let x { try c.encode(x) } else { try c.encodeNil() } }
    }

    init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        let (ni, ns, nf) = (try c.decode(Int.self), try c.decode(Int.self), try c.decode(Int.self))
        ints = try (0..<ni).map { _ in try c.decodeNil() ? nil : try c.decode(Int.self) }
        strings = try (0..<ns).map { _ in try c.decodeNil() ? nil : try c.decode(String.self) }
        flags = try (0..<nf).map { _ in try c.decodeNil() ? nil : try c.decode(Bool.self) }
    }
}

/// A type heavy in optionals of every shape, for random round trips.
struct OptionalHeavy: Codable, BlockSerializable, Equatable {
    struct Inner: Codable, Equatable {
        var a: Int?
        var b: String?
        var c: [Double?]?
    }
    var id: Int
    var name: String?
    var score: Double?
    var flag: Bool?
    var small: Int8?
    var big: UInt64?
    var list: [Int?]
    var nested: [[Int?]?]?
    var map: [String: Int?]
    var inner: Inner?
    var inners: [Inner?]
    var hand: HandWrittenOptionals?
    var doubleOptional: Int??
}

func randomOptionalHeavy(_ g: inout SeededGenerator) -> OptionalHeavy {
    func maybe<T>(_ make: () -> T) -> T? { Bool.random(using: &g) ? make() : nil }
    func smallInt() -> Int { [0, 1, -1, Int.max, Int.min, Int.random(in: -1_000...1_000, using: &g)].randomElement(using: &g)! }
    func text() -> String { ["", "0", "\u{0}", "日本", "word"].randomElement(using: &g)! }
    func inner() -> OptionalHeavy.Inner {
        .init(a: maybe(smallInt), b: maybe(text), c: maybe { (0..<Int.random(in: 0...3, using: &g)).map { _ in maybe { 0.0 } } })
    }
    let count = Int.random(in: 0...5, using: &g)
    return OptionalHeavy(
        id: smallInt(), name: maybe(text), score: maybe { [0.0, -0.0, 1.5].randomElement(using: &g)! },
        flag: maybe { Bool.random(using: &g) }, small: maybe { Int8.random(in: .min ... .max, using: &g) },
        big: maybe { [0, UInt64.max].randomElement(using: &g)! }, list: (0..<count).map { _ in maybe(smallInt) },
        nested: maybe { (0..<count).map { _ in maybe { [maybe(smallInt), 0] } } },
        map: Dictionary(uniqueKeysWithValues: (0..<count).map { ("k\($0)", maybe(smallInt)) }),
        inner: maybe(inner), inners: (0..<count).map { _ in maybe(inner) },
        hand: maybe {
            HandWrittenOptionals(
                ints: (0..<count).map { _ in maybe { [0, 7].randomElement(using: &g)! } },
                strings: (0..<count).map { _ in maybe { ["", "x"].randomElement(using: &g)! } },
                flags: (0..<count).map { _ in maybe { Bool.random(using: &g) } })
        },
        doubleOptional: [.none, .some(.none), .some(.some(0))].randomElement(using: &g)!)
}

func compactBytes<T: Encodable>(_ value: T) throws -> [UInt8] {
    var writer = try BinaryWriter()
    try CompactEncoder.encode(value, to: &writer)
    return writer.buffer.bytes
}

func compactDecode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
    try bytes.withUnsafeBytes { raw in
        try BinaryReader.withReader(raw) { reader in try CompactDecoder.decode(T.self, from: &reader) }
    }
}

@Suite struct CompactCodableTests {
    /// A value written next to a nil in an unkeyed container reads back as the value: 0, "" and false begin
    /// with a 0 byte, which `decodeNil()` took for nil before every element carried a presence tag.
    @Test func anUnkeyedValueIsNeverReadAsNil() throws {
        let value = HandWrittenOptionals(ints: [0, nil, 7, nil], strings: ["", nil, "x"], flags: [false, nil, true])
        #expect(try compactDecode(HandWrittenOptionals.self, try compactBytes(value)) == value)
    }

    @Test func optionalHeavyValuesRoundTripOnRandomInputs() throws {
        var g = SeededGenerator(seed: 18)
        for _ in 0..<2_000 {
            let value = randomOptionalHeavy(&g)
            #expect(try roundTripRow(value) == value)
        }
        let values = (0..<300).map { _ in randomOptionalHeavy(&g) }
        #expect(try roundTripBlock(values) == values)
    }

    /// Decoding errors say where in the value the problem is.
    @Test func decodingErrorsCarryTheirCodingPath() throws {
        struct Written: Codable { var items: [Item]; struct Item: Codable { var x: Int?; var name: String } }
        struct Read: Codable { var items: [Item]; struct Item: Codable { var x: Int; var name: String } }
        func path(_ error: any Error) -> [String] {
            switch error as? DecodingError {
            case .keyNotFound(let key, let context)?: return context.codingPath.map(\.stringValue) + [key.stringValue]
            case .valueNotFound(_, let context)?, .dataCorrupted(let context)?, .typeMismatch(_, let context)?:
                return context.codingPath.map(\.stringValue)
            default: return ["not a DecodingError: \(error)"]
            }
        }
        let missing = try compactBytes(Written(items: [.init(x: 1, name: "a"), .init(x: nil, name: "b")]))
        #expect(throws: DecodingError.self) { try compactDecode(Read.self, missing) }
        do { _ = try compactDecode(Read.self, missing) } catch { #expect(path(error) == ["items", "Index 1", "x"]) }

        // A byte that is not UTF-8 inside the second item's name: the path, and the offset underneath.
        var bad = try compactBytes(Written(items: [.init(x: 1, name: "aa"), .init(x: 2, name: "zz")]))
        let at = try #require(bad.lastIndex(of: UInt8(ascii: "z")))
        bad[at] = 0xFF
        do {
            _ = try compactDecode(Written.self, bad)
            Issue.record("a name with a byte that is not UTF-8 was decoded")
        } catch {
            #expect(path(error) == ["items", "Index 1", "name"], "\(error)")
            guard case .dataCorrupted(let context)? = error as? DecodingError else { return }
            #expect(context.underlyingError is FormatError)
        }
    }
}
