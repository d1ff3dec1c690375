import Glibc
import SluiceColumnar
import Synchronization
import Testing
@testable import Sluice
import SluiceTesting

/// Received blocks under `sluice.memory.limit`: a fast sender and a slow job, on the real clock. Blocks that do
/// not fit spill (storage levels with disk) or wait while the receiver stops reading (memory-only levels); either
/// way every line arrives once and the receive category stays within the limit.
@Suite struct ReceiveMemoryTests {
    static let limit = 64 << 20
    /// 524,288 lines of 1 KiB: 512 MiB, eight times the limit.
    static let lines = 1 << 19
    /// What the process may grow by: the limit, plus what is not budgeted (two block builders, buffers being
    /// written to the log or a spill file, the job's decoded chunks), plus other suites' tests running beside
    /// this one. Unbounded, it grows by more than the 512 MiB sent.
    static let residentGrowthBound = 320 << 20
    static let lineBytes = 1 << 10
    /// Lines per send.
    static let linesPerSend = 64

    struct Outcome {
        var count = 0
        var sum = 0
        var peakReceive = 0
        var peakReserved = 0
        var residentGrowth = 0
        var events: [String] = []
        var spill: SpillStatistics?
        var spillFilesAfterStop: [String] = []
    }

    /// Line `i`: its number, a space, then filler up to `lineBytes`.
    static func line(_ i: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: UInt8(ascii: "a") &+ UInt8(i % 26), count: lineBytes)
        let number = Array("\(i) ".utf8)
        bytes.replaceSubrange(0..<number.count, with: number)
        bytes[lineBytes - 1] = UInt8(ascii: "\n")
        return bytes
    }

    /// Sends every line as fast as the socket takes them, while a job that sleeps 300 ms a batch counts them.
    func run(storageLevel: StorageLevel, writeAheadLog: Bool) throws -> Outcome {
        let server = try LoopbackServer()
        let checkpoint = try TemporaryDirectory(prefix: "receive-memory")
        defer { checkpoint.remove() }
        var conf = StreamingConf().setMaster("local[2]")
            .set("sluice.memory.limit", "\(Self.limit)")
            .set("spark.streaming.blockInterval", "50ms")
        if writeAheadLog {
            conf = conf.set("spark.streaming.receiver.writeAheadLog.enable", "true").set("sluice.wal.fsync", "never")
        }
        let ssc = try StreamingContext(conf: conf, batchDuration: .milliseconds(200))
        if writeAheadLog { ssc.checkpoint(checkpoint.path) }
        let events = ReceiverEvents()
        ssc.addStreamingListener(events)
        let totals = Mutex((count: 0, sum: 0))
        ssc.socketTextStream("127.0.0.1", server.port, storageLevel: storageLevel).foreachRDD { rdd in
            // Counted without holding the lines: the job's own memory is not what is measured.
            let (count, sum) = try rdd.map { line -> (Int, Int) in
                guard line.utf8.count == Self.lineBytes - 1, let n = Int(line.prefix { $0 != " " }) else { return (1, -1) }
                return (1, n)
            }.fold((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
            totals.withLock { t in
                t.count += count
                t.sum += sum
            }
            if count > 0 { usleep(300_000) }  // slow while there is data; empty batches do not pile up
        }
        let before = residentBytes()
        try ssc.start()
        let connection = try #require(server.accept())
        let peaks = Mutex((receive: 0, reserved: 0, resident: 0))
        let sampler = try JoinableThread(name: "memory sampler") {
            while totals.withLock({ $0.count }) < Self.lines && ssc.error == nil {
                let receive = ssc.engine.memory.reservedByCategory[.receive] ?? 0
                let reserved = ssc.engine.memory.reservedBytes
                let resident = residentBytes()
                peaks.withLock { p in
                    p = (max(p.receive, receive), max(p.reserved, reserved), max(p.resident, resident))
                }
                usleep(5_000)
            }
        }
        for first in stride(from: 0, to: Self.lines, by: Self.linesPerSend) {
            try connection.send((first..<(first + Self.linesPerSend)).flatMap(Self.line))
        }
        let deadline = monotonicNanoseconds() + 120_000_000_000 as UInt64
        while totals.withLock({ $0.count }) < Self.lines && ssc.error == nil && monotonicNanoseconds() < deadline {
            usleep(20_000)
        }
        sampler.join()
        var outcome = Outcome()
        outcome.spill = ssc.engine.spillStatistics
        ssc.stop()
        connection.close()
        ssc.waitForListeners()
        (outcome.count, outcome.sum) = totals.withLock { ($0.count, $0.sum) }
        (outcome.peakReceive, outcome.peakReserved) = peaks.withLock { ($0.receive, $0.reserved) }
        outcome.residentGrowth = peaks.withLock { $0.resident } - before
        outcome.events = events.all
        outcome.spillFilesAfterStop = ssc.engine.spill.liveFiles
        #expect(ssc.error == nil, "\(String(describing: ssc.error))")
        #expect(ssc.engine.memory.reservedByCategory[.receive] == nil, "every received block gave its memory back")
        return outcome
    }

    /// What both kinds of stream promise: every line once, received blocks within the limit, bounded RSS.
    func expectEveryLineOnceWithinTheLimit(_ outcome: Outcome) {
        #expect(outcome.count == Self.lines, "every line arrives once")
        #expect(outcome.sum == Self.lines * (Self.lines - 1) / 2, "every line arrives once")
        #expect(outcome.peakReceive <= Self.limit, "received blocks held \(outcome.peakReceive >> 20) MB")
        #expect(outcome.residentGrowth < Self.residentGrowthBound, "memory grew by \(outcome.residentGrowth >> 20) MB")
    }

    @Test func aMemoryOnlyStreamPausesItsReceiverAndLosesNothingWithTheLogOn() throws {
        try StreamTest.exclusively {
            let outcome = try run(storageLevel: .memoryOnlySer, writeAheadLog: true)
            expectEveryLineOnceWithinTheLimit(outcome)
            #expect(outcome.peakReserved <= Self.limit)
            #expect(outcome.events.contains { $0.contains("Receiving paused") }, "\(outcome.events)")
            #expect(outcome.spill?.filesWritten == 0, "memory-only blocks never spill")
        }
    }

    @Test func aStreamWhoseLevelUsesDiskSpillsWhatDoesNotFitAndReadsItBack() throws {
        try StreamTest.exclusively {
            let outcome = try run(storageLevel: .memoryAndDiskSer2, writeAheadLog: false)
            expectEveryLineOnceWithinTheLimit(outcome)
            let spill = try #require(outcome.spill)
            #expect(spill.filesWritten > 0 && spill.bytesReadBack > 0, "\(spill)")
            #expect(outcome.spillFilesAfterStop.isEmpty, "spill files of dropped blocks are removed")
            #expect(!outcome.events.contains { (event: String) in event.contains("Receiving paused") }, "spilling keeps the receiver going")
        }
    }

    @Test func aCompletedBatchReportsMemoryPerCategory() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: StreamingConf().setMaster("local[2]"), batchDuration: .seconds(1), clock: clock)
            let batches = BatchMemory()
            ssc.addStreamingListener(batches)
            let stream = ssc.receiverStream(ListReceiver(Array(0..<1_000)))
            stream.map { ($0 % 10, 1) }.updateStateByKey { (values: [Int], state: Int?) in
                (state ?? 0) + values.reduce(0, +)
            }.foreachRDD { rdd in _ = try rdd.count() }
            stream.window(windowDuration: .seconds(3)).foreachRDD { rdd in _ = try rdd.count() }
            let checkpoint = try TemporaryDirectory(prefix: "memory-categories")
            defer { checkpoint.remove() }
            ssc.checkpoint(checkpoint.path)
            try ssc.start()
            driveReceiving(ssc, clock) {
                batches.all.contains { ($0[.receive] ?? 0) > 0 && ($0[.state] ?? 0) > 0 && ($0[.window] ?? 0) > 0 }
            }
            ssc.stop()
            let seen = batches.all
            #expect(seen.contains { ($0[.receive] ?? 0) > 0 }, "\(seen)")
            #expect(seen.contains { ($0[.state] ?? 0) > 0 }, "\(seen)")
            #expect(seen.contains { ($0[.window] ?? 0) > 0 }, "\(seen)")
        }
    }
}

/// A receiver that stores a list once, one record at a time.
final class ListReceiver: Receiver<Int>, @unchecked Sendable {
    let values: [Int]
    init(_ values: [Int]) {
        self.values = values
        super.init(storageLevel: .memoryOnlySer)
    }

    override func onStart() {
        try? DetachedThread.run("list receiver") { [self] in
            for value in values { try? store(value) }
        }
    }
}

/// Collects each completed batch's memory per category.
final class BatchMemory: StreamingListener {
    private let seen = Mutex<[[MemoryCategory: Int]]>([])
    var all: [[MemoryCategory: Int]] { seen.withLock { $0 } }
    func onBatchCompleted(_ batch: BatchInfo) {
        if let memory = batch.memoryByCategory { seen.withLock { $0.append(memory) } }
    }
}

/// The block generator under a budget with no room, on a manual clock.
@Suite struct BlockGeneratorMemoryTests {
    /// Pushed blocks are kept (as a stream keeps them until their batch goes), so they keep their memory.
    func setUp(limit: Int, level: StorageLevel) throws -> (ManualClock, PushedBlocks, BlockGenerator<Int>, ExecutionEngine) {
        let clock = ManualClock(startTime: Time(milliseconds: 1_000))
        let pushed = PushedBlocks()
        let kept = Collected<ReceivedBlock<Int>>()
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 1), memory: MemoryBudget(limit: limit))
        let generator = BlockGenerator<Int>(
            streamId: 4, interval: .milliseconds(200), queueCapacity: 10,
            limiter: RateLimiter(maxRate: nil, initialRate: nil), clock: clock,
            memory: ReceiveMemory(engine: engine, streamId: 4, storageLevel: level),
            push: {
                try pushed.push($0)
                kept.append($0)
            }, onError: { _, _ in })
        return (clock, pushed, generator, engine)
    }

    /// A 1 MiB budget someone else holds whole (the reservation returned); the generator started, `records`
    /// added and its first block cut.
    func startWithNoRoom(level: StorageLevel, records: Int) throws
        -> (ManualClock, PushedBlocks, BlockGenerator<Int>, ExecutionEngine, MemoryReservation)
    {
        let (clock, pushed, generator, engine) = try setUp(limit: 1 << 20, level: level)
        let other = engine.memory.reservation(for: "someone else")
        try other.grow(by: 1 << 20)
        try generator.start()
        try generator.add(contentsOf: Array(0..<records))
        clock.set(to: Time(milliseconds: 1_200))
        return (clock, pushed, generator, engine, other)
    }

    @Test func aBlockWaitsForMemoryWhileAddingPausesAndGoesOnWhenMemoryFrees() throws {
        let (clock, pushed, generator, engine, other) = try startWithNoRoom(level: .memoryOnlySer, records: 100)
        usleep(100_000)
        #expect(pushed.all.isEmpty, "the block waits for memory")
        // Adding waits too: a second thread's add returns only once memory frees.
        let added = Collected<Int>()
        let adder = try JoinableThread(name: "adder") {
            try? generator.add(100)
            added.append(100)
        }
        usleep(100_000)
        #expect(added.values.isEmpty, "adding pauses while a block waits")
        #expect(generator.waitUntilPushed(through: clock.time, timeoutMilliseconds: 1_000), "a batch does not wait for it")
        other.free()
        #expect(eventually { pushed.all.count == 1 && added.values == [100] })
        adder.join()
        #expect(engine.memory.reservedByCategory[.receive] ?? 0 > 0, "the block holds its bytes")
        clock.set(to: Time(milliseconds: 1_400))
        generator.stop()
        #expect(pushed.elements == Array(0...100))
    }

    @Test func stoppingKeepsAWaitingBlockOverTheBudgetRatherThanWaitOrLoseIt() throws {
        let (_, pushed, generator, engine, other) = try startWithNoRoom(level: .memoryOnlySer, records: 100)
        defer { withExtendedLifetime(other) {} }  // the budget stays full
        usleep(100_000)
        #expect(pushed.all.isEmpty, "the block waits for memory")
        generator.stop()
        #expect(pushed.elements == Array(0..<100), "everything added before stop() is pushed")
        #expect(engine.memory.reservedBytes > engine.memory.limit, "kept over the budget, and shown")
    }

    /// Under a 4 MiB limit a block gathers at most 1 MiB: a burst waits for the next tick instead of making a
    /// block larger than the budget.
    @Test func aBlockStopsGrowingAtAQuarterOfTheLimit() throws {
        let (clock, pushed, generator, _) = try setUp(limit: 4 << 20, level: .memoryOnlySer)
        try generator.start()
        let perAdd = 8_192
        let adds = 48  // 3 MiB of Ints
        let adder = try JoinableThread(name: "burst") {
            for a in 0..<adds { try? generator.add(contentsOf: Array((a * perAdd)..<((a + 1) * perAdd))) }
        }
        var tick = 1_000
        while pushed.elements.count < adds * perAdd && tick < 100_000 {
            usleep(20_000)
            tick += 200
            clock.set(to: Time(milliseconds: Int64(tick)))
        }
        adder.join()
        generator.stop()
        #expect(pushed.elements == Array(0..<(adds * perAdd)), "nothing lost, in order")
        let largest = pushed.all.map(\.1.count).max() ?? 0
        #expect(largest <= (1 << 20) / 8 + perAdd, "the largest block held \(largest) Ints")
        #expect(pushed.all.count >= 3)
    }

    @Test func aStreamThatUsesDiskSpillsTheBlockAndReadsItBack() throws {
        let (_, pushed, generator, engine, other) = try startWithNoRoom(level: .memoryAndDiskSer, records: 1_000)
        defer { withExtendedLifetime(other) {} }  // the budget stays full
        #expect(eventually { pushed.all.count == 1 }, "spilled, not waiting")
        #expect(engine.spillStatistics.filesWritten == 1)
        #expect(pushed.elements == Array(0..<1_000), "read back whole")
        generator.stop()
    }
}
