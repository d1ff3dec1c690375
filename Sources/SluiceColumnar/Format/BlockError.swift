/// A block, frame or serialized value that cannot be read: what is wrong and at which byte offset.
public struct FormatError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: Sendable, Equatable {
        /// Fewer bytes than the format needs.
        case truncated
        /// The bytes do not start with the expected magic number.
        case badMagic
        /// A format version this build cannot read.
        case unsupportedVersion
        /// The stored checksum does not match the bytes.
        case checksumMismatch
        /// A length, count or offset field disagrees with the bytes or with another field.
        case inconsistent
        /// A value (a kind, a tag, a flag) that the format does not define.
        case invalidValue
        /// The block's columns are not the ones the element type needs.
        case schemaMismatch
        /// More data than the format can describe.
        case tooLarge
    }

    /// The kind of problem.
    public var code: Code
    /// The byte offset, from the start of the block, frame or file, where the problem was found.
    public var offset: Int
    /// A human sentence naming the offending field and values.
    public var message: String

    /// Makes an error.
    public init(_ code: Code, at offset: Int, _ message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(message) (at byte offset \(offset))" }
}
