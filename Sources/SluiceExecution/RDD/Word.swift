import SluiceColumnar

/// A piece of text cut out of a line by ``Swift/String/split(ascii:)``: the word path of a word count, made
/// without a `String` per word.
///
/// A word of at most 15 UTF-8 bytes (almost every word of natural text and logs) is held inline, in the value
/// itself: making, copying and dropping one touches no heap and no reference count. A longer word holds a
/// `String`. Every word carries the hash of its bytes, computed once while the line is split, so a combine table
/// finds it with one load and compares it by bytes (two integer compares for an inline word).
///
/// A word is always an owned value: one that escapes into `collect`, state or an output is as safe to keep as a
/// `String`. Use ``string`` for a `String`, and `Word("text")` or a string literal to make one. Equality,
/// hashing and ordering are by UTF-8 bytes (for text from one source, as `String`'s for the same text, except
/// that canonically equivalent but differently encoded text is unequal). `reduceByKey`, `countByValue`,
/// windows and state keyed by words partition them by Java's `String.hashCode`, as Spark does for strings.
public struct Word: Sendable {
    @usableFromInline
    enum Storage: Sendable {
        /// The bytes little-endian in `low` and the low 7 bytes of `high`; the byte count in `high`'s top byte.
        case inline(low: UInt64, high: UInt64)
        /// More than 15 bytes.
        case string(String)
    }

    @usableFromInline let storage: Storage
    /// The hash of the bytes: ``inlineHash(low:high:)`` of the packed form for an inline word, `hashBytes` of the
    /// bytes for a long one (the length decides which, so equal bytes have equal hashes).
    @usableFromInline let hash: UInt64

    /// The most bytes an inline word holds.
    @usableFromInline static let inlineCapacity = 15

    /// The word whose UTF-8 bytes are `bytes` (which must be valid UTF-8 for ``string`` to give them back
    /// unchanged; other bytes read back with U+FFFD in their place).
    @inlinable @inline(__always)
    public init(utf8 bytes: UnsafeRawBufferPointer) {
        if let (low, high) = Word.packed(bytes) {
            self.init(low: low, high: high)
        } else {
            self = Word.long(bytes)
        }
    }

    /// A word of more than 15 bytes.
    @usableFromInline
    static func long(_ bytes: UnsafeRawBufferPointer) -> Word {
        Word(storage: .string(String(decoding: bytes, as: UTF8.self)), hash: hashBytes(bytes))
    }

    /// `bytes` packed as an inline word's two integers, or nil when they are more than 15.
    @inlinable @inline(__always)
    static func packed(_ bytes: UnsafeRawBufferPointer) -> (low: UInt64, high: UInt64)? {
        guard bytes.count <= Word.inlineCapacity else { return nil }
        // No bytes, maybe no address: the empty word.
        guard let base = bytes.baseAddress else { return (0, 0) }
        return pack(base, bytes.count)
    }

    /// The word of more than 15 bytes that `string` holds, keeping that `String` (no copy of its bytes): how a
    /// combine table gives back a long key it stored. Hashed as ``long(_:)`` hashes the same bytes.
    @usableFromInline
    init(long string: String) {
        var string = string
        let hash = string.withUTF8 { hashBytes(UnsafeRawBufferPointer($0)) }
        self.init(storage: .string(string), hash: hash)
    }

    @inlinable
    init(storage: Storage, hash: UInt64) {
        self.storage = storage
        self.hash = hash
    }

    /// The word holding `string`'s text.
    @inlinable
    public init(_ string: String) {
        var copy = string  // withUTF8 is mutating: it may make the string contiguous
        self = copy.withUTF8 { Word(utf8: UnsafeRawBufferPointer($0)) }
    }

    @inlinable
    init(low: UInt64, high: UInt64) {
        self.init(storage: .inline(low: low, high: high), hash: Word.inlineHash(low: low, high: high))
    }

    /// The hash of an inline word's packed bytes: the two halves of one full-width product of the halves, each
    /// first xored with a constant, folded together (wyhash's mix: one multiplication, where three chained ones
    /// took a third of the split loop's samples). Neither factor can be 0 for a word of valid UTF-8, which
    /// would give every word with that half the same hash: `low`'s constant has 0xFF (never in UTF-8) where the
    /// word's first byte lies, `high`'s has 0xFF in its top byte, where the length (at most 15) lies.
    @inlinable @inline(__always)
    static func inlineHash(low: UInt64, high: UInt64) -> UInt64 {
        let product = (low ^ 0xA076_1D64_78BD_64FF).multipliedFullWidth(by: high ^ 0xFFB8_2F22_A0B4_28E5)
        return product.high ^ product.low
    }

    /// Packs `count` (at most 15) bytes at `base` into two integers, with loads that stay inside the bytes
    /// (overlapping where the count is not a multiple of the load size), no byte-by-byte copy.
    @inlinable @inline(__always)
    static func pack(_ base: UnsafeRawPointer, _ count: Int) -> (UInt64, UInt64) {
        let length = UInt64(truncatingIfNeeded: count) << 56
        // Safe (every branch): each load reads only bytes in base..<base + count.
        if count >= 8 {
            let low = base.loadUnaligned(as: UInt64.self)
            // The last 8 bytes, of which the top count - 8 are the bytes after the first 8 (`>>` of 64 is 0).
            let tail = base.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            return (low, tail >> UInt64(truncatingIfNeeded: (16 &- count) &* 8) | length)
        }
        if count >= 4 {
            let first = UInt64(base.loadUnaligned(as: UInt32.self))
            let last = UInt64(base.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self))
            return (first | (last >> UInt64(truncatingIfNeeded: (8 &- count) &* 8)) << 32, length)
        }
        var low: UInt64 = 0
        for i in 0..<count { low |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << UInt64(i &* 8) }
        return (low, length)
    }

    /// The packed bytes and hash of the word at `word` when it is inline, read where it lies: no copy of the
    /// word is made (a copy and its drop are two calls that test for a String), which is why the word path's
    /// loops read words through this. Nil for a long word.
    @inlinable @inline(__always)
    static func inlineParts(at word: UnsafePointer<Word>) -> (low: UInt64, high: UInt64, hash: UInt64)? {
        guard case .inline(let low, let high) = word.pointee.storage else { return nil }
        return (low, high, word.pointee.hash)
    }

    /// Whether the word is held in the value itself (dropping it then releases nothing).
    @inlinable
    var isInline: Bool {
        if case .inline = storage { return true }
        return false
    }

    /// The number of UTF-8 bytes.
    @inlinable
    public var utf8Count: Int {
        switch storage {
        case .inline(_, let high): Int(truncatingIfNeeded: high >> 56)
        case .string(let string): string.utf8.count
        }
    }

    /// Calls `body` with the word's UTF-8 bytes (valid inside `body` only).
    @inlinable
    public func withUTF8<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .inline(let low, let high):
            var packed = (low, high)
            let count = Int(truncatingIfNeeded: high >> 56)
            // Safe: the tuple's first count (<= 15) bytes are the word's bytes, little-endian.
            return try withUnsafeBytes(of: &packed) { raw in
                try body(UnsafeRawBufferPointer(rebasing: raw[0..<count]))
            }
        case .string(var string):
            return try string.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
        }
    }

    /// The word as a `String`.
    @inlinable
    public var string: String {
        switch storage {
        case .inline: withUTF8 { String(decoding: $0, as: UTF8.self) }
        case .string(let string): string
        }
    }

    /// Java's `String.hashCode` of the word (the partitioner's input, as for a `String` key).
    @inlinable
    public var javaHashCode: Int32 {
        withUTF8 { SparkHashCode.utf8($0) }
    }
}

extension Word: Hashable {
    @inlinable @inline(__always)
    public static func == (a: Word, b: Word) -> Bool {
        guard a.hash == b.hash else { return false }
        if case .inline(let al, let ah) = a.storage {
            if case .inline(let bl, let bh) = b.storage { return al == bl && ah == bh }
            return false  // an inline word and a long one differ in length
        }
        return a.sameLongBytes(as: b)
    }

    /// Whether two words, `self` long, have the same bytes.
    @usableFromInline
    func sameLongBytes(as other: Word) -> Bool {
        guard case .string(let x) = storage, case .string(let y) = other.storage else { return false }
        return x.utf8.elementsEqual(y.utf8)
    }

    @inlinable
    public func hash(into hasher: inout Hasher) { hasher.combine(hash) }
}

extension Word: Comparable {
    /// Byte order of the UTF-8 encodings (Unicode scalar order).
    public static func < (a: Word, b: Word) -> Bool {
        a.withUTF8 { x in b.withUTF8 { y in x.lexicographicallyPrecedes(y) } }
    }
}

extension Word: CustomStringConvertible, CustomDebugStringConvertible, ExpressibleByStringLiteral {
    public var description: String { string }
    public var debugDescription: String { string.debugDescription }
    public init(stringLiteral value: String) { self.init(value) }
}

extension Word: Codable {
    /// A word decodes from and encodes to a single string.
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(string)
    }
}

extension Word: BlockSerializable {
    /// A word is stored as a `string` column (the same bytes as the `String` it holds).
    public static var columnTypes: [ColumnType] { [ColumnType(.string)] }

    @inlinable
    public static func writeColumns(_ value: Word, to builder: inout BlockBuilder) throws {
        value.withUTF8 { builder.write(bytes: $0) }
    }

    public static func readColumns(from row: inout RowReader) throws -> Word {
        row.withBytes { Word(utf8: $0) }
    }

    public func encode(to writer: inout BinaryWriter) { withUTF8 { writer.writeBytes($0) } }

    public static func decode(from reader: inout BinaryReader) throws -> Word {
        Word(utf8: try reader.readBytes())
    }
}

/// The words of a line between occurrences of an ASCII separator, without empty ones: what
/// ``Swift/String/split(ascii:)`` returns. A lazy sequence: the words are cut out one by one as it is iterated,
/// with no array for the line. `Array(line.split(ascii: ","))` gives them all at once.
public struct ASCIIWords: Sequence, Sendable {
    @usableFromInline let line: String
    @usableFromInline let separator: UInt8
    /// The words, made up front, for a separator outside ASCII.
    @usableFromInline let pieces: [Word]?

    @inlinable
    init(line: consuming String, separator: Unicode.Scalar) {
        guard separator.isASCII else {
            self.line = ""
            self.separator = 0
            pieces = line.split(separator: Character(separator)).map { Word(String($0)) }
            return
        }
        var line = line
        line.makeContiguousUTF8()  // a no-op for a native string; one copy for a bridged one
        self.line = line
        self.separator = UInt8(separator.value)
        pieces = nil
    }

    @inlinable
    public var underestimatedCount: Int { pieces?.count ?? 0 }

    @inlinable
    public func makeIterator() -> Iterator { Iterator(line: line, separator: separator, pieces: pieces) }

    /// Calls `body` with each word in order: the words of a line in one pass over its bytes.
    @inlinable
    public func forEachWord(_ body: (consuming Word) throws -> Void) rethrows {
        if let pieces {
            for word in pieces { try body(word) }
            return
        }
        let separator = self.separator
        // Contiguous: made so in init.
        _ = try line.utf8.withContiguousStorageIfAvailable { bytes in
            var position = 0
            while let word = ASCIIWords.word(in: UnsafeRawBufferPointer(bytes), from: &position, separator) {
                try body(word)
            }
        }
    }

    /// Appends the line's words to `out` (a buffer of ``Word``s), handing it to `sink` whenever it fills: the
    /// engine's `flatMap` on the word path. One pass over the line's bytes with no call per word: the end of a
    /// word is found eight bytes at a time.
    @inlinable
    func appendWords<E>(
        to out: inout ChunkBuffer<E>, _ sink: (UnsafeBufferPointer<E>) throws -> Void
    ) throws {
        if let pieces {
            for word in pieces {
                out.append(moving: word)
                if out.isFull { try out.flush(to: sink) }
            }
            return
        }
        // Contiguous: init made it so, so the closure always runs.
        _ = try line.utf8.withContiguousStorageIfAvailable { bytes in
            guard let base = bytes.baseAddress else { return }
            let count = bytes.count
            let separator = self.separator
            var position = 0
            while true {
                while position < count && base[position] == separator { position &+= 1 }
                guard position < count else { return }
                let end = ASCIIWords.end(of: position, in: base, count, separator)
                // Safe: position..<end lies within the line's bytes.
                out.append(moving: Word(utf8: UnsafeRawBufferPointer(start: base + position, count: end &- position)))
                if out.isFull { try out.flush(to: sink) }
                position = end
            }
        }
    }

    /// The index of the first separator after `start` in the `count` bytes at `base` (or `count`). Eight bytes at
    /// a time while eight remain, loaded little-endian (the platforms Swift runs Sluice on): the lowest zero byte
    /// of `bytes ^ separators` is the first separator (the borrow in the test can only mark bytes above a real
    /// zero byte).
    @inlinable @inline(__always)
    static func end(of start: Int, in base: UnsafePointer<UInt8>, _ count: Int, _ separator: UInt8) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let separators = UInt64(separator) &* ones
        var position = start &+ 1  // the byte at start is not a separator
        while position &+ 8 <= count {
            // Safe: position + 8 <= count.
            let x = UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self) ^ separators
            let zeros = (x &- ones) & ~x & (ones << 7)
            if zeros != 0 { return position &+ zeros.trailingZeroBitCount >> 3 }
            position &+= 8
        }
        while position < count && base[position] != separator { position &+= 1 }
        return position
    }

    /// The word that starts at or after `position` in `bytes` (skipping separators), moving `position` past
    /// it; nil when only separators are left.
    @inlinable @inline(__always)
    static func word(in bytes: UnsafeRawBufferPointer, from position: inout Int, _ separator: UInt8) -> Word? {
        let count = bytes.count
        while position < count && bytes[position] == separator { position &+= 1 }
        guard position < count, let base = bytes.baseAddress else { return nil }
        let start = position
        position = end(of: start, in: base.assumingMemoryBound(to: UInt8.self), count, separator)
        // Safe: start..<position lies within the bytes.
        return Word(utf8: UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
    }

    /// Cuts the next word out of the line's UTF-8 bytes.
    public struct Iterator: IteratorProtocol {
        @usableFromInline let line: String
        @usableFromInline let separator: UInt8
        @usableFromInline let pieces: [Word]?
        @usableFromInline var position = 0

        @inlinable
        init(line: String, separator: UInt8, pieces: [Word]?) {
            self.line = line
            self.separator = separator
            self.pieces = pieces
        }

        @inlinable
        public mutating func next() -> Word? {
            if let pieces {
                guard position < pieces.count else { return nil }
                position &+= 1
                return pieces[position &- 1]
            }
            let separator = self.separator
            var position = self.position
            // Contiguous: made so in ASCIIWords.init.
            let word = line.utf8.withContiguousStorageIfAvailable {
                ASCIIWords.word(in: UnsafeRawBufferPointer($0), from: &position, separator)
            }
            self.position = position
            return word ?? nil
        }
    }
}
