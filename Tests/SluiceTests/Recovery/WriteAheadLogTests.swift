import Glibc
import SluiceColumnar
import SluiceExecution
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

@Suite struct WriteAheadLogTests {
    static let codec = ElementCodecs.standard(String.self)

    func open(
        _ directory: String, after: Int64 = -1, calls: SystemCalls = .live, roll: Duration = .seconds(60),
        level: Int32? = 1
    ) -> WriteAheadLog {
        WriteAheadLog(
            directory: directory, after: after, existing: [], calls: calls, level: level, fsync: true,
            rollInterval: roll, maxFailures: 3)
    }

    func append(_ log: WriteAheadLog, _ lines: [String], id: Int64) throws -> Int64 {
        try log.append(try Self.codec.encode(lines), id: StreamBlockId(streamId: 0, uniqueId: id), count: lines.count)
    }

    func read(_ directory: String) throws -> (lines: [[String]], warnings: [String], sequences: [Int64]) {
        var warnings: [String] = []
        let found = try WriteAheadLog.readAll(directory: directory, streamId: 0, calls: .live) { warnings.append($0) }
        return (try found.blocks.map { try Self.codec.decode($0.block) }, warnings, found.blocks.map(\.sequence))
    }

    func segments(_ directory: String) -> [String] { WriteAheadLog.segmentFiles(in: directory).map(\.path) }

    func size(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : -1
    }

    /// Blocks compressed by their appenders (zstd level 1) and stored as they are (level nil) read back alike.
    @Test(arguments: [Int32(1), nil])
    func blocksReadBackInOrderWithTheirSequenceNumbers(level: Int32?) throws {
        let dir = try TemporaryDirectory(prefix: "sluice-wal")
        defer { dir.remove() }
        let log = open(dir.path, after: 41, level: level)
        let blocks = [["a", "b"], ["c"], ["日本", ""]]
        for (i, lines) in blocks.enumerated() { #expect(try append(log, lines, id: Int64(i)) == Int64(42 + i)) }
        // Unclosed (a program killed between appends): every block is there, and nothing is reported.
        var back = try read(dir.path)
        #expect(back.lines == blocks && back.sequences == [42, 43, 44] && back.warnings.isEmpty)
        log.close()
        back = try read(dir.path)
        #expect(back.lines == blocks && back.warnings.isEmpty)
    }

    @Test func whichBlocksEachBatchTookIsLoggedBetweenThem() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-wal")
        defer { dir.remove() }
        let log = open(dir.path)
        _ = try append(log, ["a"], id: 1)
        _ = try append(log, ["b"], id: 2)
        #expect(try log.appendAllocation(Time(milliseconds: 1_000), through: 1) == 2)
        _ = try append(log, ["c"], id: 3)
        try log.appendAllocation(Time(milliseconds: 2_000), through: 3)
        let found = try WriteAheadLog.readAll(directory: dir.path, streamId: 7, calls: .live) { _ in }
        #expect(found.blocks.map(\.sequence) == [0, 1, 3] && found.blocks.map(\.id.uniqueId) == [1, 2, 3])
        #expect(found.blocks.allSatisfy { $0.id.streamId == 7 })
        #expect(found.allocations == [
            LoggedAllocation(sequence: 2, time: Time(milliseconds: 1_000), through: 1),
            LoggedAllocation(sequence: 4, time: Time(milliseconds: 2_000), through: 3),
        ])
    }

    @Test func aTornTailRecordIsDroppedAndReported() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-wal")
        defer { dir.remove() }
        let log = open(dir.path)
        _ = try append(log, ["one"], id: 1)
        _ = try append(log, ["two", "three"], id: 2)
        let segment = try #require(segments(dir.path).first)
        let whole = size(segment)
        _ = try append(log, (0..<100).map { "line \($0)" }, id: 3)
        // A crash in the middle of the third record's write (cut shorter and shorter), then a tail of zeros.
        for cut in [size(segment) - 1, whole + 40, whole + 5, whole + 4_000] {
            #expect(truncate(segment, off_t(cut)) == 0)
            let back = try read(dir.path)
            #expect(back.lines == [["one"], ["two", "three"]], "cut at \(cut)")
            #expect(back.warnings.count == 1 && back.warnings.first?.contains("offset \(whole)") == true, "\(back.warnings)")
        }
    }

    @Test func aCorruptRecordInTheMiddleIsAnErrorNamingFileAndOffset() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-wal")
        defer { dir.remove() }
        let log = open(dir.path)
        _ = try append(log, ["first"], id: 1)
        let segment = try #require(segments(dir.path).first)
        let second = size(segment)
        _ = try append(log, (0..<50).map { "second \($0)" }, id: 2)
        _ = try append(log, ["third"], id: 3)
        log.close()
        // Flip one bit inside the second record's payload.
        var bytes = try SystemCalls.live.readFile(segment)
        bytes[second + 40] ^= 0x10
        let fd = Glibc.open(segment, O_WRONLY | O_TRUNC)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        do {
            _ = try read(dir.path)
            Issue.record("a corrupt record in the middle of the log was not reported")
        } catch let error as StreamingError {
            #expect(error.code == .checkpointFailed)
            #expect("\(error)".contains(segment) && "\(error)".contains("offset \(second)"), "\(error)")
        }
    }

    @Test func segmentsRollAndOnlyCoveredOnesAreCleaned() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-wal")
        defer { dir.remove() }
        let log = open(dir.path, roll: .milliseconds(1))
        for i in 0..<5 {
            _ = try append(log, ["b\(i)"], id: Int64(i))
            usleep(3_000)
        }
        #expect(segments(dir.path).count == 5)
        log.clean(through: 2)  // blocks 0, 1, 2 are in a checkpoint
        #expect(try read(dir.path).sequences == [3, 4])
        log.clean(through: 10)  // the segment being written stays
        #expect(try read(dir.path).sequences == [4])
    }

    @Test func aLogReopenedBesideAnEmptySegmentNeverReusesItsName() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-wal")
        defer { dir.remove() }
        // A program killed just after starting a segment leaves it without records.
        let first = open(dir.path)
        _ = try append(first, ["kept"], id: 1)
        first.close()
        let empty = "\(dir.path)/log-1"
        let fd = Glibc.open(empty, O_WRONLY | O_CREAT, 0o644)
        close(fd)
        let found = try WriteAheadLog.readAll(directory: dir.path, streamId: 0, calls: .live) { _ in }
        let second = WriteAheadLog(
            directory: dir.path, after: found.blocks.last?.sequence ?? -1, existing: found.segments, calls: .live,
            level: 1, fsync: true, rollInterval: .seconds(60), maxFailures: 3)
        #expect(try append(second, ["new"], id: 2) == 2, "the new segment starts after the empty one's name")
        second.clean(through: 1)  // the old segments, the empty one included, are covered
        #expect(try read(dir.path).lines == [["new"]], "the new segment survives the cleaning")
    }

    @Test func aFullDiskFailsTheAppendAndKeepsWhatWasLogged() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-wal")
        defer { dir.remove() }
        let faulty = FaultySystemCalls()
        let log = open(dir.path, calls: faulty.calls)
        _ = try append(log, ["kept"], id: 1)
        faulty.diskFull(after: faulty.bytesWritten + 10)
        do {
            _ = try append(log, (0..<1_000).map { "lost \($0)" }, id: 2)
            Issue.record("an append to a full disk succeeded")
        } catch let error as StreamingError {
            #expect(error.code == .checkpointFailed && "\(error)".contains("after 3 attempts"), "\(error)")
            #expect("\(error)".contains("No space left"), "\(error)")
        }
        #expect(try read(dir.path).lines == [["kept"]])
    }

    /// The same on a real filesystem that fills (a 256 KB tmpfs): the append that does not fit fails naming the
    /// log's directory and the cause, what was logged before reads back, and appends succeed again once space
    /// frees (the mount grown), in a new segment.
    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root (CI runs as root)"))
    func aFilesystemThatFillsFailsTheAppendAndTheLogResumesWhenSpaceFrees() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-wal-tmpfs")
        defer { dir.remove() }
        try mountTmpfs(at: dir.path, "size=256k")
        defer { unmountTmpfs(at: dir.path) }
        let log = open(dir.path, level: nil)  // stored as they are: the big block cannot shrink to fit
        defer { log.close() }
        #expect(try append(log, ["kept 1", "kept 2"], id: 1) == 0)
        let big = (0..<20_000).map { "does not fit \($0) " + String(repeating: "x", count: 24) }
        do {
            _ = try append(log, big, id: 2)
            Issue.record("a 900 KB append to a 256 KB filesystem succeeded")
        } catch let error as StreamingError {
            #expect("\(error)".contains(dir.path) && "\(error)".contains("No space left on device"), "\(error)")
        }
        #expect(try read(dir.path).lines == [["kept 1", "kept 2"]], "what was logged before the disk filled")
        try mountTmpfs(at: dir.path, "remount,size=16m")
        let sequence = try append(log, ["after"], id: 3)
        let back = try read(dir.path)
        #expect(back.lines == [["kept 1", "kept 2"], ["after"]], "warnings: \(back.warnings)")
        #expect(back.sequences.last == sequence)
    }

    /// A flush must not hold the append lock: while one appender waits for its fsync, another's record reaches
    /// the file. (Failed before the flush moved out of the lock: the second write waited for the fsync.)
    @Test func appendsGoOnWhileAFlushWaitsForTheDisk() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-wal")
        defer { dir.remove() }
        let gate = FsyncGate()
        var calls = SystemCalls.live
        let live = SystemCalls.live
        calls.fsync = { fd in
            if isRegularFile(fd) { gate.holdFirst() }  // not the directory's flush of a new segment's name
            return live.fsync(fd)
        }
        calls.write = { fd, bytes in
            gate.wrote()
            return live.write(fd, bytes)
        }
        let log = open(dir.path, calls: calls)
        let first = try JoinableThread(name: "first appender") { _ = try? append(log, ["first"], id: 1) }
        #expect(gate.waitUntilHeld(), "the first append never reached its fsync")
        let writesDuringFlush = gate.writes
        let second = try JoinableThread(name: "second appender") { _ = try? append(log, ["second"], id: 2) }
        let overlapped = gate.waitForWrites(moreThan: writesDuringFlush, seconds: 2)
        gate.release()
        first.join()
        second.join()
        #expect(overlapped, "the second append could not write while the first one's fsync ran")
        #expect(try read(dir.path).lines == [["first"], ["second"]])
    }

    /// A failed fsync fails the appends it covered; the append is retried in a new segment and, read back, the
    /// block is there.
    @Test func aFailedFlushIsRetriedInANewSegment() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-wal")
        defer { dir.remove() }
        let failures = Mutex(0)
        var calls = SystemCalls.live
        let live = SystemCalls.live
        calls.fsync = { fd in
            let fail = isRegularFile(fd) && failures.withLock { n -> Bool in
                defer { n -= 1 }
                return n > 0
            }
            return fail ? (-1, EIO) : live.fsync(fd)
        }
        let log = open(dir.path, calls: calls)
        #expect(try append(log, ["a"], id: 1) == 0)
        failures.withLock { $0 = 1 }
        #expect(try append(log, ["b"], id: 2) == 2, "the retry is the log's third record")
        #expect(try append(log, ["c"], id: 3) == 3)
        log.close()
        #expect(segments(dir.path).count == 2, "the segment whose flush failed is closed")
        // The first "b" (whose flush failed) may be read back too; replay keeps the last record of a block.
        let back = try read(dir.path)
        #expect(back.lines == [["a"], ["b"], ["b"], ["c"]] && back.sequences == [0, 1, 2, 3])
    }
    /// A record whose row count does not fit an `Int` (checksums intact) is an error naming the segment and
    /// what was wrong, never a trap. (Trapped before the checked reads.)
    @Test func aRecordCountAboveIntMaxIsAnErrorNotATrap() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-wal")
        defer { dir.remove() }
        var file = try FramedFileWriter(creating: "\(dir.path)/log-0", level: nil)
        var record = try BinaryWriter()
        record.writeVarInt(0)  // sequence
        record.writeByte(WriteAheadLog.blockRecord)
        record.writeVarInt(1)  // unique id
        record.writeVarUInt(UInt64.max)  // rows
        try record.buffer.withUnsafeBytes { try file.append($0) }
        try file.finish()
        do {
            _ = try read(dir.path)
            Issue.record("a record claiming UInt64.max rows was read")
        } catch {
            #expect("\(error)".contains("record count") && "\(error)".contains("log-0"), "\(error)")
        }
    }
}

func isRegularFile(_ fd: Int32) -> Bool {
    var info = stat()
    return fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}

/// Holds the first fsync until released, and counts writes.
final class FsyncGate: Sendable {
    private struct State {
        var held = false
        var released = false
        var writes = 0
    }
    private let state = Mutex(State())

    func holdFirst() {
        let hold = state.withLock { s -> Bool in
            defer { s.held = true }
            return !s.held
        }
        guard hold else { return }
        let deadline = monotonicNanoseconds() + 5_000_000_000
        while !state.withLock({ $0.released }) && monotonicNanoseconds() < deadline { usleep(1_000) }
    }

    func wrote() { state.withLock { $0.writes += 1 } }
    var writes: Int { state.withLock { $0.writes } }
    func release() { state.withLock { $0.released = true } }

    func waitUntilHeld() -> Bool { poll(seconds: 5) { $0.held } }
    func waitForWrites(moreThan n: Int, seconds: Double) -> Bool { poll(seconds: seconds) { $0.writes > n } }

    private func poll(seconds: Double, _ done: (State) -> Bool) -> Bool {
        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        while monotonicNanoseconds() < deadline {
            if state.withLock({ done($0) }) { return true }
            usleep(1_000)
        }
        return false
    }
}
