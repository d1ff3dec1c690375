import Glibc
import SluiceColumnar
import SluiceExecution
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

@Suite struct CheckpointTests {
    static func sample(time: Int64) -> Checkpoint {
        Checkpoint(
            batchDuration: .seconds(1), zeroTime: Time(milliseconds: 0), time: Time(milliseconds: time),
            pendingTimes: [Time(milliseconds: time + 1_000)],
            graph: GraphDescription(
                streams: [
                    .init(id: 0, kind: "queueStream", slide: .seconds(1), parents: [], detail: ""),
                    .init(id: 1, kind: "updateStateByKey", slide: .seconds(1), parents: [0], detail: "2 partitions"),
                ], outputCount: 1),
            conf: ["spark.master": "local[2]"],
            sections: [1: Array((0..<3_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }), 0: []])
    }

    func write(_ checkpoint: Checkpoint, in directory: String, retained: Int = 10) throws {
        try CheckpointDirectory(path: directory, calls: .live, retained: retained).write(checkpoint, level: 1)
    }

    /// A restored hash-partitioned RDD whose keys hash per process is re-placed by this process's hashing (the
    /// run that wrote it placed them by its own seed); keys with Java's hash code stay where they were written.
    @Test func restoredKeyedBatchesMoveToThisProcesssPartitions() throws {
        // Exclusive: the key's seed is shared with the recovery tests.
        try StreamTest.exclusively {
            typealias Key = RecoveryTests.ReseededKey
            let keys = (0..<40).map { Key(name: "k\($0)") }
            let partitioner = HashPartitioner(numPartitions: 3)
            var written: [[(Key, Int)]] = [[], [], []]
            for (i, key) in keys.enumerated() { written[partitioner.partition(for: key)].append((key, i)) }
            let placedBefore = keys.map { partitioner.partition(for: $0) }
            let partitions0 = written
            let engine = try ExecutionEngine(master: "local[2]")
            let codec = try CheckpointCoding.codec((Key, Int).self, for: "test pairs")
            let rdd = RDD<(Key, Int)>.custom(engine: engine, numPartitions: 3, partitioner: partitioner, lineage: Lineage()) {
                p, sink in try partitions0[p].withUnsafeBufferPointer { try sink($0) }
            }
            var writer = try BinaryWriter()
            try CheckpointCoding.write(rdd, codec, to: &writer)
            let bytes = writer.buffer.withUnsafeBytes { Array($0) }

            Key.seed.add(1, ordering: .relaxed)  // the next process
            #expect(keys.map { partitioner.partition(for: $0) } != placedBefore, "the new seed moves some key")
            let restored = try bytes.withUnsafeBytes { raw in
                try BinaryReader.withReader(raw) { reader in try CheckpointCoding.readRDD(codec, engine: engine, from: &reader) }
            }
            let partitions = try restored.glom().collect()
            #expect(partitions.count == 3 && restored.partitioner == partitioner)
            for (p, partition) in partitions.enumerated() {
                #expect(partition.allSatisfy { partitioner.partition(for: $0.0) == p }, "partition \(p)")
            }
            #expect(partitions.flatMap { $0 }.map(\.1).sorted() == Array(0..<40), "every pair kept, once")
            // Int and String keys are placed by Java's hash code, the same in every process: nothing moves.
            let ints = [[(3, 0)], [(1, 1)], [(2, 2)]]  // deliberately not where Int keys go
            #expect(CheckpointCoding.rehomed(ints, into: 3).map { $0.map(\.0) } == [[3], [1], [2]])
            // Into another number of partitions, every key moves to its place among them.
            for count in [1, 2, 5] {
                let spread = CheckpointCoding.rehomed(ints, into: count)
                let byCount = HashPartitioner(numPartitions: count)
                #expect(spread.count == count && spread.flatMap { $0 }.count == 3)
                #expect(spread.enumerated().allSatisfy { p, part in part.allSatisfy { byCount.partition(for: $0.0) == p } })
                let custom = CheckpointCoding.rehomed(partitions, into: count)
                #expect(custom.enumerated().allSatisfy { p, part in part.allSatisfy { byCount.partition(for: $0.0) == p } })
                #expect(custom.flatMap { $0 }.map(\.1).sorted() == Array(0..<40))
                let states = CheckpointCoding.rehomed([[2: "z"], [3: "x", 1: "y"]], by: byCount)  // as 2 partitions hold them
                #expect(states.count == count && states.map(\.count).reduce(0, +) == 3)
                #expect(states.enumerated().allSatisfy { p, state in state.keys.allSatisfy { byCount.partition(for: $0) == p } })
            }
            #expect(CheckpointCoding.rehomed([["a": 1], ["b": 2]], by: HashPartitioner(numPartitions: 2)) == [["a": 1], ["b": 2]])
            let states: [[Key: Int]] = partitions0.map { Dictionary(uniqueKeysWithValues: $0) }
            let movedStates = CheckpointCoding.rehomed(states, by: partitioner)
            for (p, state) in movedStates.enumerated() {
                #expect(state.keys.allSatisfy { partitioner.partition(for: $0) == p }, "state partition \(p)")
            }
            #expect(movedStates.map(\.count).reduce(0, +) == 40)
        }
    }

    @Test func aCheckpointReadsBackAsWritten() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-ckpt")
        defer { dir.remove() }
        try write(Self.sample(time: 5_000), in: dir.path)
        let back = try #require(try CheckpointDirectory(path: dir.path, calls: .live, retained: 10).latest(warn: { _ in }))
        #expect(back.checkpoint == Self.sample(time: 5_000))
        #expect(back.path == "\(dir.path)/checkpoint-5000")
        #expect(dir.files == ["\(dir.path)/checkpoint-5000"], "no temporary file is left")
    }

    @Test func truncatedOrBitFlippedCheckpointsAreErrorsNeverCrashes() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-ckpt")
        defer { dir.remove() }
        try write(Self.sample(time: 1_000), in: dir.path)
        let path = "\(dir.path)/checkpoint-1000"
        let good = try SystemCalls.live.readFile(path)
        var random = SeededGenerator(seed: 9)
        func check(_ bytes: [UInt8], _ what: String) {
            let fd = open(path, O_WRONLY | O_TRUNC)
            _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
            do {
                let read = try Checkpoint.read(from: path, calls: .live)
                // A flip in a reserved byte no checksum covers changes nothing that is read.
                #expect(read == Self.sample(time: 1_000), "\(what) was read as something else")
            } catch let error as StreamingError {
                #expect(error.code == .checkpointFailed && "\(error)".contains(path), "\(what): \(error)")
            } catch {
                Issue.record("\(what): not a StreamingError: \(error)")
            }
        }
        for length in Set((0..<40).map { _ in Int.random(in: 0..<good.count, using: &random) } + [0, 15, 16, 17]) {
            check(Array(good.prefix(length)), "the first \(length) bytes")
        }
        for _ in 0..<200 {
            var flipped = good
            let at = Int.random(in: 0..<good.count, using: &random)
            flipped[at] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &random)
            check(flipped, "a bit flip at byte \(at)")
        }
    }

    /// Ids and counts that came from a file are checked before they become an `Int`: a well-formed file
    /// (good checksums) whose numbers do not fit is an error naming the number, never a trap. (Trapped before
    /// the checked reads.)
    @Test func idsAndCountsAboveIntMaxAreErrorsNotTraps() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-ckpt")
        defer { dir.remove() }
        let path = "\(dir.path)/checkpoint-1000"
        for (what, huge) in [("section count", 0), ("stream id", 1), ("section's stream id", 2)] {
            var file = try FramedFileWriter(creating: path, level: nil)
            var header = try BinaryWriter()
            header.writeString(Checkpoint.magic)
            header.writeVarUInt(Checkpoint.version)
            for _ in 0..<3 { header.writeVarInt(1_000) }  // batch, zero time, time
            header.writeVarUInt(0)  // pending batches
            header.writeVarUInt(huge == 1 ? 1 : 0)  // streams
            if huge == 1 {
                header.writeVarUInt(UInt64.max)  // its id
                header.writeString("map")
                header.writeVarInt(1_000)
                header.writeVarUInt(0)
                header.writeString("")
            }
            header.writeVarUInt(0)  // outputs
            header.writeVarUInt(0)  // settings
            header.writeVarUInt(huge == 0 ? UInt64.max : (huge == 2 ? 1 : 0))  // sections
            try header.buffer.withUnsafeBytes { try file.append($0) }
            if huge == 2 {
                var section = try BinaryWriter()
                section.writeVarUInt(UInt64(Int.max) + 1)
                try section.buffer.withUnsafeBytes { try file.append($0) }
            }
            try file.finish()
            #expect(throws: StreamingError.self, "a \(what) above Int.max") {
                try Checkpoint.read(from: path, calls: .live)
            }
            do {
                _ = try Checkpoint.read(from: path, calls: .live)
            } catch {
                #expect("\(error)".contains(what) && "\(error)".contains(path), "\(error)")
            }
        }
    }

    @Test func anUnreadableNewestCheckpointFallsBackToThePreviousOneSayingSo() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-ckpt")
        defer { dir.remove() }
        try write(Self.sample(time: 1_000), in: dir.path)
        try write(Self.sample(time: 2_000), in: dir.path)
        #expect(truncate("\(dir.path)/checkpoint-2000", 100) == 0)
        var warnings: [String] = []
        let store = CheckpointDirectory(path: dir.path, calls: .live, retained: 10)
        let back = try #require(try store.latest { warnings.append($0) })
        #expect(back.checkpoint.time == Time(milliseconds: 1_000))
        #expect(warnings.count == 1 && warnings[0].contains("checkpoint-2000") && warnings[0].contains("falling back"))

        #expect(truncate("\(dir.path)/checkpoint-1000", 10) == 0)
        do {
            _ = try store.latest { _ in }
            Issue.record("no readable checkpoint, yet one was returned")
        } catch let error as StreamingError {
            #expect(error.code == .checkpointFailed)
            #expect("\(error)".contains("checkpoint-1000") && "\(error)".contains("checkpoint-2000"), "\(error)")
        }
    }

    @Test func onlyTheNewestCheckpointsAreKept() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-ckpt")
        defer { dir.remove() }
        // What a program killed while writing a checkpoint leaves behind goes with the next write.
        let leftover = "\(dir.path)/.checkpoint-500.tmp"
        let fd = open(leftover, O_CREAT | O_WRONLY, 0o644)
        #expect(fd >= 0 && Glibc.write(fd, "half", 4) == 4 && close(fd) == 0)
        for i in 1...12 { try write(Self.sample(time: Int64(i) * 1_000), in: dir.path, retained: 3) }
        #expect(dir.files.map { String($0.split(separator: "/").last!) } == ["checkpoint-10000", "checkpoint-11000", "checkpoint-12000"])
    }

    // MARK: Through a context

    typealias Build = RecoveryTests.Build

    static let running: Build = { $0.updateStateByKey { (v: [Int], s: Int?) -> Int? in v.reduce(s ?? 0, +) } }

    @Test func aProgramWhoseStreamsChangedGetsTheFirstDifference() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-ckpt")
        defer { dir.remove() }
        let input = RecoveryTests.randomInput(batches: 4, seed: 1)
        try RecoveryTests.run(dir.path, input, through: 3, gracefully: false, into: .init(), build: Self.running)
        let changed: Build = { $0.reduceByKeyAndWindow(+, inverse: -, windowDuration: .seconds(2)) }
        do {
            try RecoveryTests.run(dir.path, input, after: 3, through: 4, gracefully: false, into: .init(), build: changed)
            Issue.record("a changed program recovered from another's checkpoint")
        } catch let error as StreamingError {
            #expect(error.code == .checkpointMismatch)
            #expect(
                "\(error)".contains("the checkpoint has stream 1 (updateStateByKey sliding every 1000 ms, from stream 0) "
                    + "where the program now has stream 1 (reduceByKey"), "\(error)")
        }
        do {
            try StreamTest.exclusively {
                _ = try StreamingContext.getOrCreate(checkpointPath: dir.path) {
                    let ssc = try StreamingContext(conf: StreamingConf(), batchDuration: .seconds(2), clock: ManualClock())
                    Self.running(ssc.queueStream(RDDQueue<(String, Int)>())).print()
                    return ssc
                }
            }
            Issue.record("a program with another batch interval recovered")
        } catch let error as StreamingError {
            #expect(error.code == .checkpointMismatch && "\(error)".contains("batch interval of 1000 ms"), "\(error)")
        }
    }

    @Test func aRecompiledProgramWithNewClosuresCarriesOnFromTheOldCheckpoint() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-ckpt")
        defer { dir.remove() }
        let input: [RecoveryTests.Pairs] = [[("a", 1)], [("a", 2)], [("a", 3)], [("a", 4)]]
        let out = RecoveryTests.Collected()
        let everyBatch = StreamingConf().set("sluice.checkpoint.interval", "1s")
        try RecoveryTests.run(dir.path, input, through: 2, gracefully: false, conf: everyBatch, into: out, build: Self.running)
        // The new version counts ten times each value; the state so far (3) carries on.
        let tenfold: Build = { $0.updateStateByKey { (v: [Int], s: Int?) -> Int? in v.reduce(s ?? 0) { $0 + 10 * $1 } } }
        try RecoveryTests.run(
            dir.path, input, after: 2, through: 4, gracefully: false, conf: everyBatch, into: out, build: tenfold)
        #expect(out.byTime.withLock { $0[4_000] } == ["a=73"])
    }

    @Test func aFullDiskLosesTheCheckpointNotTheStream() throws {
        try StreamTest.exclusively {
            let dir = try TemporaryDirectory(prefix: "sluice-ckpt")
            defer { dir.remove() }
            let faulty = FaultySystemCalls()
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: StreamingConf().setMaster("local[2]"), batchDuration: .seconds(1), clock: clock,
                systemCalls: faulty.calls)
            defer { ssc.stop() }
            ssc.checkpoint(dir.path)
            let sums = Mutex<[Int]>([])
            Self.running(ssc.sequenceStream((1...4).map { [("k", $0)] })).foreachRDD { rdd in
                let value = try rdd.collect().first?.1 ?? 0
                sums.withLock { $0.append(value) }
            }
            try ssc.start()
            clock.set(to: Time(milliseconds: 1_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 1_000), timeout: .seconds(30)))
            #expect(ssc.lastCheckpointTime == Time(milliseconds: 1_000))
            faulty.diskFull(after: faulty.bytesWritten)
            for t in 2...4 {
                clock.set(to: Time(milliseconds: Int64(t) * 1_000))
                #expect(ssc.waitUntilBatchHandled(Time(milliseconds: Int64(t) * 1_000), timeout: .seconds(30)))
            }
            #expect(ssc.error == nil)
            #expect(sums.withLock { $0 } == [1, 3, 6, 10], "the stream goes on")
            #expect(ssc.lastCheckpointTime == Time(milliseconds: 1_000), "no later checkpoint could be written")
            let left = try #require(try CheckpointDirectory(path: dir.path, calls: .live, retained: 10).latest { _ in })
            #expect(left.checkpoint.time == Time(milliseconds: 1_000))
            #expect(dir.files == ["\(dir.path)/checkpoint-1000"], "no half-written file is left")
        }
    }

    @Test func aGracefulStopWritesAFinalCheckpoint() throws {
        try StreamTest.exclusively {
            let dir = try TemporaryDirectory(prefix: "sluice-ckpt")
            defer { dir.remove() }
            let ssc = try StreamingContext(
                conf: StreamingConf().setMaster("local[2]").set("sluice.checkpoint.interval", "10s"),
                batchDuration: .milliseconds(50))
            ssc.checkpoint(dir.path)
            Self.running(ssc.sequenceStream((1...100).map { [("k", $0)] })).print(0)
            ssc.console.withLock { $0 = { _ in } }
            try ssc.start()
            usleep(300_000)
            ssc.stop(gracefully: true)
            let last = try #require(ssc.generator.lastGenerated)
            #expect(ssc.lastCheckpointTime == last, "the last batch is checkpointed despite the 10 s interval")
            let files = try #require(try CheckpointDirectory(path: dir.path, calls: .live, retained: 10).latest { _ in })
            #expect(files.checkpoint.time == last)
        }
    }

    @Test func settingsThatCannotWorkAreErrorsAtStart() throws {
        try StreamTest.exclusively {
            let wal = try StreamingContext(
                conf: StreamingConf().setMaster("local[2]").set("spark.streaming.receiver.writeAheadLog.enable", "true"),
                batchDuration: .seconds(1), clock: ManualClock())
            wal.socketTextStream("127.0.0.1", 9).print()
            #expect { try wal.start() } throws: { "\($0)".contains("writeAheadLog.enable needs a checkpoint directory") }
        }
        try StreamTest.exclusively {
            let custom = try StreamingContext(
                conf: StreamingConf().set("spark.streaming.receiver.writeAheadLog.class", "com.example.MyLog"),
                batchDuration: .seconds(1), clock: ManualClock())
            custom.sequenceStream([[1]]).print()
            #expect { try custom.start() } throws: {
                "\($0)".contains("spark.streaming.receiver.writeAheadLog.class") && "\($0)".contains("com.example.MyLog")
            }
        }
        struct Opaque: Sendable { let x: Int }
        try StreamTest.exclusively {
            let ssc = try StreamingContext(conf: StreamingConf(), batchDuration: .seconds(1), clock: ManualClock())
            ssc.checkpoint("/tmp/sluice-unused")
            ssc.sequenceStream([[("k", 1)]]).updateStateByKey { (_: [Int], _: Opaque?) -> Opaque? in Opaque(x: 1) }.print()
            #expect { try ssc.start() } throws: {
                "\($0)".contains("the state of updateStateByKey stream 1 cannot be checkpointed") && "\($0)".contains("Opaque")
            }
        }
    }
}

/// Checkpoints on a real full disk (a 64 KiB tmpfs; mounting needs root, as in CI).
@Suite(.serialized) struct CheckpointDiskFullTests {
    /// Batch `b`'s records: 100 new keys, each with 200 random letters (so that compression cannot shrink the
    /// state below the disk).
    static func batch(_ b: Int) -> [(Int, String)] {
        var random = SeededGenerator(seed: UInt64(b))
        return (b * 100..<(b + 1) * 100).map { key in
            (key, String((0..<200).map { _ in Character(Unicode.Scalar(UInt8.random(in: 97...122, using: &random))) }))
        }
    }

    /// The program: the latest text per key, checkpointed every batch.
    static func program(_ ssc: StreamingContext, _ input: [[(Int, String)]], record: @escaping @Sendable (Int, Int) -> Void) {
        let batches: [[(Int, String)]?] = input
        ssc.sequenceStream(batches)
            .updateStateByKey { (values: [String], state: String?) -> String? in values.last ?? state }
            .checkpoint(.seconds(1))
            .foreachRDD { rdd, time in record(Int(time.milliseconds / 1_000), try rdd.count()) }
    }

    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root (CI runs as root)"))
    func aFullDiskLosesNoCheckpointAndCheckpointingResumesWhenSpaceFrees() throws {
        let logs = CapturedLogs.shared
        let dir = try TemporaryDirectory(prefix: "sluice-checkpoint-tmpfs")
        defer { dir.remove() }
        try mountTmpfs(at: dir.path, "size=64k")
        defer { unmountTmpfs(at: dir.path) }
        let input = (0..<12).map(Self.batch)
        let conf = StreamingConf().setMaster("local[2]").set("spark.ui.enabled", "false").set("sluice.checkpoint.retained", "2")
        let (before, after, last) = try StreamTest.exclusively { () -> (Int64?, Int64?, Time?) in
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            ssc.checkpoint(dir.path)
            Self.program(ssc, input) { _, _ in }
            try ssc.start()
            for second in Int64(1)...8 {
                clock.set(to: Time(milliseconds: second * 1_000))
                #expect(ssc.waitUntilBatchHandled(clock.time, timeout: .seconds(30)))
            }
            let before = ssc.lastCheckpointTime?.milliseconds
            // Space frees (the same mount, grown): the next batches' checkpoints are written again.
            try mountTmpfs(at: dir.path, "remount,size=16m")
            for second in Int64(9)...10 {
                clock.set(to: Time(milliseconds: second * 1_000))
                #expect(ssc.waitUntilBatchHandled(clock.time, timeout: .seconds(30)))
            }
            let last = ssc.lastCheckpointTime
            ssc.stop()
            #expect(ssc.error == nil, "the job ran on: \(String(describing: ssc.error))")
            return (before, last?.milliseconds, last)
        }
        let failures = logs.matching("not written").filter { $0.message.contains(dir.path) }
        #expect(failures.contains { $0.level == .error && $0.message.contains("No space left on device") }, "\(failures)")
        let stuck = try #require(before)
        #expect(stuck < 8_000, "the last checkpoint written on the full disk is an earlier batch's")
        #expect(after == 10_000, "checkpoints resumed once space freed")
        // A restart recovers batch 10's state: every key of batches 0 to 10 (sequenceStream's batch 1 is input 0).
        let seen = Collected<(Int, Int)>()
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext.getOrCreate(checkpointPath: dir.path) {
                let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
                Self.program(ssc, input) { second, count in seen.append((second, count)) }
                return ssc
            }
            try ssc.start()
            clock.set(to: Time(milliseconds: 11_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 11_000), timeout: .seconds(30)))
            ssc.stop()
        }
        #expect(last == Time(milliseconds: 10_000))
        #expect(seen.values.first { $0.0 == 11 }?.1 == 1_100, "the state of 10 batches plus batch 11's keys: \(seen.values)")
    }
}
