import Glibc
import SluiceColumnar
import Synchronization

/// A batch's taking of blocks, read back from a write-ahead log: batch `time` took every block up to
/// sequence number `through` that an earlier batch did not.
struct LoggedAllocation: Sendable, Equatable {
    let sequence: Int64
    let time: Time
    let through: Int64
}

/// One block read back from a write-ahead log.
struct LoggedBlock: Sendable {
    /// The log's sequence number of the block (increasing across segments and restarts).
    let sequence: Int64
    let id: StreamBlockId
    let count: Int
    let block: Block
}

/// A receiver's write-ahead log (`spark.streaming.receiver.writeAheadLog.enable`): every block is appended,
/// and with `sluice.wal.fsync` = always flushed to stable storage, before it is handed to the stream. Appenders
/// that arrive while a flush runs share the next one (group commit); the flush runs outside the append lock, so
/// appends go on while it waits for the disk.
///
/// Segments are framed files (see ``FramedFile``, frames stored as they are) named `log-<first sequence number>`
/// in `<checkpoint directory>/receivedData/<stream id>`, one checksummed frame per record: a block (zstd
/// compressed by its appender, in an envelope; uncompressed when the level is nil), or which
/// blocks a batch took (so that a batch run again after a crash takes the same blocks); a segment is closed with
/// its trailer and a new one begun every `spark.streaming.receiver.writeAheadLog.rollingIntervalSecs` or 256 MB.
/// A segment is deleted only once a checkpoint covers every block in it (``clean(through:)``).
///
/// Reading back (``readAll(directory:calls:warn:)``): a segment that ends inside a frame (a write torn by a
/// crash) gives every frame before the tear and the tear is reported and dropped; a damaged frame with data
/// after it is an error naming the file and offset.
package final class WriteAheadLog: @unchecked Sendable {
    // @unchecked: `current`, `closed`, `unflushed` and `nextSequence` are only touched with `lock` held; the
    // flush state with `syncLock`, which is taken before `lock` when both are.

    private final class Segment {
        let path: String
        let firstSequence: Int64
        var lastSequence: Int64
        let opened: UInt64
        var file: FramedFileWriter?
        /// Flushes the file, even after a roll closed `file` (it keeps the file open while it exists).
        let flusher: FileFlusher

        init(path: String, firstSequence: Int64, file: consuming FramedFileWriter) {
            self.path = path
            self.firstSequence = firstSequence
            self.lastSequence = firstSequence - 1
            self.opened = monotonicNanoseconds()
            self.flusher = file.flusher
            self.file = consume file
        }
    }

    static let segmentPrefix = "log-"
    static let maxSegmentBytes = 256 << 20

    let directory: String
    private let calls: SystemCalls
    private let level: Int32?
    private let fsync: Bool
    private let rollNanoseconds: UInt64
    private let maxFailures: Int

    private let lock = Mutex(())
    private var current: Segment?
    /// Closed segments, oldest first: (path, first, last sequence).
    private var closed: [(path: String, first: Int64, last: Int64)] = []
    private var nextSequence: Int64
    /// Retired segments whose records may not be on stable storage yet: the next flush covers them too.
    private var unflushed: [FileFlusher] = []

    private struct FlushState {
        /// Every record up to this sequence number is on stable storage.
        var synced: Int64 = -1
        /// Records whose flush failed: their appends fail (and are retried in a new segment) even if a later
        /// flush succeeds, since a failed fsync may have dropped their pages.
        var failed: [ClosedRange<Int64>] = []
    }

    private let syncLock = Mutex(FlushState())
    /// Compressors not in use, for appenders to compress their blocks outside the append lock.
    private let compressors = Mutex<[Spare]>([])
    private let timings = Mutex(WriteStatistics())

    /// The block appends so far: how many, and how long each took, durable (compression, write and flush).
    var statistics: WriteStatistics { timings.withLock { $0 } }

    /// A compressor handed from one appender to the next through `compressors`.
    private struct Spare: @unchecked Sendable {
        // @unchecked: a compressor is used by one thread at a time; the mutex orders the hand-overs.
        let compressor: ZstdCompressor
    }

    /// Opens the log in `directory` beside its `existing` segments; new records get sequence numbers after
    /// `after` and after every existing segment's records and first number, so that a new segment never takes
    /// the name of an old one (an empty or torn one included: cleaning the old one would delete the new).
    package init(
        directory: String, after: Int64, existing: [(path: String, first: Int64, last: Int64)], calls: SystemCalls,
        level: Int32?, fsync: Bool, rollInterval: Duration, maxFailures: Int
    ) {
        self.directory = directory
        self.calls = calls
        self.level = level
        self.fsync = fsync
        self.rollNanoseconds = UInt64(max(1, rollInterval.wholeMilliseconds)) * 1_000_000
        self.maxFailures = max(1, maxFailures)
        self.nextSequence = max(after, existing.map { max($0.first, $0.last) }.max() ?? -1) + 1
        self.closed = existing
    }

    /// Appends `block` (durably, with fsync on) and returns its sequence number. A failed write is retried
    /// in a new segment, up to `spark.streaming.receiver.writeAheadLog.maxFailures` times.
    /// - Throws: ``StreamingError`` (`checkpointFailed`) naming the segment, after the last failure.
    package func append(_ block: Block, id: StreamBlockId, count: Int) throws -> Int64 {
        let started = monotonicNanoseconds()
        defer {
            let milliseconds = Double(monotonicNanoseconds() &- started) / 1_000_000
            timings.withLock { $0.record(milliseconds: milliseconds, bytes: block.byteCount) }
        }
        // Compressed here, on the appender's thread and before the append lock, so that appenders compress in
        // parallel and while a flush runs; under the lock the record is only written.
        let compressed = try level.map { level in try withCompressor(level) { try block.compressed(with: $0) } }
        return try appendRecord(what: "block \(id)") { record in
            record.writeByte(compressed == nil ? Self.blockRecord : Self.compressedBlockRecord)
            record.writeVarInt(id.uniqueId)
            record.writeVarUInt(UInt64(count))
            if let compressed {
                compressed.withUnsafeBytes { record.writeRaw($0) }
            } else {
                block.withUnsafeBytes { record.writeRaw($0) }
            }
        }
    }

    /// Runs `body` with a compressor at `level` from the log's spares (one is made when none is spare).
    private func withCompressor<R>(_ level: Int32, _ body: (ZstdCompressor) throws -> R) throws -> R {
        let spare = try compressors.withLock { $0.popLast() } ?? Spare(compressor: ZstdCompressor(level: level))
        defer { compressors.withLock { $0.append(spare) } }
        return try body(spare.compressor)
    }

    /// Appends that batch `time` took every block up to sequence number `through` not taken before.
    /// - Throws: as ``append(_:id:count:)``.
    @discardableResult
    func appendAllocation(_ time: Time, through: Int64) throws -> Int64 {
        try appendRecord(what: "the blocks of batch \(time)") { record in
            record.writeByte(Self.allocationRecord)
            record.writeVarInt(time.milliseconds)
            record.writeVarInt(through)
        }
    }

    static let blockRecord: UInt8 = 0
    static let allocationRecord: UInt8 = 1
    /// A block in a zstd envelope (``Block/compressed(with:)``): frames themselves are stored uncompressed.
    static let compressedBlockRecord: UInt8 = 2

    /// Appends one record (its sequence number, then what `body` writes).
    private func appendRecord(what: String, _ body: (inout BinaryWriter) -> Void) throws -> Int64 {
        var record = try BinaryWriter()
        var failures: [String] = []
        while true {
            do {
                let sequence = try lock.withLock { _ throws -> Int64 in
                    let segment = try openSegment()
                    let sequence = nextSequence
                    record.reset()
                    record.writeVarInt(sequence)
                    body(&record)
                    do {
                        try record.withWrittenBytes { bytes in try segment.file?.append(bytes) }
                    } catch {
                        // Whatever reached the file may be a torn frame: close it as it is and begin another.
                        retire(segment, finish: false)
                        throw error
                    }
                    nextSequence += 1
                    segment.lastSequence = sequence
                    return sequence
                }
                if fsync { try sync(through: sequence) }
                return sequence
            } catch {
                failures.append("\(error)")
                if failures.count >= maxFailures {
                    throw StreamingError(
                        .checkpointFailed,
                        "the write-ahead log in '\(directory)' could not append \(what) after \(failures.count) "
                            + "attempts: " + failures.joined(separator: "; "))
                }
            }
        }
    }

    /// Makes every record through `sequence` durable, unless another appender's flush already did (group
    /// commit). One flush covers every record appended when it begins, in the current segment and in retired
    /// ones not yet flushed; it runs outside the append lock, so appends carry on meanwhile and share the next.
    private func sync(through sequence: Int64) throws {
        try syncLock.withLock { state in
            if state.failed.contains(where: { $0.contains(sequence) }) {
                throw StreamingError(.checkpointFailed, "an earlier flush of record \(sequence) failed")
            }
            guard state.synced < sequence else { return }
            let (flushers, covered) = lock.withLock { _ -> ([FileFlusher], Int64) in
                defer { unflushed.removeAll() }
                return (unflushed + (current.map { [$0.flusher] } ?? []), nextSequence - 1)
            }
            do {
                for flusher in flushers { try flusher.sync() }
            } catch {
                // What these files hold may not be on disk, and a second fsync would not say so: fail every
                // record they cover and write on in a new segment.
                state.failed.append((state.synced + 1)...max(state.synced + 1, covered))
                state.synced = covered
                lock.withLock { _ in if let segment = current { retire(segment, finish: false, flushLater: false) } }
                throw error
            }
            state.synced = covered
        }
    }

    /// The segment to append to: the current one, or a new one when it is old or large.
    private func openSegment() throws -> Segment {
        if let segment = current {
            let old = monotonicNanoseconds() &- segment.opened >= rollNanoseconds
            let large = (segment.file?.byteOffset ?? 0) >= Self.maxSegmentBytes
            if !old && !large { return segment }
            retire(segment, finish: true)
        }
        let path = "\(directory)/\(Self.segmentPrefix)\(nextSequence)"
        let file: FramedFileWriter
        do {
            file = try FramedFileWriter(creating: path, level: nil, calls: calls)  // blocks come compressed
        } catch {
            _ = calls.unlink(path)  // a header cut short holds no block
            throw error
        }
        let segment = Segment(path: path, firstSequence: nextSequence, file: file)
        current = segment
        if fsync { calls.syncDirectory(directory) }  // the new name itself must survive a power loss
        return segment
    }

    /// Closes `segment` (with its trailer when `finish`) and lists it among the closed ones; with fsync on, a
    /// segment not flushed whole here is left to the next flush (`flushLater`).
    private func retire(_ segment: Segment, finish: Bool, flushLater: Bool = true) {
        var flushed = false
        if let file = segment.file.take(), finish {
            do {
                try file.finish(sync: fsync)
                flushed = true
            } catch {}  // the frames before the trailer stay readable; the next flush retries them
        }
        if fsync && !flushed && flushLater { unflushed.append(segment.flusher) }
        if current === segment { current = nil }
        if segment.lastSequence >= segment.firstSequence {
            closed.append((segment.path, segment.firstSequence, segment.lastSequence))
        } else {
            _ = calls.unlink(segment.path)
        }
    }

    /// Deletes the closed segments whose blocks all have sequence numbers at most `sequence` (a checkpoint
    /// covers them).
    func clean(through sequence: Int64) {
        let removable = lock.withLock { _ -> [String] in
            let (gone, kept) = (closed.filter { $0.last <= sequence }, closed.filter { $0.last > sequence })
            closed = kept
            return gone.map(\.path)
        }
        for path in removable { _ = calls.unlink(path) }
    }

    /// Closes the current segment with its trailer.
    package func close() {
        lock.withLock { _ in if let segment = current { retire(segment, finish: true) } }
    }

    /// The segment files in `directory`, by first sequence number.
    static func segmentFiles(in directory: String) -> [(path: String, first: Int64)] {
        (directoryNames(directory) ?? []).compactMap { name -> (String, Int64)? in
            guard name.hasPrefix(segmentPrefix), let first = Int64(name.dropFirst(segmentPrefix.count)) else {
                return nil
            }
            return ("\(directory)/\(name)", first)
        }.sorted { $0.1 < $1.1 }
    }

    /// Every block and allocation in the log's segments, in order (torn tails dropped and reported through
    /// `warn`).
    /// - Throws: ``StreamingError`` (`checkpointFailed`) naming the segment and offset of a damaged record.
    static func readAll(
        directory: String, streamId: Int, calls: SystemCalls, warn: (String) -> Void
    ) throws -> (
        blocks: [LoggedBlock], allocations: [LoggedAllocation], segments: [(path: String, first: Int64, last: Int64)]
    ) {
        var blocks: [LoggedBlock] = []
        var allocations: [LoggedAllocation] = []
        var segments: [(path: String, first: Int64, last: Int64)] = []
        let decompressor = try ZstdDecompressor()
        for (path, first) in segmentFiles(in: directory) {
            var last = first - 1
            if let size = fileSize(path), size < FramedFile.headerSize {
                warn("write-ahead log '\(path)': a segment of \(size) bytes, cut short before its first record, is skipped")
                segments.append((path, first, last))
                continue
            }
            do {
                var reader = try FramedFileReader(opening: path, calls: calls)
                while true {
                    let offset = reader.offset
                    let payload: ArenaBuffer?
                    do {
                        payload = try reader.next()
                    } catch let error as FormatError {
                        // A segment still being written when the program stopped has no trailer: not a loss.
                        if error.code == .truncated, fileSize(path) == offset { break }
                        guard isTornTail(path, at: offset, calls: calls) else {
                            throw StreamingError(
                                .checkpointFailed,
                                "the write-ahead log segment '\(path)' has a damaged record at offset \(offset) with "
                                    + "data after it", underlying: error)
                        }
                        warn("write-ahead log '\(path)': dropped a record torn by a crash at offset \(offset) (\(error.message))")
                        break
                    }
                    guard let payload else { break }
                    last = try payload.withUnsafeBytes { bytes in
                        try BinaryReader.withReader(bytes, baseOffset: offset) { record in
                            let sequence = try record.readVarInt()
                            let kind = try record.readByte()
                            switch kind {
                            case Self.blockRecord, Self.compressedBlockRecord:
                                let compressed = kind == Self.compressedBlockRecord
                                let unique = try record.readVarInt()
                                let count = try record.readVarUInt(as: Int.self, for: "a block's record count")
                                let bytes = try record.readRaw(record.remaining)
                                let block = compressed
                                    ? try Block(decompressing: bytes, decompressor: decompressor)
                                    : try Block(copying: bytes)
                                blocks.append(LoggedBlock(
                                    sequence: sequence, id: StreamBlockId(streamId: streamId, uniqueId: unique),
                                    count: count, block: block))
                            case Self.allocationRecord:
                                let time = Time(milliseconds: try record.readVarInt())
                                allocations.append(LoggedAllocation(
                                    sequence: sequence, time: time, through: try record.readVarInt()))
                            case let kind:
                                throw FormatError(.invalidValue, at: offset, "a record of unknown kind \(kind)")
                            }
                            return sequence
                        }
                    }
                }
            } catch let error as StreamingError {
                throw error
            } catch {
                throw StreamingError(.checkpointFailed, "cannot read the write-ahead log segment '\(path)'", underlying: error)
            }
            segments.append((path, first, last))
        }
        return (blocks, allocations, segments)
    }

    private static func fileSize(_ path: String) -> Int? {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : nil
    }

    /// Whether a frame that failed to read at `offset` is a tear at the end of the file: its header is cut
    /// short, the length it claims reaches the end, or only zeros follow its header's place (a file system
    /// extends a file torn by a crash with zeros); nothing valid can follow it.
    private static func isTornTail(_ path: String, at offset: Int, calls: SystemCalls) -> Bool {
        guard let size = fileSize(path) else { return false }
        guard let source = try? FileSource(opening: path, calls: calls), var head = try? ArenaBuffer() else { return false }
        guard let n = try? source.read(at: offset, count: Envelope.headerSize, into: &head) else { return false }
        if n < Envelope.headerSize { return true }
        if let header = head.withUnsafeBytes({ try? Envelope.readHeader($0, offset: offset) }),
            offset + header.totalLength >= size
        {
            return true
        }
        var at = offset + Envelope.headerSize
        while at < size {
            guard var chunk = try? ArenaBuffer(), let got = try? source.read(at: at, count: 1 << 20, into: &chunk), got > 0
            else { return false }
            if chunk.withUnsafeBytes({ $0.contains { $0 != 0 } }) { return false }
            at += got
        }
        return true
    }
}
