import SluiceColumnar

/// Rows per frame of a spill file: one block of this many rows is compressed and written at a time.
let spillRowsPerFrame = 4096

/// A spill file: a framed file (``FramedFile``) of zstd-compressed blocks of rows.
struct SpillFile: Sendable {
    /// Where it is.
    let path: String
    /// The byte offset of each frame, in order.
    let frameOffsets: [Int]
    /// Rows in all.
    let rows: Int
    /// Bytes of the blocks before compression.
    let uncompressedBytes: Int
}

/// Appends rows to a spill file being written, a block (frame) at a time.
struct SpillFrameWriter<Row>: ~Copyable {
    var file: FramedFileWriter
    var builder: BlockBuilder
    let codec: ElementCodec<Row>
    var frameOffsets: [Int] = []
    var rows = 0

    /// Adds a row; a full block is written out as a frame.
    mutating func append(_ row: Row) throws {
        try codec.append(row, to: &builder)
        rows += 1
        if builder.rowCount >= spillRowsPerFrame { try endFrame() }
    }

    /// Writes the rows added since the last frame as one frame (nothing when there are none), so that the
    /// next row starts a new frame (e.g. at a partition boundary).
    mutating func endFrame() throws {
        guard builder.rowCount > 0 else { return }
        var block = try builder.seal()
        frameOffsets.append(file.byteOffset)
        try file.append(block)
        block.recycle()
        builder.reset()
    }
}

extension SpillDirectory {
    /// Writes a new spill file with `body`'s rows and returns it. On failure the file is removed and the
    /// error says what was being spilled and where.
    /// - Parameters:
    ///   - purpose: the file's name prefix (`shuffle-3-map`, `rdd-2-0`).
    ///   - what: the data, for error messages ("shuffle 3's map output").
    /// - Throws: ``StorageError`` (`writeFailed`), with the ``FileError`` (a full disk, ...) underneath.
    func write<Row>(
        _ purpose: String, what: String, codec: ElementCodec<Row>, level: Int32,
        _ body: (inout SpillFrameWriter<Row>) throws -> Void
    ) throws -> SpillFile {
        try writeNewFile(purpose, what: what) { path in
            var writer = SpillFrameWriter(
                file: try FramedFileWriter(creating: path, level: level, calls: calls),
                builder: try codec.makeBuilder(), codec: codec)
            try body(&writer)
            try writer.endFrame()
            let (offsets, rows) = (writer.frameOffsets, writer.rows)
            let uncompressed = writer.file.uncompressedBytes
            let onDisk = writer.file.byteOffset
            try writer.file.finish()
            recordWrite(uncompressed: uncompressed, onDisk: onDisk)
            return SpillFile(path: path, frameOffsets: offsets, rows: rows, uncompressedBytes: uncompressed)
        }
    }

    /// Runs `body` with the path of a new spill file named after `purpose` and returns what it returns; when
    /// `body` throws, the file is removed and the error says what was being spilled and where.
    /// - Throws: ``StorageError`` (`writeFailed`), with `body`'s error (a full disk, ...) underneath.
    func writeNewFile<R>(_ purpose: String, what: String, _ body: (_ path: String) throws -> R) throws -> R {
        let path = try newFile(purpose)
        do {
            return try body(path)
        } catch {
            remove(path)
            throw StorageError(.writeFailed, "spilling \(what) to '\(path)' failed", underlying: error)
        }
    }
}

/// Reads a spill file's frames back as rows: all of them in order, or the frames at chosen offsets.
final class SpillReader<Row> {
    private var reader: FramedFileReader
    private let file: SpillFile
    private let offsets: [Int]
    private var next = 0
    private let codec: ElementCodec<Row>
    private let directory: SpillDirectory
    private let what: String

    /// A reader of `file`'s frames at `frames` (all frames when nil).
    /// - Throws: ``StorageError`` (`readFailed`).
    init(
        _ file: SpillFile, frames: [Int]? = nil, codec: ElementCodec<Row>, directory: SpillDirectory,
        what: String
    ) throws {
        do {
            reader = try FramedFileReader(opening: file.path, calls: directory.calls)
        } catch {
            throw StorageError(.readFailed, "reading \(what) back from '\(file.path)' failed", underlying: error)
        }
        self.file = file
        self.offsets = frames ?? file.frameOffsets
        self.codec = codec
        self.directory = directory
        self.what = what
    }

    /// The next frame's rows, or nil after the last.
    /// - Throws: ``StorageError`` (`readFailed`) naming the file, with the ``FormatError`` (and its offset) or
    ///   ``FileError`` underneath.
    func nextFrame() throws -> [Row]? {
        guard next < offsets.count else { return nil }
        let offset = offsets[next]
        do {
            let (payload, _) = try reader.frame(at: offset)
            let block = try Block(validating: payload)
            let rows = try codec.decode(block)
            next += 1
            directory.recordRead(block.byteCount)
            return rows
        } catch {
            throw StorageError(
                .readFailed, "reading \(what) back from '\(file.path)' (frame at byte \(offset)) failed",
                underlying: error)
        }
    }
}
