import CSluiceChecksum

/// Sluice's framed file format: a file header, then one ``Envelope`` per frame (each with its uncompressed and
/// stored sizes and checksums), then a trailer with the frame count and total size. The format of spill files,
/// and of any file of blocks.
///
/// ```
/// header  16 bytes: magic "SLZF" u32, version u16 (1), reserved u16, CRC-32C of bytes 0..<8 u32, reserved u32
/// frames: envelopes ("SLZE")
/// trailer 32 bytes: magic "SLZT" u32, reserved u32, frame count u64, total uncompressed bytes u64,
///                   reserved u32, CRC-32C of bytes 0..<28 u32
/// ```
/// A file without its trailer was not finished (a torn write): a reader returns every complete frame, then
/// reports the tear with its offset.
public enum FramedFile {
    static let fileMagic: UInt32 = 0x465A_4C53  // "SLZF"
    static let trailerMagic: UInt32 = 0x545A_4C53  // "SLZT"
    public static let headerSize = 16
    static let trailerSize = 32

    static func header() -> [UInt8] {
        var h = [UInt8](repeating: 0, count: headerSize)
        h.withUnsafeMutableBytes { b in
            b.storeBytes(of: fileMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: UInt16(1).littleEndian, toByteOffset: 4, as: UInt16.self)
            let crc = sluice_crc32c(0, b.baseAddress, 8)
            b.storeBytes(of: crc.littleEndian, toByteOffset: 8, as: UInt32.self)
        }
        return h
    }
}

/// Writes a framed file (see ``FramedFile``), compressing each frame with zstd.
public struct FramedFileWriter: ~Copyable {
    var sink: FileSink
    let compressor: ZstdCompressor?
    var scratch: ArenaBuffer
    /// Frames written so far.
    public private(set) var frameCount = 0
    /// Uncompressed bytes written so far.
    public private(set) var uncompressedBytes = 0

    /// Creates `path` and writes the file header.
    /// - Parameters:
    ///   - level: zstd level, or `nil` to store frames uncompressed.
    /// - Throws: ``FileError``, ``CompressionError``, ``MemoryError``.
    public init(creating path: String, level: Int32? = 1, calls: SystemCalls = .live) throws {
        let compressor = try level.map { try ZstdCompressor(level: $0) }
        let scratch = try ArenaBuffer()
        var sink = try FileSink(creating: path, calls: calls)
        try FramedFile.header().withUnsafeBytes { try sink.write($0) }
        self.compressor = compressor
        self.scratch = scratch
        self.sink = sink
    }

    /// The file's path.
    public var path: String { sink.path }

    /// The byte offset at which the next frame will start (for an index of frames, read back with
    /// ``FramedFileReader/frame(at:)``).
    public var byteOffset: Int { sink.offset }

    /// Appends one frame holding `payload`.
    /// - Throws: ``FileError`` (a full disk: ``FileError/isNoSpace``), ``CompressionError``. Frames written
    ///   before a failure stay readable.
    public mutating func append(_ payload: UnsafeRawBufferPointer) throws {
        scratch.removeAll()
        try Envelope.write(payload, compressor: compressor, to: &scratch)
        try scratch.withUnsafeBytes { try sink.write($0) }
        frameCount += 1
        uncompressedBytes += payload.count
    }

    /// Appends a block as one frame.
    public mutating func append(_ block: Block) throws {
        try block.withUnsafeBytes { try append($0) }
    }

    /// Flushes what was written so far to stable storage.
    /// - Throws: ``FileError``.
    public func sync() throws {
        try sink.sync()
    }

    /// A flusher of the file that works without the writer and keeps the file open after ``finish(sync:)``
    /// until it is gone (so a flush can run outside the lock that guards appends).
    public var flusher: FileFlusher { sink.flusher }

    /// Writes the trailer (and with `sync`, flushes to stable storage) and closes the file.
    /// - Throws: ``FileError``.
    public consuming func finish(sync: Bool = false) throws {
        var t = [UInt8](repeating: 0, count: FramedFile.trailerSize)
        t.withUnsafeMutableBytes { b in
            b.storeBytes(of: FramedFile.trailerMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: UInt64(frameCount).littleEndian, toByteOffset: 8, as: UInt64.self)
            b.storeBytes(of: UInt64(uncompressedBytes).littleEndian, toByteOffset: 16, as: UInt64.self)
            let crc = sluice_crc32c(0, b.baseAddress, 28)
            b.storeBytes(of: crc.littleEndian, toByteOffset: 28, as: UInt32.self)
        }
        try t.withUnsafeBytes { try sink.write($0) }
        if sync { try sink.sync() }
    }
}

/// Reads a framed file (see ``FramedFile``) frame by frame, verifying every size and checksum.
public struct FramedFileReader: ~Copyable {
    let source: FileSource
    let decompressor: ZstdDecompressor
    var scratch: ArenaBuffer
    /// The offset of the next frame.
    public private(set) var offset = FramedFile.headerSize
    /// Frames returned so far.
    public private(set) var frameCount = 0
    var uncompressedBytes = 0
    var finished = false

    /// Opens `path` and checks its header.
    /// - Throws: ``FileError``, ``FormatError``.
    public init(opening path: String, calls: SystemCalls = .live) throws {
        let source = try FileSource(opening: path, calls: calls)
        var head = try ArenaBuffer()
        let n = try source.read(at: 0, count: FramedFile.headerSize, into: &head)
        try head.withUnsafeBytes { (b) throws(FormatError) in
            guard n == FramedFile.headerSize else {
                throw FormatError(.truncated, at: n, "'\(path)': file header truncated (\(n) of 16 bytes)")
            }
            guard b.readLE(0, as: UInt32.self) == FramedFile.fileMagic else {
                throw FormatError(.badMagic, at: 0, "'\(path)' is not a Sluice framed file")
            }
            guard b.readLE(8, as: UInt32.self) == sluice_crc32c(0, b.baseAddress, 8) else {
                throw FormatError(.checksumMismatch, at: 8, "'\(path)': file header checksum mismatch")
            }
            guard b.readLE(4, as: UInt16.self) == 1 else {
                throw FormatError(.unsupportedVersion, at: 4, "'\(path)': framed file version \(b.readLE(4, as: UInt16.self))")
            }
        }
        let decompressor = try ZstdDecompressor()
        self.source = source
        self.decompressor = decompressor
        self.scratch = head
    }

    /// The next frame's payload, or `nil` after the trailer.
    /// - Throws: ``FormatError`` naming the file and offset: a torn tail (file ends without its trailer),
    ///   a corrupt frame or trailer; ``FileError``; ``CompressionError``. Frames returned before stay valid.
    public mutating func next() throws -> ArenaBuffer? {
        if finished { return nil }
        let path = source.path
        scratch.removeAll()
        let n = try source.read(at: offset, count: Envelope.headerSize, into: &scratch)
        if n == 0 {
            throw FormatError(.truncated, at: offset,
                "'\(path)' ends after \(frameCount) frames without its trailer: the file was not finished (torn write)")
        }
        let magic = n >= 4 ? scratch.withUnsafeBytes { $0.readLE(0, as: UInt32.self) } : 0
        if magic == FramedFile.trailerMagic {
            try readTrailer(n, path: path)
            finished = true
            return nil
        }
        let (out, length) = try frame(at: offset, headerBytes: n)
        offset += length
        frameCount += 1
        uncompressedBytes += out.count
        return out
    }

    /// The payload of the frame that starts at byte `offset` (an offset ``FramedFileWriter/byteOffset`` gave),
    /// and the offset of the frame after it; for reading a file's frames out of order.
    /// - Throws: as ``next()``.
    public mutating func frame(at offset: Int) throws -> (payload: ArenaBuffer, next: Int) {
        scratch.removeAll()
        let n = try source.read(at: offset, count: Envelope.headerSize, into: &scratch)
        let (out, length) = try frame(at: offset, headerBytes: n)
        return (out, offset + length)
    }

    /// Reads the frame at `frameOffset`, whose first `n` header bytes are in `scratch`.
    private mutating func frame(at frameOffset: Int, headerBytes n: Int) throws -> (ArenaBuffer, Int) {
        let path = source.path
        let frames = frameCount
        let header = try scratch.withUnsafeBytes { (b) throws(FormatError) -> Envelope.Header in
            do throws(FormatError) {
                return try Envelope.readHeader(b, offset: frameOffset)
            } catch {
                throw FormatError(error.code, at: error.offset, "'\(path)', frame \(frames): \(error.message)")
            }
        }
        let got = try source.read(at: frameOffset + n, count: header.storedLength, into: &scratch)
        guard got == header.storedLength else {
            throw FormatError(.truncated, at: frameOffset + n + got,
                "'\(path)', frame \(frames): payload truncated (\(got) of \(header.storedLength) bytes): torn write")
        }
        var out = try ArenaBuffer(pool: scratch.pool)
        try scratch.withUnsafeBytes { b in
            do {
                try Envelope.read(b, offset: frameOffset, decompressor: decompressor, into: &out)
            } catch let error as FormatError {
                throw FormatError(error.code, at: error.offset, "'\(path)', frame \(frames): \(error.message)")
            }
        }
        return (out, header.totalLength)
    }

    private mutating func readTrailer(_ n: Int, path: String) throws {
        let got = try source.read(at: offset + n, count: FramedFile.trailerSize - n, into: &scratch)
        let at = offset
        try scratch.withUnsafeBytes { (b) throws(FormatError) in
            guard n + got == FramedFile.trailerSize else {
                throw FormatError(.truncated, at: at + n + got, "'\(path)': trailer truncated: torn write")
            }
            guard b.readLE(28, as: UInt32.self) == sluice_crc32c(0, b.baseAddress, 28) else {
                throw FormatError(.checksumMismatch, at: at + 28, "'\(path)': trailer checksum mismatch")
            }
            let frames = b.readLE(8, as: UInt64.self)
            let bytes = b.readLE(16, as: UInt64.self)
            guard frames == UInt64(frameCount), bytes == UInt64(uncompressedBytes) else {
                throw FormatError(.inconsistent, at: at + 8,
                    "'\(path)': trailer counts \(frames) frames of \(bytes) bytes, the file holds \(frameCount) of \(uncompressedBytes)")
            }
        }
        var extra = try ArenaBuffer()
        guard try source.read(at: at + FramedFile.trailerSize, count: 1, into: &extra) == 0 else {
            throw FormatError(.inconsistent, at: at + FramedFile.trailerSize, "'\(path)': bytes follow the trailer")
        }
    }
}
