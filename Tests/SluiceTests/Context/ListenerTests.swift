import Glibc
import Synchronization
import Testing
@testable import Sluice
import SluiceTesting

/// Records every event as a line.
final class Recorder: StreamingListener {
    let events = Mutex<[String]>([])
    let batches = Mutex<[BatchInfo]>([])
    let operations = Mutex<[OutputOperationInfo]>([])
    let delay: UInt32

    init(delayMicroseconds: UInt32 = 0) { delay = delayMicroseconds }

    private func record(_ line: String) {
        if delay > 0 { usleep(delay) }
        events.withLock { $0.append(line) }
    }

    func onStreamingStarted(_ event: StreamingStarted) { record("started") }
    func onBatchSubmitted(_ batch: BatchInfo) { record("submitted \(batch.batchTime.milliseconds)") }
    func onBatchStarted(_ batch: BatchInfo) { record("batchStarted \(batch.batchTime.milliseconds)") }
    func onBatchCompleted(_ batch: BatchInfo) {
        batches.withLock { $0.append(batch) }
        record("completed \(batch.batchTime.milliseconds)")
    }
    func onOutputOperationStarted(_ operation: OutputOperationInfo) {
        record("opStarted \(operation.batchTime.milliseconds) #\(operation.id) \(operation.name)")
    }
    func onOutputOperationCompleted(_ operation: OutputOperationInfo) {
        operations.withLock { $0.append(operation) }
        record("opCompleted \(operation.batchTime.milliseconds) #\(operation.id)\(operation.failureReason == nil ? "" : " failed")")
    }
}

@Suite struct ListenerTests {
    let conf = StreamingConf().setMaster("local[2]")

    @Test func eventsArriveInSparksOrderWithSparksDelays() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            let recorder = Recorder()
            ssc.addStreamingListener(recorder)
            let input = ssc.sequenceStream([[1, 2, 3], [4]])
            input.foreachRDD { _ in usleep(5_000) }
            input.map { $0 * 2 }.print()
            ssc.console.withLock { $0 = { _ in } }
            try ssc.start()
            for t in [1_000, 2_000] as [Int64] {
                clock.set(to: Time(milliseconds: t))
                #expect(ssc.waitUntilBatchHandled(Time(milliseconds: t), timeout: .seconds(30)))
            }
            ssc.waitForListeners()
            ssc.stop()
            #expect(recorder.events.withLock { $0 } == [
                "started",
                "submitted 1000", "batchStarted 1000", "opStarted 1000 #0 foreachRDD", "opCompleted 1000 #0",
                "opStarted 1000 #1 print", "opCompleted 1000 #1", "completed 1000",
                "submitted 2000", "batchStarted 2000", "opStarted 2000 #0 foreachRDD", "opCompleted 2000 #0",
                "opStarted 2000 #1 print", "opCompleted 2000 #1", "completed 2000",
            ])
            let batches = recorder.batches.withLock { $0 }
            #expect(batches.map(\.numRecords) == [3, 1])
            for batch in batches {
                let start = try #require(batch.processingStartTime)
                let end = try #require(batch.processingEndTime)
                #expect(batch.schedulingDelay == start - batch.submissionTime)
                #expect(batch.processingDelay == end - start)
                #expect(batch.totalDelay == end - batch.submissionTime)
                #expect(batch.processingDelay ?? 0 >= 5, "the first output operation sleeps 5 ms")
                #expect(batch.outputOperationInfos.count == 2)
                #expect(batch.outputOperationInfos.values.allSatisfy { $0.duration != nil && $0.failureReason == nil })
            }
        }
    }

    @Test func aFailedOutputOperationIsReportedAndTheBatchStillCompletes() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            let recorder = Recorder()
            ssc.addStreamingListener(recorder)
            ssc.sequenceStream([[1]]).foreachRDD { _ in throw Boom(value: 7) }
            try ssc.start()
            clock.set(to: Time(milliseconds: 1_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 1_000), timeout: .seconds(30)))
            ssc.waitForListeners()
            ssc.stop()
            let operation = try #require(recorder.operations.withLock { $0.first })
            #expect(operation.failureReason?.contains("Boom(value: 7)") == true)
            #expect(recorder.events.withLock { $0 }.contains("completed 1000"))
            #expect(recorder.batches.withLock { $0.first?.outputOperationInfos[0]?.failureReason } != nil)
        }
    }

    @Test func aSlowListenerNeverStallsBatches() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            let slow = Recorder(delayMicroseconds: 100_000)  // 100 ms per event, about 6 events a batch
            ssc.addStreamingListener(slow)
            let processed = Mutex(0)
            ssc.sequenceStream((0..<10).map { [$0] }).foreachRDD { _ in processed.withLock { $0 += 1 } }
            try ssc.start()
            let begin = wallClockMilliseconds()
            clock.set(to: Time(milliseconds: 10_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 10_000), timeout: .seconds(30)))
            let elapsed = wallClockMilliseconds() - begin
            #expect(processed.withLock { $0 } == 10)
            #expect(elapsed < 2_000, "10 batches took \(elapsed) ms; the listener's 50+ events take 5 s")
            ssc.stop()
            #expect(slow.events.withLock { $0 }.count >= 50, "every event was still delivered before stop returned")
        }
    }

    @Test func eventsPastTheQueueCapacityAreDroppedAndCounted() throws {
        let bus = ListenerBus(capacity: 3)
        let recorder = Recorder()
        bus.add(recorder)
        for i in 0..<5 { bus.post(.streamingStarted(StreamingStarted(time: Int64(i)))) }
        #expect(bus.droppedEvents == 2)
        try bus.start()
        bus.stop()
        #expect(recorder.events.withLock { $0 } == ["started", "started", "started"])
    }
}
