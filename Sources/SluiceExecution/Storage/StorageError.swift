import SluiceColumnar

/// Data could not be spilled, stored or read back: what, where, and the underlying cause (a full disk, an
/// unwritable directory, a corrupt spill file, a type with no block encoding).
public struct StorageError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: Sendable, Equatable {
        /// Writing spilled or persisted data failed (see ``underlying``: a full disk, an unwritable directory).
        case writeFailed
        /// Reading spilled or persisted data back failed (a missing or corrupt file).
        case readFailed
        /// The data must leave memory, but its type has no block encoding.
        case notSerializable
    }

    /// The kind of failure.
    public var code: Code
    /// A sentence naming what was being stored, where, and why it failed.
    public var message: String
    /// The error underneath (a ``FileError``, ``FormatError``, ``MemoryError``...), if any.
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        guard let underlying else { return message }
        return "\(message): \(underlying)"
    }

    /// Whether the cause is a full disk (or quota).
    public var isNoSpace: Bool { (underlying as? FileError)?.isNoSpace ?? false }
}
