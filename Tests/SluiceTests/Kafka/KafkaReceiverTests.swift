import SluiceColumnar
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// The receiver stream (`KafkaUtils.createStream`) with the write-ahead log: every record once, offsets
/// committed to the group only for what was stored, and a new run of the group reading only what came after.
@Suite(.serialized) struct KafkaReceiverTests {
    @Test func aReceiverStreamReadsEveryRecordOnceAndANewRunResumesAfterWhatItStored() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-kafka-receiver")
        defer { directory.remove() }
        let cluster = try KafkaMockCluster()
        try cluster.createTopic("events", partitions: 2)
        let producer = try KafkaProducer(configuration: ["bootstrap.servers": cluster.bootstrapServers])
        func send(_ values: [String]) throws {
            for (i, value) in values.enumerated() {
                try producer.send(topic: "events", partition: Int32(i % 2), key: Array("k\(i)".utf8), value: Array(value.utf8))
            }
            try producer.flush(timeoutMs: 10_000)
        }
        // A short session: librdkafka 2.0.2's mock cluster rebalances a group only when a member that left (the
        // first run's receiver closes its consumer, which returns no error) times out.
        let params = ["bootstrap.servers": cluster.bootstrapServers, "group.id": "receivers", "auto.offset.reset": "earliest", "session.timeout.ms": "6000", "heartbeat.interval.ms": "500"]
        func run(expecting count: Int, group: String = "receivers") throws -> [String] {
            var params = params
            params["group.id"] = group
            return try StreamTest.exclusively {
                let clock = ManualClock()
                let ssc = try StreamingContext(
                    conf: StreamingConf().setMaster("local[2]").set("spark.ui.enabled", "false")
                        .set("spark.streaming.receiver.writeAheadLog.enable", "true"),
                    batchDuration: .seconds(1), clock: clock)
                ssc.checkpoint("\(directory.path)/checkpoint-\(count)")
                let seen = Mutex<[String]>([])
                KafkaUtils.createStream(ssc, kafkaParams: params, topics: ["events"]).foreachRDD { rdd in
                    let pairs = try rdd.collect()
                    seen.withLock { $0 += pairs.map { "\($0.0)=\($0.1)" } }
                }
                try ssc.start()
                driveReceiving(ssc, clock, maxBatches: 1_500) { seen.withLock { $0.count } >= count }
                ssc.stop()
                return seen.withLock { $0 }.sorted()
            }
        }
        try send((0..<200).map { "a\($0)" })
        #expect(try run(expecting: 200) == (0..<200).map { "k\($0)=a\($0)" }.sorted())
        try send((0..<50).map { "b\($0)" })
        let fresh = try run(expecting: 250, group: "other")
        #expect(fresh.count == 250, "a new group reads everything: \(fresh.count)")
        let second = try run(expecting: 50)
        #expect(second == (0..<50).map { "k\($0)=b\($0)" }.sorted(), "the group resumed after what it stored: \(second.count) records, \(second.prefix(5))")
    }
}
