import Foundation
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// The Streaming tab's model in Spark's REST shape, checked against what the listeners saw.
@Suite struct StreamingStatusTests {
    let conf = StreamingConf().setMaster("local[2]").set("spark.default.parallelism", "2")

    /// Six 1 s batches of two records each; the third batch's second output operation fails.
    func run(retained: Int) throws -> (status: StreamingStatus, seen: [BatchInfo]) {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: conf.set("spark.streaming.ui.retainedBatches", "\(retained)"), batchDuration: .seconds(1),
                clock: clock)
            let input = ssc.sequenceStream((1...6).map { [$0, $0 * 10] })
            input.foreachRDD { _ in }
            input.foreachRDD { rdd in if try rdd.collect().contains(3) { throw Boom(value: 3) } }
            return (ssc.status, try runBatches(ssc, clock: clock, through: 6_000))
        }
    }

    @Test func statisticsAndBatchesAgreeWithTheListenersFigures() throws {
        let (status, seen) = try run(retained: 1_000)
        #expect(seen.count == 6)
        let s = status.statistics()
        #expect(s.batchDuration == 1_000 && s.numTotalCompletedBatches == 6 && s.numRetainedCompletedBatches == 6)
        #expect(s.numActiveBatches == 0 && s.numProcessedRecords == 12 && s.numReceivedRecords == 12)
        #expect(s.numReceivers == 0 && s.avgInputRate == 2)
        let processing = seen.compactMap(\.processingDelay)
        #expect(s.avgProcessingTime == processing.reduce(0, +) / Int64(processing.count))
        #expect(s.startTime.hasSuffix("GMT") && s.startTime.count == "2026-12-03T13:27:00.123GMT".count, "\(s.startTime)")

        let batches = status.batches()
        #expect(batches.map(\.batchId) == (1...6).reversed().map { Int64($0) * 1_000 }, "newest first")
        #expect(batches.allSatisfy { $0.status == "COMPLETED" && $0.inputSize == 2 && $0.numTotalOutputOps == 2 })
        let failed = try #require(status.batch(id: 3_000))
        #expect(failed.numFailedOutputOps == 1 && failed.numCompletedOutputOps == 1)
        #expect(failed.firstFailureReason?.contains("Boom") == true)
        #expect(failed.batchTime == "1970-01-01T00:00:03.000GMT")
        let operations = try #require(status.operations(batchId: 3_000))
        #expect(operations.map(\.outputOpId) == [0, 1] && operations[1].failureReason?.contains("Boom") == true)
        #expect(operations.allSatisfy { $0.startTime != nil && $0.endTime != nil && $0.duration != nil })
        #expect(status.operations(batchId: 99_000) == nil && status.batch(id: 99_000) == nil)
    }

    /// `spark.streaming.ui.retainedBatches` bounds what is kept; the totals still count every batch.
    @Test func retainedBatchesBoundWhatIsKept() throws {
        let (status, _) = try run(retained: 2)
        #expect(status.batches().map(\.batchId) == [6_000, 5_000])
        let s = status.statistics()
        #expect(s.numTotalCompletedBatches == 6 && s.numRetainedCompletedBatches == 2 && s.numProcessedRecords == 12)
    }

    /// The JSON uses Spark's field names.
    @Test func theJSONHasSparksFieldNames() throws {
        let (status, _) = try run(retained: 10)
        func keys<T: Encodable>(_ value: T) throws -> Set<String> {
            let object = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(value)) as? [String: Any]
            return Set(object?.keys.map { $0 } ?? [])
        }
        #expect(try keys(status.statistics()).isSuperset(of: [
            "startTime", "batchDuration", "numReceivers", "numActiveReceivers", "numInactiveReceivers",
            "numTotalCompletedBatches", "numRetainedCompletedBatches", "numActiveBatches", "numProcessedRecords",
            "numReceivedRecords", "avgInputRate", "avgSchedulingDelay", "avgProcessingTime", "avgTotalDelay",
        ]))
        #expect(try keys(try #require(status.batch(id: 3_000))) == [
            "batchId", "batchTime", "status", "batchDuration", "inputSize", "schedulingDelay", "processingTime",
            "totalDelay", "numActiveOutputOps", "numCompletedOutputOps", "numFailedOutputOps", "numTotalOutputOps",
            "firstFailureReason",
        ])
        #expect(try keys(try #require(status.operations(batchId: 3_000)?.last)) == [
            "outputOpId", "name", "description", "startTime", "endTime", "duration", "failureReason", "jobIds",
        ])
    }

    @Test func datesAreWrittenAsSparkWritesThem() {
        #expect(sparkDate(0) == "1970-01-01T00:00:00.000GMT")
        #expect(sparkDate(1_764_768_420_123) == "2025-12-03T13:27:00.123GMT")
    }
}
