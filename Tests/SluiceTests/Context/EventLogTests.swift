import Glibc
import SluiceColumnar
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// Records the events the listeners saw, in order.
final class EventRecorder: StreamingListener {
    let events = Mutex<[StreamingEvent]>([])
    func onStreamingStarted(_ event: StreamingStarted) { events.withLock { $0.append(.streamingStarted(event)) } }
    func onReceiverStarted(_ receiver: ReceiverInfo) { events.withLock { $0.append(.receiverStarted(receiver)) } }
    func onReceiverError(_ receiver: ReceiverInfo) { events.withLock { $0.append(.receiverError(receiver)) } }
    func onReceiverStopped(_ receiver: ReceiverInfo) { events.withLock { $0.append(.receiverStopped(receiver)) } }
    func onBatchSubmitted(_ batch: BatchInfo) { events.withLock { $0.append(.batchSubmitted(batch)) } }
    func onBatchStarted(_ batch: BatchInfo) { events.withLock { $0.append(.batchStarted(batch)) } }
    func onBatchCompleted(_ batch: BatchInfo) { events.withLock { $0.append(.batchCompleted(batch)) } }
    func onOutputOperationStarted(_ operation: OutputOperationInfo) {
        events.withLock { $0.append(.outputOperationStarted(operation)) }
    }
    func onOutputOperationCompleted(_ operation: OutputOperationInfo) {
        events.withLock { $0.append(.outputOperationCompleted(operation)) }
    }
}

extension EventRecorder {
    /// The completed batches seen so far.
    var completedBatches: [BatchInfo] {
        events.withLock { events in events.compactMap { if case .batchCompleted(let b) = $0 { b } else { nil } } }
    }
}

/// Starts `ssc` (with a recorder of its events), moves `clock` to batch time `last` ms, waits for that batch
/// and the listeners, stops the context, and returns the completed batches the listeners saw.
func runBatches(_ ssc: StreamingContext, clock: ManualClock, through last: Int64) throws -> [BatchInfo] {
    let recorder = EventRecorder()
    ssc.addStreamingListener(recorder)
    try ssc.start()
    clock.set(to: Time(milliseconds: last))
    #expect(ssc.waitUntilBatchHandled(Time(milliseconds: last), timeout: .seconds(30)))
    ssc.waitForListeners()
    ssc.stop()
    return recorder.completedBatches
}

@Suite struct EventLogTests {
    let conf = StreamingConf().setMaster("local[2]").set("spark.default.parallelism", "2")

    /// Runs six 1 s batches (the third fails its output) with the event log under `directory`; returns what the
    /// listeners saw, the run's log directory and how many batches produced output.
    func run(
        _ directory: String, maxFileSize: String = "128m", calls: SystemCalls = .live
    ) throws -> (seen: [StreamingEvent], logDirectory: String?, outputs: Int) {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: conf.setAppName("event <log> \"test\"").set("spark.eventLog.enabled", "true")
                    .set("spark.eventLog.dir", "file:\(directory)").set("spark.eventLog.rolling.maxFileSize", maxFileSize),
                batchDuration: .seconds(1), clock: clock, systemCalls: calls)
            let recorder = EventRecorder()
            ssc.addStreamingListener(recorder)
            let outputs = Atomic<Int>(0)
            ssc.sequenceStream((1...6).map { [$0, $0 * 10] }).map { $0 + 1 }.foreachRDD { rdd in
                if try rdd.collect().contains(4) { throw Boom(value: 3) }
                outputs.add(1, ordering: .relaxed)
            }
            try ssc.start()
            clock.set(to: Time(milliseconds: 6_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 6_000), timeout: .seconds(30)))
            ssc.waitForListeners()
            ssc.stop()
            return (recorder.events.withLock { $0 }, ssc.eventLogDirectory, outputs.load(ordering: .relaxed))
        }
    }

    @Test func eventsReadBackAsTheListenersSawThemAcrossRolledFiles() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-events")
        defer { dir.remove() }
        let (seen, logDirectory, outputs) = try run(dir.path, maxFileSize: "2k")
        let directory = try #require(logDirectory)
        #expect(directory.hasPrefix(dir.path + "/event__log___test_-"), "\(directory)")
        #expect(outputs == 5)
        #expect(dir.files.count > 1, "the 2 KiB limit rolls the log into several files")
        let back = try EventLog.read(directory: directory)
        #expect(back == seen)
        #expect(back.contains { if case .batchCompleted = $0 { true } else { false } })
        #expect(back.contains {
            if case .outputOperationCompleted(let o) = $0 { o.failureReason?.contains("Boom") == true } else { false }
        }, "the failed output operation is in the log with its reason")
    }

    /// A disk that fills stops the log with a message, not the job; what was logged reads back (a line cut
    /// short by the full disk is left out).
    @Test func aFullDiskStopsTheLogNotTheJob() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-events")
        defer { dir.remove() }
        let faulty = FaultySystemCalls()
        faulty.diskFull(after: 1_500)
        let (seen, logDirectory, outputs) = try run(dir.path, calls: faulty.calls)
        #expect(outputs == 5, "every batch ran")
        let back = try EventLog.read(directory: try #require(logDirectory))
        #expect(!back.isEmpty && back.count < seen.count)
        #expect(Array(seen.prefix(back.count)) == back)
    }

    @Test func aDamagedLineIsAnErrorNamingTheFileAndLine() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-events")
        defer { dir.remove() }
        let directory = try #require(try run(dir.path).logDirectory)
        let path = "\(directory)/events-000001.jsonl"
        var bytes = try SystemCalls.live.readFile(path)
        let secondLine = try #require(bytes.firstIndex(of: UInt8(ascii: "\n"))) + 1
        bytes[secondLine] = UInt8(ascii: "#")
        let fd = open(path, O_WRONLY | O_TRUNC)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        do {
            _ = try EventLog.read(directory: directory)
            Issue.record("a damaged event log was read")
        } catch let error as StreamingError {
            #expect("\(error)".contains(path) && "\(error)".contains("line 2"), "\(error)")
        }
        #expect(throws: StreamingError.self) { try EventLog.read(directory: dir.path) }
    }

    /// An event-log directory that cannot be made is a message; the job runs without a log.
    @Test func anUnusableDirectoryLeavesTheJobRunning() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-events")
        defer { dir.remove() }
        let file = "\(dir.path)/not-a-directory"
        close(open(file, O_WRONLY | O_CREAT, 0o644))
        let (_, logDirectory, outputs) = try run(file)
        #expect(logDirectory == nil && outputs == 5)
    }
}

extension EventLogTests {
    /// A real full disk (a 64 KiB tmpfs; mounting needs root, as in CI): the log stops with an error naming its
    /// directory and the cause, every batch still runs, and what was logged reads back.
    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root (CI runs as root)"))
    func aFullTmpfsStopsTheLogWithAMessageAndTheJobRuns() throws {
        let logs = CapturedLogs.shared
        let dir = try TemporaryDirectory(prefix: "sluice-events-tmpfs")
        defer { dir.remove() }
        try mountTmpfs(at: dir.path, "size=64k")
        defer { unmountTmpfs(at: dir.path) }
        let (seen, logDirectory, outputs) = try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: conf.setAppName("full disk").set("spark.eventLog.enabled", "true").set("spark.eventLog.dir", dir.path)
                    .set("spark.ui.enabled", "false"),
                batchDuration: .seconds(1), clock: clock)
            let recorder = EventRecorder()
            ssc.addStreamingListener(recorder)
            let outputs = Atomic<Int>(0)
            // Wide batches: each event names 40 output operations, so the log outgrows 64 KiB within the run.
            let stream = ssc.sequenceStream((1...60).map { [$0] })
            for _ in 0..<40 { stream.foreachRDD { _ in outputs.add(1, ordering: .relaxed) } }
            try ssc.start()
            clock.set(to: Time(milliseconds: 60_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 60_000), timeout: .seconds(60)))
            ssc.waitForListeners()
            ssc.stop()
            return (recorder.events.withLock { $0 }, ssc.eventLogDirectory, outputs.load(ordering: .relaxed))
        }
        #expect(outputs == 60 * 40, "every batch ran every output")
        let directory = try #require(logDirectory)
        let messages = logs.matching("event log in '\(directory)' stopped")
        #expect(messages.contains { $0.level == .error && $0.message.contains("No space left on device") }, "\(messages)")
        let back = try EventLog.read(directory: directory)
        #expect(!back.isEmpty && back.count < seen.count)
        #expect(Array(seen.prefix(back.count)) == back)
    }
}
