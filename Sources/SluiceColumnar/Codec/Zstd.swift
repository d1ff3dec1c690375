import CSluiceChecksum
import CZstd

/// A failure inside the zstd library, with its own message.
public struct CompressionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// zstd's error name.
    public var message: String
    public var description: String { "zstd: \(message)" }

    static func check(_ code: Int) throws(CompressionError) -> Int {
        if sluice_zstd_is_error(code) != 0 {
            throw CompressionError(message: String(cString: ZSTD_getErrorName(code)))
        }
        return code
    }
}

/// A reusable zstd compression context (one per thread: contexts are not thread-safe).
public final class ZstdCompressor {
    // Safe: created in init, freed in deinit, used only by this object's methods.
    private let context: OpaquePointer
    /// The compression level (zstd's 1...19; negative levels are faster).
    public let level: Int32

    /// A compressor at `level` (Sluice's default, `sluice.zstd.level`, is 1).
    /// - Throws: ``CompressionError`` for a level zstd does not accept, ``MemoryError`` when out of memory.
    public init(level: Int32 = 1) throws {
        let bounds = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel)
        guard level >= bounds.lowerBound && level <= bounds.upperBound else {
            throw CompressionError(message: "level \(level) is outside \(bounds.lowerBound)...\(bounds.upperBound)")
        }
        guard let context = ZSTD_createCCtx() else { throw MemoryError(.allocationFailed(bytes: 0)) }
        self.context = context
        self.level = level
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compresses `source` into one zstd frame appended to `output`.
    /// - Returns: the compressed size.
    /// - Throws: ``CompressionError``.
    public func compress(_ source: UnsafeRawBufferPointer, appendingTo output: inout ArenaBuffer) throws -> Int {
        let bound = ZSTD_compressBound(source.count)
        var written = 0
        try output.reserveCapacity(output.count + bound)
        try output.appendWithUnsafeBytes(reserving: bound) { (space) throws(CompressionError) -> Int in
            written = try CompressionError.check(
                ZSTD_compress2(context, space.baseAddress, space.count, source.baseAddress, source.count))
            return written
        }
        return written
    }
}

/// A reusable zstd decompression context (one per thread).
public final class ZstdDecompressor {
    // Safe: created in init, freed in deinit, used only by this object's methods.
    private let context: OpaquePointer

    /// A decompressor.
    /// - Throws: ``MemoryError`` when out of memory.
    public init() throws {
        guard let context = ZSTD_createDCtx() else { throw MemoryError(.allocationFailed(bytes: 0)) }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses one frame from `source`, which must expand to exactly `expectedSize` bytes, appending them
    /// to `output`.
    /// - Throws: ``CompressionError`` for corrupt input or a size other than `expectedSize`.
    public func decompress(
        _ source: UnsafeRawBufferPointer, expectedSize: Int, appendingTo output: inout ArenaBuffer
    ) throws {
        let declared = ZSTD_getFrameContentSize(source.baseAddress, source.count)
        guard declared == UInt64(expectedSize) else {
            throw CompressionError(message: "frame declares \(Int64(bitPattern: declared)) bytes, expected \(expectedSize)")
        }
        try output.reserveCapacity(output.count + expectedSize)
        try output.appendWithUnsafeBytes(reserving: expectedSize) { (space) throws(CompressionError) -> Int in
            let n = try CompressionError.check(
                ZSTD_decompressDCtx(context, space.baseAddress, space.count, source.baseAddress, source.count))
            guard n == expectedSize else {
                throw CompressionError(message: "frame expanded to \(n) bytes, expected \(expectedSize)")
            }
            return n
        }
    }
}

/// A compressed envelope around any payload (a block, a WAL record): its sizes and checksums travel with it,
/// so a reader verifies before it allocates or decompresses.
///
/// ```
///   0 magic "SLZE" u32   4 version u8 (1)   5 codec u8 (0 none, 1 zstd)   6 reserved u16 (0)
///   8 uncompressed length u64   16 stored (payload) length u64
///  24 payload CRC-32C u32       28 header CRC-32C u32 (of bytes 0..<28)   32 payload
/// ```
public enum Envelope {
    static let magic: UInt32 = 0x455A_4C53  // "SLZE"
    /// The header's size in bytes.
    public static let headerSize = 32
    /// The largest payload an envelope describes (the block format's limit).
    public static let maxPayload = Int(UInt32.max)

    /// How the payload is stored.
    public enum Codec: UInt8, Sendable {
        /// As is.
        case none = 0
        /// One zstd frame.
        case zstd = 1
    }

    /// Appends an envelope holding `payload`, compressed with `compressor` (stored as is when that is not
    /// smaller, or when `compressor` is nil).
    /// - Throws: ``CompressionError``; ``FormatError`` (`tooLarge`) past 4 GiB.
    public static func write(
        _ payload: UnsafeRawBufferPointer, compressor: ZstdCompressor?, to output: inout ArenaBuffer
    ) throws {
        guard payload.count <= maxPayload else {
            throw FormatError(.tooLarge, at: 8, "payload of \(payload.count) bytes is over the envelope's 4 GiB")
        }
        let start = output.count
        output.appendZeros(headerSize)
        var codec = Codec.none
        var stored = payload.count
        if let compressor {
            stored = try compressor.compress(payload, appendingTo: &output)
            codec = .zstd
            if stored >= payload.count {  // incompressible: keep it raw
                output.truncate(to: start + headerSize)
                codec = .none
            }
        }
        if codec == .none {
            output.append(contentsOf: payload)
            stored = payload.count
        }
        output.set(littleEndian: magic, at: start)
        output.set(littleEndian: UInt8(1), at: start + 4)
        output.set(littleEndian: codec.rawValue, at: start + 5)
        output.set(littleEndian: UInt64(payload.count), at: start + 8)
        output.set(littleEndian: UInt64(stored), at: start + 16)
        // Safe: the output holds at least the 32 header bytes just written, so it has a base address.
        let payloadCRC = output.withUnsafeBytes { sluice_crc32c(0, $0.baseAddress! + start + headerSize, stored) }
        output.set(littleEndian: payloadCRC, at: start + 24)
        let headerCRC = output.withUnsafeBytes { sluice_crc32c(0, $0.baseAddress! + start, 28) }
        output.set(littleEndian: headerCRC, at: start + 28)
        try output.checkAllocation()
    }

    /// What an envelope's header says.
    public struct Header: Sendable, Equatable {
        /// How the payload is stored.
        public var codec: Codec
        /// The payload's size once decompressed.
        public var uncompressedLength: Int
        /// The stored payload's size.
        public var storedLength: Int
        /// The stored payload's CRC-32C.
        public var payloadChecksum: UInt32
        /// The envelope's whole size.
        public var totalLength: Int { Envelope.headerSize + storedLength }
    }

    /// Reads and checks the header at the start of `bytes`; `offset` names its position in errors.
    /// - Throws: ``FormatError``.
    public static func readHeader(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) throws(FormatError) -> Header {
        guard bytes.count >= headerSize else {
            throw FormatError(.truncated, at: offset + bytes.count,
                "envelope header truncated: \(bytes.count) of \(headerSize) bytes")
        }
        let m = bytes.readLE(0, as: UInt32.self)
        guard m == magic else {
            throw FormatError(.badMagic, at: offset, "not a Sluice envelope: magic is 0x\(String(m, radix: 16))")
        }
        // Safe: at least 32 bytes were checked to be present, so there is a base address.
        let headerCRC = sluice_crc32c(0, bytes.baseAddress!, 28)
        guard headerCRC == bytes.readLE(28, as: UInt32.self) else {
            throw FormatError(.checksumMismatch, at: offset + 28, "envelope header checksum mismatch; the header is corrupt")
        }
        guard bytes[4] == 1 else {
            throw FormatError(.unsupportedVersion, at: offset + 4, "envelope version \(bytes[4]) (this build reads 1)")
        }
        guard let codec = Codec(rawValue: bytes[5]), bytes.readLE(6, as: UInt16.self) == 0 else {
            throw FormatError(.invalidValue, at: offset + 5, "unknown envelope codec \(bytes[5]) or flags")
        }
        let uncompressed = bytes.readLE(8, as: UInt64.self)
        let stored = bytes.readLE(16, as: UInt64.self)
        guard uncompressed <= UInt64(maxPayload), stored <= UInt64(maxPayload),
            codec == .zstd || stored == uncompressed
        else {
            throw FormatError(.inconsistent, at: offset + 8,
                "envelope lengths are impossible: \(uncompressed) bytes stored as \(stored) with codec \(codec)")
        }
        return Header(
            codec: codec, uncompressedLength: Int(uncompressed), storedLength: Int(stored),
            payloadChecksum: bytes.readLE(24, as: UInt32.self))
    }

    /// Opens the envelope at the start of `bytes`, checks it, and appends its payload to `output`.
    /// - Returns: the envelope's total length in `bytes`.
    /// - Throws: ``FormatError`` (truncated, corrupt, with the offset), ``CompressionError``.
    @discardableResult
    public static func read(
        _ bytes: UnsafeRawBufferPointer, offset: Int = 0, decompressor: ZstdDecompressor,
        into output: inout ArenaBuffer
    ) throws -> Int {
        let header = try readHeader(bytes, offset: offset)
        guard bytes.count >= header.totalLength else {
            throw FormatError(.truncated, at: offset + bytes.count,
                "envelope payload truncated: \(bytes.count - headerSize) of \(header.storedLength) bytes")
        }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[headerSize..<header.totalLength])
        guard sluice_crc32c(0, payload.baseAddress, payload.count) == header.payloadChecksum else {
            throw FormatError(.checksumMismatch, at: offset + headerSize,
                "envelope payload checksum mismatch over \(payload.count) bytes; the payload is corrupt")
        }
        switch header.codec {
        case .none: output.append(contentsOf: payload)
        case .zstd:
            try decompressor.decompress(payload, expectedSize: header.uncompressedLength, appendingTo: &output)
        }
        try output.checkAllocation()
        return header.totalLength
    }
}

extension Block {
    /// The block's bytes in an envelope, zstd compressed at the compressor's level.
    /// - Throws: ``CompressionError``, ``MemoryError``.
    public func compressed(with compressor: ZstdCompressor) throws -> ArenaBuffer {
        var out = try ArenaBuffer(minimumCapacity: Envelope.headerSize + byteCount / 2, pool: storage.pool)
        try withUnsafeBytes { try Envelope.write($0, compressor: compressor, to: &out) }
        return out
    }

    /// Opens a block from an envelope made by ``compressed(with:)``; `envelope` must hold exactly that envelope.
    /// - Throws: ``FormatError`` naming the problem and offset, ``CompressionError``, ``MemoryError``.
    public init(
        decompressing envelope: UnsafeRawBufferPointer, decompressor: ZstdDecompressor, pool: BufferPool = .shared
    ) throws {
        // No capacity up front: the payload's checksum is verified before anything the header claims is allocated.
        var out = try ArenaBuffer(pool: pool)
        let length = try Envelope.read(envelope, decompressor: decompressor, into: &out)
        guard length == envelope.count else {
            throw FormatError(.inconsistent, at: length, "\(envelope.count - length) bytes follow the envelope")
        }
        try self.init(validating: out)
    }
}
