import SluiceColumnar

/// One columnar block moved out of memory into its own spill file (a framed file of one zstd-compressed
/// frame), for data that waits whole until it is read: a received block under a short memory budget. The file
/// is removed when the last reference goes.
package final class SpilledBlock: Sendable {
    /// Where it is.
    package let path: String
    /// Where its one frame starts (after the file's header).
    private let frameOffset: Int
    /// The block's size in memory.
    package let byteCount: Int
    private let directory: SpillDirectory

    private init(path: String, frameOffset: Int, byteCount: Int, directory: SpillDirectory) {
        self.path = path
        self.frameOffset = frameOffset
        self.byteCount = byteCount
        self.directory = directory
    }

    deinit {
        directory.remove(path)
    }

    /// Writes `block` to a new spill file of `directory`, compressed at `level`.
    /// - Parameter what: the data, for error messages ("block input-0-1200").
    /// - Throws: ``StorageError`` (`writeFailed`) naming the file, with the ``FileError`` underneath; no file is
    ///   left behind then.
    package static func write(
        _ block: Block, what: String, purpose: String, to directory: SpillDirectory, level: Int32
    ) throws -> SpilledBlock {
        try directory.writeNewFile(purpose, what: what) { path in
            var file = try FramedFileWriter(creating: path, level: level, calls: directory.calls)
            let frameOffset = file.byteOffset
            try file.append(block)
            let onDisk = file.byteOffset
            try file.finish()
            directory.recordWrite(uncompressed: block.byteCount, onDisk: onDisk)
            return SpilledBlock(path: path, frameOffset: frameOffset, byteCount: block.byteCount, directory: directory)
        }
    }

    /// Reads the block back.
    /// - Throws: ``StorageError`` (`readFailed`) naming the file, with the ``FormatError`` or ``FileError``
    ///   underneath.
    package func read(what: String) throws -> Block {
        do {
            var reader = try FramedFileReader(opening: path, calls: directory.calls)
            let (payload, _) = try reader.frame(at: frameOffset)
            let block = try Block(validating: payload)
            directory.recordRead(block.byteCount)
            return block
        } catch {
            throw StorageError(.readFailed, "reading \(what) back from '\(path)' failed", underlying: error)
        }
    }
}
