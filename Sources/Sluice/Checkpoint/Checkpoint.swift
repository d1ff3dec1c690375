import SluiceColumnar
import SluiceExecution

/// A checkpoint: data, never code. It describes the stream graph that wrote it (so that a rebuilt graph can be
/// checked against it), says which batches are done, and holds each stateful stream's data (state, window
/// contents, file-stream and receiver bookkeeping) as bytes only that stream reads back.
///
/// Every batch up to ``time`` was complete when it was written, and the sections hold the streams as they were
/// after that batch; recovery carries on with the batch after it.
struct Checkpoint: Sendable, Equatable {
    static let magic = "sluice-checkpoint"
    /// 2: unkeyed Codable elements carry a presence tag (row encoding of Codable state and window data).
    static let version: UInt64 = 2

    var batchDuration: Duration
    var zeroTime: Time
    /// The last batch the checkpoint covers.
    var time: Time
    /// Batches generated but not finished when it was written (they run again after recovery).
    var pendingTimes: [Time]
    var graph: GraphDescription
    /// The configuration the program ran with (for the record; the rebuilt program's own applies).
    var conf: [String: String]
    /// Each stream's data, by stream id.
    var sections: [Int: [UInt8]]

    /// The file's bytes: a framed file (see ``FramedFile``) whose first frame is the header and each further
    /// frame one stream's section, every frame checksummed.
    func write(to path: String, level: Int32?, calls: SystemCalls) throws {
        var file = try FramedFileWriter(creating: path, level: level, calls: calls)
        var header = try BinaryWriter()
        header.writeString(Checkpoint.magic)
        header.writeVarUInt(Checkpoint.version)
        header.writeVarInt(batchDuration.wholeMilliseconds)
        header.writeVarInt(zeroTime.milliseconds)
        header.writeVarInt(time.milliseconds)
        header.writeVarUInt(UInt64(pendingTimes.count))
        for pending in pendingTimes { header.writeVarInt(pending.milliseconds) }
        graph.encode(to: &header)
        header.writeVarUInt(UInt64(conf.count))
        for (key, value) in conf.sorted(by: { $0.key < $1.key }) {
            header.writeString(key)
            header.writeString(value)
        }
        header.writeVarUInt(UInt64(sections.count))
        try header.withWrittenBytes { try file.append($0) }
        for (id, payload) in sections.sorted(by: { $0.key < $1.key }) {
            var frame = try BinaryWriter()
            frame.writeVarUInt(UInt64(id))
            payload.withUnsafeBytes { frame.writeRaw($0) }
            try frame.withWrittenBytes { try file.append($0) }
        }
        try file.finish(sync: true)
    }

    /// Reads a checkpoint file, checking every frame's checksum, the trailer, the magic and the version.
    /// - Throws: ``StreamingError`` (`checkpointFailed`) naming the file and the offset of the problem.
    static func read(from path: String, calls: SystemCalls) throws -> Checkpoint {
        do {
            var file = try FramedFileReader(opening: path, calls: calls)
            guard let head = try file.next() else {
                throw FormatError(.truncated, at: FramedFile.headerSize, "the file has no header frame")
            }
            var (checkpoint, expected) = try head.withUnsafeBytes { bytes in
                try BinaryReader.withReader(bytes, baseOffset: FramedFile.headerSize) { reader in
                    try Checkpoint.decodeHeader(&reader)
                }
            }
            while let frame = try file.next() {
                guard expected > 0 else {
                    throw FormatError(.inconsistent, at: file.offset, "more stream sections than the header counts")
                }
                expected -= 1
                let (id, payload) = try frame.withUnsafeBytes { bytes in
                    try BinaryReader.withReader(bytes) { reader -> (Int, [UInt8]) in
                        let id = try reader.readVarUInt(as: Int.self, for: "a section's stream id")
                        return (id, Array(try reader.readRaw(reader.remaining)))
                    }
                }
                checkpoint.sections[id] = payload
            }
            guard expected == 0 else {
                throw FormatError(.inconsistent, at: file.offset, "\(expected) stream sections are missing")
            }
            return checkpoint
        } catch let error as StreamingError {
            throw error
        } catch {
            throw StreamingError(.checkpointFailed, "cannot read the checkpoint '\(path)'", underlying: error)
        }
    }

    /// The header frame's checkpoint (without sections) and the number of section frames that follow.
    private static func decodeHeader(_ reader: inout BinaryReader) throws -> (Checkpoint, Int) {
        let magic = try reader.readString()
        guard magic == Checkpoint.magic else {
            throw FormatError(.badMagic, at: reader.baseOffset, "not a Sluice checkpoint (it starts with '\(magic)')")
        }
        let version = try reader.readVarUInt()
        guard version == Checkpoint.version else {
            throw FormatError(
                .unsupportedVersion, at: reader.baseOffset,
                "checkpoint version \(version); this Sluice reads version \(Checkpoint.version)")
        }
        let batch = Duration.milliseconds(try reader.readVarInt())
        let zero = Time(milliseconds: try reader.readVarInt())
        let time = Time(milliseconds: try reader.readVarInt())
        var pending: [Time] = []
        for _ in 0..<(try reader.readCount(for: "pending batch times")) {
            pending.append(Time(milliseconds: try reader.readVarInt()))
        }
        let graph = try GraphDescription.decode(from: &reader)
        var conf: [String: String] = [:]
        for _ in 0..<(try reader.readCount(minimumElementSize: 2, for: "configuration entries")) {
            let key = try reader.readString()
            conf[key] = try reader.readString()
        }
        let sections = try reader.readVarUInt(as: Int.self, for: "the section count")
        let checkpoint = Checkpoint(
            batchDuration: batch, zeroTime: zero, time: time, pendingTimes: pending, graph: graph, conf: conf,
            sections: [:])
        return (checkpoint, sections)
    }
}

/// The stream graph as a checkpoint records it: every stream's kind, slide, parents and settings that decide
/// what its saved data means (a window's length). A rebuilt program must match it stream by stream
/// (partitions and timeouts may change: restored state is placed anew, timers rebuilt).
struct GraphDescription: Sendable, Equatable {
    struct Stream: Sendable, Equatable {
        var id: Int
        var kind: String
        var slide: Duration
        var parents: [Int]
        /// Settings that shape the stream's data, e.g. "window 30s".
        var detail: String

        var summary: String {
            "stream \(id) (\(kind) sliding every \(slide.sparkDescription)"
                + (detail.isEmpty ? "" : ", \(detail)")
                + (parents.isEmpty ? "" : ", from stream\(parents.count == 1 ? "" : "s") "
                    + parents.map(String.init).joined(separator: ", "))
                + ")"
        }
    }

    var streams: [Stream]
    var outputCount: Int

    func encode(to writer: inout BinaryWriter) {
        writer.writeVarUInt(UInt64(streams.count))
        for stream in streams {
            writer.writeVarUInt(UInt64(stream.id))
            writer.writeString(stream.kind)
            writer.writeVarInt(stream.slide.wholeMilliseconds)
            writer.writeVarUInt(UInt64(stream.parents.count))
            for parent in stream.parents { writer.writeVarUInt(UInt64(parent)) }
            writer.writeString(stream.detail)
        }
        writer.writeVarUInt(UInt64(outputCount))
    }

    static func decode(from reader: inout BinaryReader) throws -> GraphDescription {
        var streams: [Stream] = []
        for _ in 0..<(try reader.readCount(minimumElementSize: 4, for: "streams")) {
            let id = try reader.readVarUInt(as: Int.self, for: "a stream id")
            let kind = try reader.readString()
            let slide = Duration.milliseconds(try reader.readVarInt())
            var parents: [Int] = []
            for _ in 0..<(try reader.readCount(for: "parents")) { parents.append(try reader.readVarUInt(as: Int.self, for: "a parent stream id")) }
            streams.append(Stream(id: id, kind: kind, slide: slide, parents: parents, detail: try reader.readString()))
        }
        return GraphDescription(streams: streams, outputCount: try reader.readVarUInt(as: Int.self, for: "the output count"))
    }

    /// The first difference between the graph a checkpoint was written by (`self`) and a rebuilt one, in a
    /// sentence; nil when they match.
    func firstDifference(from rebuilt: GraphDescription) -> String? {
        for (old, new) in zip(streams, rebuilt.streams) where old != new {
            return "the checkpoint has \(old.summary) where the program now has \(new.summary)"
        }
        if streams.count != rebuilt.streams.count {
            let longer = streams.count > rebuilt.streams.count
            let extra = (longer ? streams : rebuilt.streams)[min(streams.count, rebuilt.streams.count)]
            return longer
                ? "the checkpoint has \(streams.count) streams, the program \(rebuilt.streams.count): "
                    + "\(extra.summary) is missing"
                : "the program has \(rebuilt.streams.count) streams, the checkpoint \(streams.count): "
                    + "\(extra.summary) is new"
        }
        if outputCount != rebuilt.outputCount {
            return "the checkpoint has \(outputCount) output operations, the program \(rebuilt.outputCount)"
        }
        return nil
    }
}
