import Synchronization
import Testing
@testable import Sluice
import SluiceTesting

/// When a batch's received blocks go: as soon as its jobs finish when nothing remembers the stream longer
/// (`sluice.receiver.releaseBlocksAtBatchEnd`, the default), after the next batch with Spark's rule, and only
/// past the remember duration when `remember` asks for more.
@Suite struct ReleasedBlocksTests {
    struct Outcome {
        /// The batch that took the block, and what the job saw in it.
        var time: Time
        var seen: [Int]
        /// Received bytes the memory budget counted once that batch was handled, and once the next one was.
        var receiveAfterBatch: Int
        var receiveAfterNext: Int
        /// The batch's RDD read again (through `slice`) after it was handled: its elements, or the error.
        var readAgain: Result<[Int], any Error>
        /// Its count, read the same way (from the blocks' row counts).
        var countAgain: Result<Int, any Error>
    }

    /// One block of 0..<1000, stored by a receiver; the job collects each batch.
    func run(_ settings: [String: String] = [:], remember: Duration? = nil) throws -> Outcome {
        let clock = ManualClock()
        var conf = StreamingConf().setMaster("local[2]").set("sluice.memory.limit", "256m")
        for (key, value) in settings { conf = conf.set(key, value) }
        let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
        let values = Array(0..<1_000)
        let stream = ssc.receiverStream(NumbersReceiver(count: 0, block: values))
        let batches = Mutex<[(Time, [Int])]>([])
        stream.foreachRDD { rdd, time in
            let collected = try rdd.collect()
            if !collected.isEmpty { batches.withLock { $0.append((time, collected)) } }
        }
        if let remember { ssc.remember(remember) }
        try ssc.start()
        defer { ssc.stop() }
        driveReceiving(ssc, clock) { !batches.withLock { $0.isEmpty } }
        let (time, seen) = try #require(batches.withLock { $0.first })
        let receiveAfterBatch = ssc.engine.memory.reservedByCategory[.receive] ?? 0
        let readAgain = Result<[Int], any Error> {
            try #require(try stream.slice(from: time, to: time).first).collect()
        }
        let countAgain = Result<Int, any Error> { try #require(try stream.slice(from: time, to: time).first).count() }
        clock.advance(by: .seconds(1))
        #expect(ssc.waitUntilBatchHandled(clock.time, timeout: .seconds(30)))
        let receiveAfterNext = ssc.engine.memory.reservedByCategory[.receive] ?? 0
        return Outcome(
            time: time, seen: seen, receiveAfterBatch: receiveAfterBatch, receiveAfterNext: receiveAfterNext,
            readAgain: readAgain, countAgain: countAgain)
    }

    @Test func aBatchsBlocksGoWhenItsJobsFinish() throws {
        try StreamTest.exclusively {
            let outcome = try run()
            #expect(outcome.seen == Array(0..<1_000), "the job saw the whole block")
            #expect(outcome.receiveAfterBatch == 0, "the block's memory went back when its batch completed")
            // Read again afterwards (a slice of a completed batch), the RDD says what happened and what to do.
            for again in [outcome.readAgain.map(\.count), outcome.countAgain] {
                guard case .failure(let error) = again else {
                    Issue.record("a released batch read again gave \(again)")
                    continue
                }
                let message = "\(error)"
                #expect(message.contains("released when the batch completed"), "\(message)")
                #expect(message.contains("\(outcome.time)") && message.contains("remember"), "\(message)")
            }
        }
    }

    @Test func sparksRuleKeepsThemUntilTheNextBatchCompletes() throws {
        try StreamTest.exclusively {
            let outcome = try run(["sluice.receiver.releaseBlocksAtBatchEnd": "false"])
            #expect(outcome.seen == Array(0..<1_000))
            #expect(outcome.receiveAfterBatch > 0, "kept while the batch is the last one")
            #expect(try outcome.readAgain.get() == Array(0..<1_000))
            #expect(try outcome.countAgain.get() == 1_000)
            #expect(outcome.receiveAfterNext == 0, "gone once the next batch completed")
        }
    }

    @Test func aRememberedStreamKeepsThemForItsRememberDuration() throws {
        try StreamTest.exclusively {
            let outcome = try run(remember: .seconds(3))
            #expect(outcome.receiveAfterBatch > 0 && outcome.receiveAfterNext > 0, "remembered for 3 batches")
            #expect(try outcome.readAgain.get() == Array(0..<1_000))
            #expect(try outcome.countAgain.get() == 1_000)
        }
    }

    @Test func aBadSettingIsRefusedNamingTheKey() throws {
        let conf = StreamingConf().set("sluice.receiver.releaseBlocksAtBatchEnd", "soon")
        #expect {
            _ = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: ManualClock())
        } throws: { "\($0)".contains("sluice.receiver.releaseBlocksAtBatchEnd") && "\($0)".contains("soon") }
    }
}
