import Glibc
import Synchronization
import Testing
@testable import Sluice
import SluiceTesting

/// Receiver events and batches a listener saw.
final class ReceiverEvents: StreamingListener {
    private let events = Mutex<[String]>([])
    private let batches = Mutex<[BatchInfo]>([])
    func onReceiverStarted(_ receiver: ReceiverInfo) { events.withLock { $0.append("started") } }
    func onReceiverError(_ receiver: ReceiverInfo) { events.withLock { $0.append("error: \(receiver.lastErrorMessage)") } }
    func onReceiverStopped(_ receiver: ReceiverInfo) { events.withLock { $0.append("stopped") } }
    func onBatchCompleted(_ batch: BatchInfo) { batches.withLock { $0.append(batch) } }
    var all: [String] { events.withLock { $0 } }
    var completed: [BatchInfo] { batches.withLock { $0 } }
}

/// Stores `count` numbers one at a time, then `block` as one block, then waits to be stopped.
final class NumbersReceiver: Receiver<Int>, @unchecked Sendable {
    let count: Int
    let block: [Int]
    let starts = Mutex(0)
    let stops = Mutex(0)
    let failOnFirstStart: Bool

    init(count: Int, block: [Int], failOnFirstStart: Bool = false) {
        self.count = count
        self.block = block
        self.failOnFirstStart = failOnFirstStart
        super.init(storageLevel: .memoryAndDiskSer2)
    }

    override func onStart() {
        let start = starts.withLock { $0 += 1; return $0 }
        do {
            try DetachedThread.run("test receiver") { [self] in
                if failOnFirstStart && start == 1 {
                    try? store(-1)
                    restart("boom on the first start")
                    return
                }
                do {
                    for i in 0..<count { try store(i) }
                    try store(contentsOf: block)
                } catch {
                    reportError("store failed", error)
                }
            }
        } catch {
            restart("no thread", error: error)
        }
    }

    override func onStop() { stops.withLock { $0 += 1 } }
}

/// Runs batches on a manual clock, letting receivers work in real time between them, until `done` or
/// `maxBatches`; returns the batches run.
@discardableResult
func driveReceiving(
    _ ssc: StreamingContext, _ clock: ManualClock, batch: Duration = .seconds(1), maxBatches: Int = 200,
    until done: () -> Bool
) -> Int {
    for n in 1...maxBatches {
        usleep(20_000)
        clock.advance(by: batch)
        _ = ssc.waitUntilBatchHandled(clock.time, timeout: .seconds(30))
        if done() { return n }
    }
    return maxBatches
}

@Suite struct ReceiverTests {
    func context(_ clock: ManualClock, _ conf: StreamingConf = StreamingConf()) throws -> StreamingContext {
        try StreamingContext(
            conf: conf.setMaster("local[2]").set("spark.streaming.receiverRestartDelay", "50ms"),
            batchDuration: .seconds(1), clock: clock)
    }

    @Test func everyRecordAReceiverStoresArrivesOnceAndInputInfosCountThem() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try context(clock)
            let events = ReceiverEvents()
            ssc.addStreamingListener(events)
            let receiver = NumbersReceiver(count: 3_000, block: Array(10_000..<10_500))
            let stream = ssc.receiverStream(receiver)
            let seen = Collected<Int>()
            stream.map { $0 * 2 }.foreachRDD { rdd in for x in try rdd.collect() { seen.append(x) } }
            let counted = Collected<Int>()
            stream.count().foreachRDD { rdd in for n in try rdd.collect() { counted.append(n) } }
            try ssc.start()
            #expect(receiver.streamId == stream.streamId)
            driveReceiving(ssc, clock) { seen.values.count >= 3_500 }
            ssc.stop()
            #expect(seen.values.sorted() == (Array(0..<3_000) + Array(10_000..<10_500)).map { $0 * 2 })
            #expect(counted.values.reduce(0, +) == 3_500, "the batches' counts: \(counted.values)")
            ssc.waitForListeners()
            #expect(events.completed.reduce(0) { $0 + ($1.streamIdToInputInfo[stream.streamId]?.numRecords ?? 0) } == 3_500)
            #expect(events.all.first == "started" && events.all.last == "stopped")
            #expect(receiver.stops.withLock { $0 } == 1 && receiver.isStopped)
            #expect(throws: StreamingError.self) { try receiver.store(1) }
        }
    }

    /// With `sluice.receiver.maxBlockBytes` small, an interval's records come in several blocks (partitions of
    /// the batch), and every record still arrives once, in the order stored.
    @Test func blocksPastTheMaximumSizeAreCutWithinTheirIntervalAndLoseNothing() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try context(clock, StreamingConf().set("sluice.receiver.maxBlockBytes", "1k"))
            let receiver = NumbersReceiver(count: 3_000, block: [])
            let seen = Collected<Int>()
            let partitions = Collected<Int>()
            ssc.receiverStream(receiver).foreachRDD { rdd in
                partitions.append(rdd.numPartitions)
                for x in try rdd.collect() { seen.append(x) }
            }
            try ssc.start()
            driveReceiving(ssc, clock) { seen.values.count >= 3_000 }
            ssc.stop()
            #expect(seen.values == Array(0..<3_000))
            // 8-byte Ints, 128 to a block: at least 24 blocks, in fewer batches.
            #expect(partitions.values.reduce(0, +) >= 3_000 / 128)
            #expect(partitions.values.filter { $0 > 0 }.count < partitions.values.reduce(0, +))
        }
    }

    /// Not a size, or zero: refused when the context is made, the error naming the key and the value.
    @Test func aMaximumBlockSizeThatIsNotAPositiveSizeIsRefusedNamingTheKey() throws {
        for value in ["lots", "0"] {
            let error = #expect(throws: ConfigurationError.self) {
                _ = try context(ManualClock(), StreamingConf().set("sluice.receiver.maxBlockBytes", value))
            }
            #expect(error?.description.contains("sluice.receiver.maxBlockBytes = '\(value)'") == true)
        }
    }

    @Test func restartStopsTheReceiverWaitsAndStartsItAgain() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try context(clock)
            let events = ReceiverEvents()
            ssc.addStreamingListener(events)
            let receiver = NumbersReceiver(count: 100, block: [], failOnFirstStart: true)
            let seen = Collected<Int>()
            ssc.receiverStream(receiver).foreachRDD { rdd in for x in try rdd.collect() { seen.append(x) } }
            try ssc.start()
            driveReceiving(ssc, clock) { seen.values.filter { $0 >= 0 }.count >= 100 }
            ssc.stop()
            ssc.waitForListeners()
            #expect(receiver.starts.withLock { $0 } == 2)
            #expect(Array(events.all.prefix(4)) == [
                "started", "error: Restarting receiver with delay 50 ms: boom on the first start", "stopped", "started",
            ])
            #expect(seen.values.filter { $0 >= 0 }.sorted() == Array(0..<100))
        }
    }

    @Test func aProgramsOwnEstimatorSetsTheRateWithoutTheBackpressureSetting() throws {
        struct Fixed: RateEstimator {
            var calls = 0
            mutating func compute(time: Int64, elements: Int, processingDelay: Int64, schedulingDelay: Int64) -> Double? {
                calls += 1
                return Double(1_000 + calls)
            }
        }
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try context(clock, StreamingConf().set("spark.streaming.receiver.maxRate", "1500"))
            let stream = ssc.receiverStream(NumbersReceiver(count: 50, block: []))
            stream.rateEstimator = Fixed()
            let seen = Collected<Int>()
            stream.foreachRDD { rdd in for x in try rdd.collect() { seen.append(x) } }
            try ssc.start()
            #expect(stream.currentRateLimit == 1_500)  // maxRate is the starting limit
            driveReceiving(ssc, clock, maxBatches: 3) { false }
            ssc.stop()
            let limit = try #require(stream.currentRateLimit)
            #expect(limit > 1_000 && limit < 1_010, "\(limit)")
            #expect((stream.rateEstimator as? Fixed).map { $0.calls >= 2 } == true)
        }
    }

    @Test func tooFewThreadsForTheReceiversIsAClearErrorAtStart() throws {
        try StreamTest.exclusively {
            let ssc = try StreamingContext(
                conf: StreamingConf().setMaster("local[1]"), batchDuration: .seconds(1), clock: ManualClock())
            ssc.receiverStream(NumbersReceiver(count: 1, block: [])).foreachRDD { _ in }
            let error = #expect(throws: StreamingError.self) { try ssc.start() }
            #expect(error?.message.contains("local[2] or more") == true, "\(String(describing: error))")
            #expect(ssc.state == .stopped)
        }
    }

    @Test func oneReceiverCannotFeedTwoStreams() throws {
        try StreamTest.exclusively {
            let ssc = try StreamingContext(
                conf: StreamingConf().setMaster("local[3]"), batchDuration: .seconds(1), clock: ManualClock())
            let receiver = NumbersReceiver(count: 1, block: [])
            ssc.receiverStream(receiver).foreachRDD { _ in }
            ssc.receiverStream(receiver).foreachRDD { _ in }
            let error = #expect(throws: StreamingError.self) { try ssc.start() }
            #expect(error?.message.contains("given to receiverStream twice") == true)
        }
    }
}
