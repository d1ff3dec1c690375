import Foundation
import SluiceColumnar
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// prometheus_client's samples as the test scripts write them ([name, labels, value] each), typed.
func prometheusSamples(_ parsed: [[Any]]) -> [(name: String, labels: [String: String], value: Double)] {
    parsed.compactMap { sample in
        guard sample.count == 3, let name = sample[0] as? String, let labels = sample[1] as? [String: String],
            let value = sample[2] as? Double
        else { return nil }
        return (name, labels, value)
    }
}

/// The Prometheus metrics, read by Prometheus's own text-format parser (`prometheus_client`, Debian's
/// python3-prometheus-client), agree with what the listeners saw.
@Suite struct MetricsTests {
    let conf = StreamingConf().setMaster("local[2]").set("spark.default.parallelism", "2")

    /// Parses `text` with prometheus_client: each sample as [name, labels, value].
    func parse(_ text: String, in directory: TemporaryDirectory) throws -> [(name: String, labels: [String: String], value: Double)] {
        let input = "\(directory.path)/metrics.txt"
        var sink = try FileSink(creating: input)
        try Array(text.utf8).withUnsafeBytes { try sink.write($0) }
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = []
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in family.samples:
                    out.append([s.name, s.labels, s.value])
            print(json.dumps(out))
            """
        let output = "\(directory.path)/parsed.json"
        let child = try ChildProcess("/usr/bin/python3", ["-c", script, input], logPath: output)
        #expect(child.wait(timeout: .seconds(60)) == 0, "the parser refused the text: \(String(decoding: (try? SystemCalls.live.readFile(output)) ?? [], as: UTF8.self))")
        let parsed = try JSONSerialization.jsonObject(with: Data(try SystemCalls.live.readFile(output))) as? [[Any]] ?? []
        return prometheusSamples(parsed)
    }

    @Test func metricsParseAsPrometheusTextAndAgreeWithTheListeners() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-metrics")
        defer { directory.remove() }
        let (text, completed) = try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            ssc.sequenceStream((1...6).map { [$0, $0 * 10] }).foreachRDD { rdd in
                if try rdd.collect().contains(3) { throw Boom(value: 3) }
            }
            let completed = try runBatches(ssc, clock: clock, through: 6_000)
            return (ssc.prometheusMetrics(), completed)
        }
        let samples = try parse(text, in: directory)
        func value(_ name: String) -> Double? { samples.first { $0.name == name && $0.labels.isEmpty }?.value }
        #expect(completed.count == 6)
        #expect(value("sluice_batches_completed_total") == 6)
        #expect(value("sluice_batches_failed_total") == 1)
        #expect(value("sluice_records_processed_total") == Double(completed.reduce(0) { $0 + $1.numRecords }))
        #expect(value("sluice_records_received_total") == 12)
        #expect(value("sluice_batch_processing_seconds_count") == 6)
        let processing = Double(completed.compactMap(\.processingDelay).reduce(0, +)) / 1_000
        #expect(abs((value("sluice_batch_processing_seconds_sum") ?? -1) - processing) < 0.001)
        #expect(value("sluice_batches_active") == 0)
        #expect(value("sluice_memory_reserved_bytes") != nil)
        #expect(samples.allSatisfy { $0.name.hasPrefix("sluice_") }, "\(samples.map(\.name))")
    }
}

extension MetricsTests {
    /// The engine's figures in the metrics (state keys, checkpoint writes, write-ahead log appends, spill, memory)
    /// agree with the engine's own statistics and with the data.
    @Test func engineFiguresAgreeWithTheEngine() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-metrics")
        defer { directory.remove() }
        let (text, engine, checkpoints) = try StreamTest.exclusively { () -> (String, EngineStatus, CheckpointStatistics) in
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: conf.set("spark.streaming.receiver.writeAheadLog.enable", "true").set("spark.ui.enabled", "false"),
                batchDuration: .seconds(1), clock: clock)
            ssc.checkpoint("\(directory.path)/checkpoint")
            let receiver = NumbersReceiver(count: 1_000, block: [])
            let seen = Atomic<Int>(0)
            ssc.receiverStream(receiver).map { ($0 % 7, 1) }
                .updateStateByKey { (values: [Int], state: Int?) in (state ?? 0) + values.count }
                .foreachRDD { rdd in seen.store(try rdd.collect().reduce(0) { $0 + $1.1 }, ordering: .relaxed) }
            try ssc.start()
            defer { ssc.stop() }
            driveReceiving(ssc, clock) { seen.load(ordering: .relaxed) == 1_000 }
            ssc.waitForListeners()
            return (ssc.prometheusMetrics(), ssc.engineStatus, ssc.checkpointStatistics)
        }
        let samples = try parse(text, in: directory)
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { $0.name == name && $0.labels == labels }?.value
        }
        #expect(engine.states.map(\.keys) == [7], "seven keys in the state")
        let state = try #require(engine.states.first)
        #expect(value("sluice_state_keys", ["stream": "\(state.streamId)", "operation": "updateStateByKey"]) == 7)
        #expect(checkpoints.count > 0)
        #expect(value("sluice_checkpoint_write_seconds_count") == Double(checkpoints.count))
        #expect(abs((value("sluice_checkpoint_write_seconds_sum") ?? -1) - checkpoints.totalMilliseconds / 1_000) < 0.01)
        let log = try #require(engine.writeAheadLogs.first)
        #expect(log.appends.count > 0)
        #expect(value("sluice_wal_appends_total", ["stream": "\(log.streamId)"]) == Double(log.appends.count))
        #expect(value("sluice_spilled_bytes_total") == Double(engine.spill.bytesSpilled))
        #expect(value("sluice_spill_files_live") == Double(engine.spill.liveFiles))
        #expect(value("sluice_memory_reserved_bytes") == Double(engine.memory.reservedBytes))
    }
}
