// Decoding Kafka records' values (Spark's `value.deserializer`), with a record that cannot be decoded either
// failing its batch or skipped with a log line, named by topic, partition and offset either way.

/// A Kafka record whose value the program's decoder refused: which record, and the decoder's error.
public struct KafkaDecodingError: Error, Sendable, CustomStringConvertible {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
    /// The decoder's error, as text.
    public let reason: String

    init(_ record: ConsumerRecord, _ error: any Error) {
        topic = record.topic
        partition = record.partition
        offset = record.offset
        reason = "\(error)"
    }

    public var description: String { "cannot decode the value of \(topic)-\(partition) at offset \(offset): \(reason)" }
}

/// What a stream of decoded values does with a record its decoder refuses.
public enum UndecodableRecords: Sendable {
    /// The batch fails with a ``KafkaDecodingError`` (Spark's behaviour: a deserializer's exception fails the
    /// task). A program restarted from its checkpoint reads the same range again.
    case failTheBatch
    /// The record is left out and a warning naming it is logged (`sluice.stream`); the batch goes on.
    case skipAndLog
}

extension DStream where Element == ConsumerRecord {
    /// Each record's value decoded by `decode` (what Spark's `value.deserializer` does); a record it throws for
    /// is handled as `undecodable` says.
    public func decodeValues<V: Sendable>(
        _ undecodable: UndecodableRecords = .failTheBatch, _ decode: @escaping @Sendable (ConsumerRecord) throws -> V
    ) -> DStream<V> {
        let context = self.context
        return flatMap { record -> ZeroOrOne<V> in
            do {
                return ZeroOrOne(try decode(record))
            } catch {
                let failure = KafkaDecodingError(record, error)
                guard undecodable == .skipAndLog else { throw failure }
                context.log(.warning, .stream, "\(failure); the record is skipped")
                return ZeroOrOne(nil)
            }
        }
    }
}

extension ConsumerRecord {
    /// The value as UTF-8 text, checked: bytes that are not UTF-8 throw an error naming the first bad byte's
    /// position (``valueString`` replaces them with U+FFFD instead).
    public func utf8Value() throws -> String {
        guard let text = String(validating: value, as: UTF8.self) else {
            var decoder = UTF8()
            var bytes = value.makeIterator()
            var position = 0
            decoding: while true {
                switch decoder.decode(&bytes) {
                case .scalarValue(let scalar): position += UTF8.width(scalar)
                case .emptyInput, .error: break decoding
                }
            }
            throw NotUTF8(position: position, count: value.count)
        }
        return text
    }
}

/// Bytes that are not UTF-8: where the first bad byte is.
public struct NotUTF8: Error, Sendable, CustomStringConvertible {
    /// The position of the first byte that is not part of valid UTF-8.
    public let position: Int
    /// The bytes in all.
    public let count: Int

    public var description: String { "not UTF-8: bad byte at \(position) of \(count)" }
}

/// A sequence of one value or none: a `flatMap` that drops some elements without an array per element.
struct ZeroOrOne<Value>: Sequence, IteratorProtocol {
    private var value: Value?

    init(_ value: Value?) { self.value = value }

    mutating func next() -> Value? {
        defer { value = nil }
        return value
    }
}
