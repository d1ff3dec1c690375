import SluiceColumnar

extension RDD {
    /// Writes the RDD as a directory of text files (Spark's `saveAsTextFile`): `path/part-NNNNN`, one per
    /// partition, one line per element (see ``SparkText``), and an empty `_SUCCESS`. The directory appears
    /// complete or not at all; an existing directory of that name is replaced.
    /// - Throws: ``StorageError`` naming the directory (a full disk, an unwritable place); the first error a
    ///   closure of the job threw.
    public func saveAsTextFile(_ path: String) throws {
        let calls = engine.systemCalls
        try OutputDirectory(path: path, calls: calls).write { temporary in
            _ = try runJob { p, drive in
                var writer = try LineWriter(creating: "\(temporary)/\(OutputDirectory.partName(p))", calls: calls)
                try drive { chunk in for element in chunk { try writer.write(line: SparkText.line(element)) } }
                try writer.flush()
            }
        }
    }

    /// Writes the RDD as a directory of object files in Sluice's block format (Spark's `saveAsObjectFile`):
    /// `path/part-NNNNN`, each a framed file of zstd-compressed blocks of one partition's elements, and
    /// `_SUCCESS`. Read it back with ``ExecutionEngine/objectFile(_:codec:)``.
    /// - Throws: ``StorageError`` (`notSerializable`) when the elements have no block encoding (a
    ///   ``BlockSerializable`` type or a tuple of them); as ``saveAsTextFile(_:)`` otherwise.
    public func saveAsObjectFile(_ path: String) throws {
        let (calls, level) = (engine.systemCalls, engine.compressionLevel)
        try OutputDirectory(path: path, calls: calls).write { temporary in
            _ = try runJob { p, drive in
                var file = try FramedFileWriter(
                    creating: "\(temporary)/\(OutputDirectory.partName(p))", level: level, calls: calls)
                var codec: ElementCodec<Element>?
                var builder: BlockBuilder?
                try drive { chunk in
                    guard let first = chunk.first else { return }
                    if codec == nil {
                        guard let found = ElementCodecs.lookup(Element.self, sample: first) else {
                            throw StorageError(
                                .notSerializable,
                                "saveAsObjectFile('\(path)'): elements of type \(Element.self) have no block encoding; "
                                    + "make them Codable (or BlockSerializable)")
                        }
                        codec = found
                        builder = try found.makeBuilder()
                    }
                    guard let codec, var rows = builder else { return }
                    builder = nil
                    for element in chunk { try codec.append(element, to: &rows) }
                    if rows.rowCount >= 4_096 {
                        var block = try rows.seal()
                        try file.append(block)
                        block.recycle()
                        rows.reset()
                    }
                    builder = rows
                }
                if let rows = builder, rows.rowCount > 0 { try file.append(try rows.seal()) }
                try file.finish()
            }
        }
    }
}

extension ExecutionEngine {
    /// The RDD saved in `path` by ``RDD/saveAsObjectFile(_:)``: one partition per part file, decoded with
    /// `codec` (e.g. `ElementCodecs.tuple(String.self, Int.self)`).
    /// - Throws: ``StorageError`` when `path` is not a complete output directory. A corrupt part file fails
    ///   the job that reads it, naming the file and offset.
    public func objectFile<T: Sendable>(_ path: String, codec: ElementCodec<T>) throws -> RDD<T> {
        let files = try OutputDirectory.partFiles(of: path)
        let calls = systemCalls
        return RDD(engine: self, numPartitions: files.count) { p, sink in
            do {
                var reader = try FramedFileReader(opening: files[p], calls: calls)
                while let payload = try reader.next() {
                    try decodeChunks(try Block(validating: payload), codec, sink)
                }
            } catch let error as StorageError {
                throw error
            } catch let error as FormatError {
                throw StorageError(.readFailed, "reading '\(files[p])' failed", underlying: error)
            } catch let error as FileError {
                throw StorageError(.readFailed, "reading '\(files[p])' failed", underlying: error)
            }
        }
    }

    /// The RDD saved in `path` by ``RDD/saveAsObjectFile(_:)``, of a ``BlockSerializable`` element type.
    public func objectFile<T: BlockSerializable>(_ path: String, as type: T.Type) throws -> RDD<T> {
        try objectFile(path, codec: ElementCodecs.standard(T.self))
    }
}
