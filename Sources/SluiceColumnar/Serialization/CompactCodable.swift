// Every primitive overload below is mirrored between encoder and decoder; keep them symmetric.

/// Encodes any `Encodable` value in Sluice's compact row encoding. A keyed container is a count of entries,
/// each a key string and a length-prefixed value (length 0 = an explicit nil, an absent optional is left out),
/// so any decode order, `allKeys` and dictionaries work; unkeyed containers are a count and their elements,
/// each after a presence byte (0 = nil, 1 = a value), so `decodeNil()` never mistakes a value for nil; single
/// values carry a presence byte too. Decoding errors carry the coding path of the value that was wrong.
///
/// The slow path for user types (see ``BlockSerializable``): more bytes and time than a column mapping.
public enum CompactEncoder {
    /// Appends `value`'s encoding to `writer`.
    public static func encode<T: Encodable>(_ value: T, to writer: inout BinaryWriter) throws {
        let root = NodeList()
        try value.encode(to: CompactEncoding(root))
        try root.write(to: &writer, asList: false)
    }
}

/// Decodes values written by ``CompactEncoder``.
public enum CompactDecoder {
    /// Reads one `T` from `reader`.
    /// - Throws: ``FormatError`` (truncated or invalid bytes, with the offset) or a `DecodingError`.
    public static func decode<T: Decodable>(_ type: T.Type, from reader: inout BinaryReader) throws -> T {
        let decoder = CompactDecoding(reader)
        defer { reader = decoder.reader }
        return try T(from: decoder)
    }
}

extension BlockSerializable where Self: Codable {
    public func encode(to writer: inout BinaryWriter) throws {
        try CompactEncoder.encode(self, to: &writer)
    }

    public static func decode(from reader: inout BinaryReader) throws -> Self {
        try CompactDecoder.decode(Self.self, from: &reader)
    }
}

enum EncodedNode {
    case int(Int64), uint(UInt64), double(Double), float(Float), bool(Bool), string(String), tag(UInt8)
    case group(NodeList), list(NodeList), keyed(KeyedNodeList)
}

/// The entries of a keyed container, in the order they were encoded; a `nil` group is an explicit nil.
final class KeyedNodeList {
    var entries: [(key: String, value: NodeList?)] = []

    func entry(_ key: some CodingKey) -> NodeList {
        let group = NodeList()
        entries.append((key.stringValue, group))
        return group
    }
}

final class NodeList {
    var nodes: [EncodedNode] = []
    /// As an unkeyed container: its elements (each is a presence tag and, unless nil, a value).
    var elements = 0

    func write(to writer: inout BinaryWriter, asList: Bool) throws {
        if asList { writer.writeVarUInt(UInt64(elements)) }
        for node in nodes {
            switch node {
            case .int(let v): writer.writeVarInt(v)
            case .uint(let v): writer.writeVarUInt(v)
            case .double(let v): writer.writeDouble(v)
            case .float(let v): writer.writeFloat(v)
            case .bool(let v): writer.writeBool(v)
            case .string(let v): writer.writeString(v)
            case .tag(let v): writer.writeByte(v)
            case .group(let l): try l.write(to: &writer, asList: false)
            case .list(let l): try l.write(to: &writer, asList: true)
            case .keyed(let k):
                writer.writeVarUInt(UInt64(k.entries.count))
                for (key, value) in k.entries {
                    writer.writeString(key)
                    guard let value else {
                        writer.writeVarUInt(0)
                        continue
                    }
                    var scratch = try BinaryWriter(pool: writer.buffer.pool)
                    try value.write(to: &scratch, asList: false)
                    writer.writeVarUInt(UInt64(scratch.buffer.count) + 1)
                    try scratch.withWrittenBytes { writer.writeRaw($0) }
                }
            }
        }
    }
}

struct CompactEncoding: Encoder {
    let target: NodeList
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ target: NodeList) { self.target = target }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let keyed = KeyedNodeList()
        target.nodes.append(.keyed(keyed))
        return KeyedEncodingContainer(KeyedEncoding<Key>(target: keyed))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let list = NodeList()
        target.nodes.append(.list(list))
        return UnkeyedEncoding(list: list)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleValueEncoding(target: target) }

    /// Encodes a nested value as one group of nodes.
    static func encodeNested<T: Encodable>(_ value: T, into target: NodeList) throws {
        let group = NodeList()
        try value.encode(to: CompactEncoding(group))
        target.nodes.append(.group(group))
    }
}

struct KeyedEncoding<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let target: KeyedNodeList
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil(forKey key: Key) throws { target.entries.append((key.stringValue, nil)) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try value.encode(to: CompactEncoding(target.entry(key)))
    }
    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }
    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        CompactEncoding(target.entry(key)).container(keyedBy: NestedKey.self)
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        CompactEncoding(target.entry(key)).unkeyedContainer()
    }
    mutating func superEncoder() -> any Encoder { CompactEncoding(target.entry(SuperKey())) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { CompactEncoding(target.entry(key)) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { target.entry(key).nodes.append(.bool(value)) }
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.bool(value)) }
    }
    mutating func encode(_ value: String, forKey key: Key) throws { target.entry(key).nodes.append(.string(value)) }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.string(value)) }
    }
    mutating func encode(_ value: Double, forKey key: Key) throws { target.entry(key).nodes.append(.double(value)) }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.double(value)) }
    }
    mutating func encode(_ value: Float, forKey key: Key) throws { target.entry(key).nodes.append(.float(value)) }
    mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.float(value)) }
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { target.entry(key).nodes.append(.int(Int64(value))) }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.int(Int64(value))) }
    }
    mutating func encode(_ value: Int8, forKey key: Key) throws { target.entry(key).nodes.append(.int(Int64(value))) }
    mutating func encodeIfPresent(_ value: Int8?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.int(Int64(value))) }
    }
    mutating func encode(_ value: Int16, forKey key: Key) throws { target.entry(key).nodes.append(.int(Int64(value))) }
    mutating func encodeIfPresent(_ value: Int16?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.int(Int64(value))) }
    }
    mutating func encode(_ value: Int32, forKey key: Key) throws { target.entry(key).nodes.append(.int(Int64(value))) }
    mutating func encodeIfPresent(_ value: Int32?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.int(Int64(value))) }
    }
    mutating func encode(_ value: Int64, forKey key: Key) throws { target.entry(key).nodes.append(.int(Int64(value))) }
    mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.int(Int64(value))) }
    }
    mutating func encode(_ value: UInt, forKey key: Key) throws { target.entry(key).nodes.append(.uint(UInt64(value))) }
    mutating func encodeIfPresent(_ value: UInt?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.uint(UInt64(value))) }
    }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { target.entry(key).nodes.append(.uint(UInt64(value))) }
    mutating func encodeIfPresent(_ value: UInt8?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.uint(UInt64(value))) }
    }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { target.entry(key).nodes.append(.uint(UInt64(value))) }
    mutating func encodeIfPresent(_ value: UInt16?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.uint(UInt64(value))) }
    }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { target.entry(key).nodes.append(.uint(UInt64(value))) }
    mutating func encodeIfPresent(_ value: UInt32?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.uint(UInt64(value))) }
    }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { target.entry(key).nodes.append(.uint(UInt64(value))) }
    mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws {
        if let value { target.entry(key).nodes.append(.uint(UInt64(value))) }
    }
}

struct SuperKey: CodingKey {
    var stringValue: String { "super" }
    var intValue: Int? { nil }
    init() {}
    init?(stringValue: String) { guard stringValue == "super" else { return nil } }
    init?(intValue: Int) { nil }
}

/// Each element is a presence tag (0 = nil, 1 = a value) and, when present, the value.
struct UnkeyedEncoding: UnkeyedEncodingContainer {
    let list: NodeList
    var codingPath: [any CodingKey] { [] }
    var count: Int { list.elements }

    /// Starts the next element, present or nil.
    private func element(present: Bool) {
        list.elements += 1
        list.nodes.append(.tag(present ? 1 : 0))
    }

    private func element(_ node: EncodedNode) {
        element(present: true)
        list.nodes.append(node)
    }

    mutating func encodeNil() throws { element(present: false) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        element(present: true)
        try CompactEncoding.encodeNested(value, into: list)
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let group = NodeList()
        element(.group(group))
        return CompactEncoding(group).container(keyedBy: NestedKey.self)
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = NodeList()
        element(.list(nested))
        return UnkeyedEncoding(list: nested)
    }
    mutating func superEncoder() -> any Encoder {
        let group = NodeList()
        element(.group(group))
        return CompactEncoding(group)
    }

    mutating func encode(_ value: Bool) throws { element(.bool(value)) }
    mutating func encode(_ value: String) throws { element(.string(value)) }
    mutating func encode(_ value: Double) throws { element(.double(value)) }
    mutating func encode(_ value: Float) throws { element(.float(value)) }
    mutating func encode(_ value: Int) throws { element(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { element(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { element(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { element(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { element(.int(Int64(value))) }
    mutating func encode(_ value: UInt) throws { element(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { element(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt16) throws { element(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt32) throws { element(.uint(UInt64(value))) }
    mutating func encode(_ value: UInt64) throws { element(.uint(UInt64(value))) }
}

/// A single value: `nil` is a 0 byte, a present value a 1 byte and the value, so that `Optional`'s
/// single-value encoding reads back unambiguously.
struct SingleValueEncoding: SingleValueEncodingContainer {
    let target: NodeList
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws { target.nodes.append(.tag(0)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        target.nodes.append(.tag(1))
        try CompactEncoding.encodeNested(value, into: target)
    }

    mutating func encode(_ value: Bool) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.bool(value))
    }
    mutating func encode(_ value: String) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.string(value))
    }
    mutating func encode(_ value: Double) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.double(value))
    }
    mutating func encode(_ value: Float) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.float(value))
    }
    mutating func encode(_ value: Int) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.int(Int64(value)))
    }
    mutating func encode(_ value: Int8) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.int(Int64(value)))
    }
    mutating func encode(_ value: Int16) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.int(Int64(value)))
    }
    mutating func encode(_ value: Int32) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.int(Int64(value)))
    }
    mutating func encode(_ value: Int64) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.int(Int64(value)))
    }
    mutating func encode(_ value: UInt) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.uint(UInt64(value)))
    }
    mutating func encode(_ value: UInt8) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.uint(UInt64(value)))
    }
    mutating func encode(_ value: UInt16) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.uint(UInt64(value)))
    }
    mutating func encode(_ value: UInt32) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.uint(UInt64(value)))
    }
    mutating func encode(_ value: UInt64) throws {
        target.nodes.append(.tag(1))
        target.nodes.append(.uint(UInt64(value)))
    }
}

final class CompactDecoding: Decoder {
    var reader: BinaryReader
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(_ reader: BinaryReader, codingPath: [any CodingKey] = []) {
        self.reader = reader
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        // Key string (>= 1 byte) and length (1 byte) at least per entry.
        let count = try reader.readCount(minimumElementSize: 2, for: "a keyed container")
        var entries: [String: Range<Int>?] = [:]
        var order: [String] = []
        for _ in 0..<count {
            let key = try reader.readString()
            let at = reader.offset
            let length = try reader.readVarUInt()
            if length == 0 {
                entries[key] = .some(nil)
            } else {
                guard length - 1 <= UInt64(reader.remaining) else {
                    throw FormatError(.inconsistent, at: reader.baseOffset + at,
                        "value of key '\(key)' claims \(length - 1) bytes, \(reader.remaining) remain")
                }
                let start = reader.offset
                _ = try reader.readRaw(Int(length - 1))
                entries[key] = start..<reader.offset
            }
            order.append(key)
        }
        return KeyedDecodingContainer(KeyedDecoding<Key>(decoder: self, entries: entries, order: order))
    }

    /// A decoder over one keyed entry's bytes, which it must use up.
    func entryDecoder(_ range: Range<Int>, key: any CodingKey) -> CompactDecoding {
        CompactDecoding(
            BinaryReader(UnsafeRawBufferPointer(rebasing: reader.bytes[range]), baseOffset: reader.baseOffset + range.lowerBound),
            codingPath: codingPath + [key])
    }

    /// Runs `body` on a decoder that reads on from here with `key` added to the coding path (an unkeyed
    /// container's element); a format error inside becomes a `DecodingError` with that path.
    func nested<R>(_ key: any CodingKey, _ body: (CompactDecoding) throws -> R) throws -> R {
        let child = CompactDecoding(reader, codingPath: codingPath + [key])
        defer { reader = child.reader }
        return try withPath(child.codingPath) { try body(child) }
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let count = try reader.readCount(for: "an unkeyed container")
        return UnkeyedDecoding(decoder: self, count: count)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleValueDecoding(decoder: self) }

    func presence() throws -> Bool {
        let at = reader.offset
        switch try reader.readByte() {
        case 0: return false
        case 1: return true
        case let tag:
            throw FormatError(.invalidValue, at: reader.baseOffset + at, "presence byte is \(tag), not 0 or 1")
        }
    }

    func decodeNested<T: Decodable>(_ type: T.Type) throws -> T { try T(from: self) }
}

/// Runs `body`, turning a ``FormatError`` it throws into a `DecodingError.dataCorrupted` at `path` (the
/// format error, with its offset, stays the underlying error); other errors pass unchanged.
func withPath<R>(_ path: [any CodingKey], _ body: () throws -> R) throws -> R {
    do {
        return try body()
    } catch let error as FormatError {
        throw DecodingError.dataCorrupted(
            DecodingError.Context(codingPath: path, debugDescription: error.description, underlyingError: error))
    }
}

/// The coding key of an unkeyed container's element.
struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}

struct KeyedDecoding<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: CompactDecoding
    let entries: [String: Range<Int>?]
    let order: [String]
    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] { order.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { entries[key.stringValue] != nil }

    func range(_ key: some CodingKey) throws -> Range<Int>? {
        guard let entry = entries[key.stringValue] else {
            throw DecodingError.keyNotFound(key, DecodingError.Context(
                codingPath: codingPath, debugDescription: "no value for key '\(key.stringValue)' in the encoded bytes"))
        }
        return entry
    }

    func value<T>(_ key: some CodingKey, _ body: (CompactDecoding) throws -> T) throws -> T {
        guard let range = try range(key) else {
            throw DecodingError.valueNotFound(T.self, DecodingError.Context(
                codingPath: codingPath + [key], debugDescription: "key '\(key.stringValue)' holds nil"))
        }
        let child = decoder.entryDecoder(range, key: key)
        return try withPath(child.codingPath) {
            let result = try body(child)
            guard child.reader.isAtEnd else {
                throw FormatError(.inconsistent, at: child.reader.baseOffset + child.reader.offset,
                    "value of key '\(key.stringValue)' left \(child.reader.remaining) bytes unread")
            }
            return result
        }
    }

    func decodeNil(forKey key: Key) throws -> Bool { try range(key) == nil }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try value(key) { try T(from: $0) } }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decode(T.self, forKey: key)
    }
    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try value(key) { try $0.container(keyedBy: NestedKey.self) }
    }
    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try value(key) { try $0.unkeyedContainer() }
    }
    func superDecoder() throws -> any Decoder { try value(SuperKey()) { $0 } }
    func superDecoder(forKey key: Key) throws -> any Decoder { try value(key) { $0 } }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try value(key) { try $0.reader.readBool() } }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try value(key) { try $0.reader.readString() } }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try value(key) { try $0.reader.readDouble() } }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try value(key) { try $0.reader.readFloat() } }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try value(key) { try $0.reader.readVarInt(as: Int.self) } }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try value(key) { try $0.reader.readVarInt(as: Int8.self) } }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try value(key) { try $0.reader.readVarInt(as: Int16.self) } }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try value(key) { try $0.reader.readVarInt(as: Int32.self) } }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try value(key) { try $0.reader.readVarInt(as: Int64.self) } }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try value(key) { try $0.reader.readVarInt(as: UInt.self) } }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try value(key) { try $0.reader.readVarInt(as: UInt8.self) } }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try value(key) { try $0.reader.readVarInt(as: UInt16.self) } }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try value(key) { try $0.reader.readVarInt(as: UInt32.self) } }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try value(key) { try $0.reader.readVarInt(as: UInt64.self) } }
}

/// Reads the elements written by ``UnkeyedEncoding``: each a presence tag and, unless nil, a value.
struct UnkeyedDecoding: UnkeyedDecodingContainer {
    let decoder: CompactDecoding
    let total: Int
    var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { total }
    var isAtEnd: Bool { currentIndex >= total }

    init(decoder: CompactDecoding, count: Int) {
        self.decoder = decoder
        self.total = count
    }

    /// Decodes the next element, which must be present, with `body`, its index on the coding path.
    mutating func element<T>(_ type: T.Type, _ body: (CompactDecoding) throws -> T) throws -> T {
        let key = IndexKey(currentIndex)
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(T.self, DecodingError.Context(
                codingPath: codingPath + [key], debugDescription: "read past the \(total) elements of an unkeyed container"))
        }
        // A nil element is left in place (as JSONDecoder does), so `decodeNil()` can still take it.
        guard try decoder.nested(key, { try $0.reader.peekByte() }) != 0 else {
            throw DecodingError.valueNotFound(T.self, DecodingError.Context(
                codingPath: codingPath + [key], debugDescription: "element \(currentIndex) is nil"))
        }
        _ = try decoder.nested(key) { try $0.presence() }
        currentIndex += 1
        return try decoder.nested(key, body)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, try decoder.nested(IndexKey(currentIndex), { try $0.reader.peekByte() }) == 0 else { return false }
        _ = try decoder.reader.readByte()
        currentIndex += 1
        return true
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try element(T.self) { try T(from: $0) } }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try element(KeyedDecodingContainer<NestedKey>.self) { try $0.container(keyedBy: NestedKey.self) }
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try element((any UnkeyedDecodingContainer).self) { try $0.unkeyedContainer() }
    }
    mutating func superDecoder() throws -> any Decoder { try element((any Decoder).self) { $0 } }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try element(type) { try $0.reader.readBool() } }
    mutating func decode(_ type: String.Type) throws -> String { try element(type) { try $0.reader.readString() } }
    mutating func decode(_ type: Double.Type) throws -> Double { try element(type) { try $0.reader.readDouble() } }
    mutating func decode(_ type: Float.Type) throws -> Float { try element(type) { try $0.reader.readFloat() } }
    mutating func decode(_ type: Int.Type) throws -> Int { try element(type) { try $0.reader.readVarInt(as: Int.self) } }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try element(type) { try $0.reader.readVarInt(as: Int8.self) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try element(type) { try $0.reader.readVarInt(as: Int16.self) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try element(type) { try $0.reader.readVarInt(as: Int32.self) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try element(type) { try $0.reader.readVarInt(as: Int64.self) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try element(type) { try $0.reader.readVarInt(as: UInt.self) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try element(type) { try $0.reader.readVarInt(as: UInt8.self) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try element(type) { try $0.reader.readVarInt(as: UInt16.self) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try element(type) { try $0.reader.readVarInt(as: UInt32.self) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try element(type) { try $0.reader.readVarInt(as: UInt64.self) } }
}

struct SingleValueDecoding: SingleValueDecodingContainer {
    let decoder: CompactDecoding
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool {
        guard (try? decoder.reader.peekByte()) == 0 else { return false }
        _ = try? decoder.reader.readByte()
        return true
    }

    /// Reads the presence byte, which must say a value follows, then the value with `body`.
    func value<T>(_ type: T.Type, _ body: (CompactDecoding) throws -> T) throws -> T {
        try withPath(codingPath) {
            guard try decoder.presence() else {
                throw DecodingError.valueNotFound(T.self, DecodingError.Context(
                    codingPath: codingPath, debugDescription: "expected a value, found nil"))
            }
            return try body(decoder)
        }
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try value(T.self) { try $0.decodeNested(T.self) } }
    func decode(_ type: Bool.Type) throws -> Bool { try value(type) { try $0.reader.readBool() } }
    func decode(_ type: String.Type) throws -> String { try value(type) { try $0.reader.readString() } }
    func decode(_ type: Double.Type) throws -> Double { try value(type) { try $0.reader.readDouble() } }
    func decode(_ type: Float.Type) throws -> Float { try value(type) { try $0.reader.readFloat() } }
    func decode(_ type: Int.Type) throws -> Int { try value(type) { try $0.reader.readVarInt(as: Int.self) } }
    func decode(_ type: Int8.Type) throws -> Int8 { try value(type) { try $0.reader.readVarInt(as: Int8.self) } }
    func decode(_ type: Int16.Type) throws -> Int16 { try value(type) { try $0.reader.readVarInt(as: Int16.self) } }
    func decode(_ type: Int32.Type) throws -> Int32 { try value(type) { try $0.reader.readVarInt(as: Int32.self) } }
    func decode(_ type: Int64.Type) throws -> Int64 { try value(type) { try $0.reader.readVarInt(as: Int64.self) } }
    func decode(_ type: UInt.Type) throws -> UInt { try value(type) { try $0.reader.readVarInt(as: UInt.self) } }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try value(type) { try $0.reader.readVarInt(as: UInt8.self) } }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try value(type) { try $0.reader.readVarInt(as: UInt16.self) } }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try value(type) { try $0.reader.readVarInt(as: UInt32.self) } }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try value(type) { try $0.reader.readVarInt(as: UInt64.self) } }
}
