/// Reads Sluice's compact row encoding (see ``BinaryWriter``), checking every length against the bytes left.
///
/// A reader borrows its bytes: make one with ``withReader(_:_:)`` and do not let it escape the closure. Errors
/// are ``FormatError``s whose offset counts from the first byte the reader was given plus ``baseOffset``.
public struct BinaryReader {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    /// The position of the next byte to read.
    public private(set) var offset = 0
    /// Added to offsets in errors, to name positions within a larger file or block.
    public let baseOffset: Int

    @usableFromInline
    init(_ bytes: UnsafeRawBufferPointer, baseOffset: Int) {
        self.bytes = bytes
        self.baseOffset = baseOffset
    }

    /// Runs `body` with a reader over `bytes`.
    public static func withReader<R>(
        _ bytes: UnsafeRawBufferPointer, baseOffset: Int = 0, _ body: (inout BinaryReader) throws -> R
    ) rethrows -> R {
        var reader = BinaryReader(bytes, baseOffset: baseOffset)
        return try body(&reader)
    }

    /// Bytes not yet read.
    public var remaining: Int { bytes.count - offset }

    /// Whether every byte was read.
    public var isAtEnd: Bool { offset == bytes.count }

    func error(_ code: FormatError.Code, _ message: String, at position: Int? = nil) -> FormatError {
        FormatError(code, at: baseOffset + (position ?? offset), message)
    }

    mutating func take(_ n: Int, for what: String) throws(FormatError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else {
            throw error(.truncated, "\(what) needs \(n) bytes, \(remaining) remain")
        }
        // Safe: offset + n <= bytes.count was just checked.
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
        offset += n
        return slice
    }

    /// Reads one raw byte.
    public mutating func readByte() throws(FormatError) -> UInt8 {
        try take(1, for: "a byte")[0]
    }

    /// Reads the next byte without consuming it.
    public func peekByte() throws(FormatError) -> UInt8 {
        guard remaining >= 1 else { throw error(.truncated, "a byte needs 1 byte, 0 remain") }
        return bytes[offset]
    }

    /// Reads an unsigned LEB128 varint.
    public mutating func readVarUInt() throws(FormatError) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else {
                throw error(.truncated, "varint runs past the end of the bytes", at: start)
            }
            let byte = bytes[offset]
            offset += 1
            if shift == 63 && byte > 1 {
                throw error(.invalidValue, "varint is longer than 64 bits", at: start)
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// Reads an unsigned varint that must fit `T` (an id, a count or a length that came from bytes), naming
    /// `what` when it does not.
    public mutating func readVarUInt<T: FixedWidthInteger>(as type: T.Type, for what: String) throws(FormatError) -> T {
        let start = offset
        let v = try readVarUInt()
        guard let t = T(exactly: v) else {
            throw error(.invalidValue, "\(what) is \(v), more than \(T.self) holds", at: start)
        }
        return t
    }

    /// Reads a zig-zag varint.
    public mutating func readVarInt() throws(FormatError) -> Int64 {
        let u = try readVarUInt()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// Reads a varint that must fit `T`.
    public mutating func readVarInt<T: FixedWidthInteger>(as type: T.Type) throws(FormatError) -> T {
        let start = offset
        if T.isSigned {
            let v = try readVarInt()
            guard let t = T(exactly: v) else { throw error(.invalidValue, "\(v) does not fit \(T.self)", at: start) }
            return t
        }
        let v = try readVarUInt()
        guard let t = T(exactly: v) else { throw error(.invalidValue, "\(v) does not fit \(T.self)", at: start) }
        return t
    }

    /// Reads an 8-byte `Double`.
    public mutating func readDouble() throws(FormatError) -> Double {
        Double(bitPattern: try take(8, for: "a Double").readLE(0, as: UInt64.self))
    }

    /// Reads a 4-byte `Float`.
    public mutating func readFloat() throws(FormatError) -> Float {
        Float(bitPattern: try take(4, for: "a Float").readLE(0, as: UInt32.self))
    }

    /// Reads a one-byte `Bool` (0 or 1).
    public mutating func readBool() throws(FormatError) -> Bool {
        let at = offset
        switch try readByte() {
        case 0: return false
        case 1: return true
        case let b: throw error(.invalidValue, "a Bool byte is \(b), not 0 or 1", at: at)
        }
    }

    /// Reads a length prefix, checked against the bytes left before anything is allocated.
    public mutating func readLength(for what: String) throws(FormatError) -> Int {
        let at = offset
        let n = try readVarUInt()
        guard n <= UInt64(remaining) else {
            throw error(.inconsistent, "\(what) claims \(n) bytes, only \(remaining) remain", at: at)
        }
        return Int(n)
    }

    /// Reads length-prefixed bytes, borrowed from the reader's memory (valid while it is).
    public mutating func readBytes() throws(FormatError) -> UnsafeRawBufferPointer {
        let n = try readLength(for: "a byte string")
        return try take(n, for: "a byte string")
    }

    /// Reads a length-prefixed UTF-8 string.
    /// - Throws: ``FormatError`` when the length passes the end or the bytes are not UTF-8.
    public mutating func readString() throws(FormatError) -> String {
        let at = offset
        let n = try readLength(for: "a string")
        let raw = try take(n, for: "a string")
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw error(.invalidValue, "string of \(n) bytes is not valid UTF-8", at: at)
        }
        return s
    }

    /// Reads `count` raw bytes.
    public mutating func readRaw(_ count: Int) throws(FormatError) -> UnsafeRawBufferPointer {
        try take(count, for: "raw bytes")
    }

    /// Reads a count of elements that each take at least `minimumElementSize` bytes, checked against the bytes
    /// left, so that a lying count never reserves memory.
    public mutating func readCount(minimumElementSize: Int = 1, for what: String) throws(FormatError) -> Int {
        let at = offset
        let n = try readVarUInt()
        guard n <= UInt64(remaining / max(minimumElementSize, 1)) else {
            throw error(.inconsistent, "\(what) claims \(n) elements, only \(remaining) bytes remain", at: at)
        }
        return Int(n)
    }
}
