import SluiceColumnar
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// The direct stream end to end against a Kafka-protocol broker in its own process (noida-db on 127.0.0.1,
/// started and stopped by PID): the guide's word count over a 3-partition topic, checked against a plain count
/// of what was sent, and the offsets committed to the group read back from the broker.
@Suite(.serialized) struct KafkaBrokerTests {
    @Test func aWordCountOverABrokerCountsEveryWordOnceAndCommitsItsOffsets() throws {
        let broker = try NoidaBroker()
        defer { broker.stop() }
        let admin = try KafkaHandle.consumer(configuration: ["bootstrap.servers": broker.bootstrapServers])
        try admin.createTopic("lines", partitions: 3, timeoutMs: 10_000)
        let producer = try KafkaProducer(configuration: ["bootstrap.servers": broker.bootstrapServers])
        var random = SeededGenerator(seed: 11)
        let lines = (0..<3_000).map { _ in (0..<5).map { _ in "w\(Int.random(in: 0..<50, using: &random))" }.joined(separator: " ") }
        func send(_ lines: ArraySlice<String>) throws {
            for (i, line) in zip(lines.indices, lines) {
                try producer.send(topic: "lines", partition: Int32(i % 3), value: Array(line.utf8))
            }
            try producer.flush(timeoutMs: 30_000)
        }
        try send(lines[..<2_000])
        let params = ["bootstrap.servers": broker.bootstrapServers, "group.id": "wordcount", "auto.offset.reset": "earliest"]
        let counts = try StreamTest.exclusively { () -> [String: Int] in
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: StreamingConf().setMaster("local[2]").set("spark.ui.enabled", "false"), batchDuration: .seconds(1),
                clock: clock)
            let stream = KafkaUtils.createDirectStream(ssc, .preferConsistent, .subscribe(["lines"], params))
            let counts = Mutex<[String: Int]>([:])
            stream.map(\.valueString).flatMap { $0.split(ascii: " ") }.map { ($0, 1) }.reduceByKey(+).foreachRDD { rdd in
                let batch = try rdd.collect()
                counts.withLock { for (word, n) in batch { $0[word.string, default: 0] += n } }
            }
            stream.foreachRDD { _, time in stream.commitAsync(stream.offsetRanges(at: time) ?? []) }
            try ssc.start()
            for second in Int64(1)...4 {
                if second == 3 { try send(lines[2_000...]) }
                clock.set(to: Time(milliseconds: second * 1_000))
                #expect(ssc.waitUntilBatchHandled(Time(milliseconds: second * 1_000), timeout: .seconds(60)))
            }
            ssc.stop()
            #expect(ssc.error == nil, "\(String(describing: ssc.error))")
            return counts.withLock { $0 }
        }
        var expected: [String: Int] = [:]
        for line in lines { for word in line.split(separator: " ") { expected[String(word), default: 0] += 1 } }
        #expect(counts == expected)
        // The last batch committed what the one before read; all 3000 lines were read by then.
        let group = try KafkaHandle.consumer(configuration: ["bootstrap.servers": broker.bootstrapServers, "group.id": "wordcount"])
        let committed = try group.committed((0..<3).map { TopicPartition("lines", $0) }, timeoutMs: 10_000)
        #expect(committed.values.reduce(0, +) == 3_000, "\(committed)")
    }
}
