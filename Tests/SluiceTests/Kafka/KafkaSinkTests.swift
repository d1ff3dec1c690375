import SluiceColumnar
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// Every committed record of `topic` (read_committed), values as text, sorted.
func committedValues(of topic: String, partitions: Int32, servers: String) throws -> [String] {
    let client = try KafkaHandle.consumer(configuration: ["bootstrap.servers": servers])
    let pool = KafkaConsumerPool(configuration: ["bootstrap.servers": servers], capacity: 1)
    var values: [String] = []
    for partition in Int32(0)..<partitions {
        let marks = try client.watermarks(TopicPartition(topic, partition), timeoutMs: 10_000)
        let range = OffsetRange(topic: topic, partition: partition, fromOffset: marks.low, untilOffset: marks.high)
        // Transaction markers take offsets too: the read ends at the partition's end, whatever the count.
        try pool.read(range, pollTimeoutMs: 2_000) { values.append($0.valueString) }
    }
    return values.sorted()
}

/// The Kafka sink: every record of every batch delivered, a refused delivery failing its batch with the
/// broker's error, and exactly once from Kafka to Kafka with a transaction per batch carrying the offsets.
@Suite(.serialized) struct KafkaSinkTests {
    let conf = StreamingConf().setMaster("local[2]").set("spark.ui.enabled", "false")


    @Test func everyRecordOfEveryBatchIsDelivered() throws {
        let cluster = try KafkaMockCluster()
        try cluster.createTopic("out", partitions: 2)
        let batches = (0..<4).map { b in (0..<50).map { "v\(b)-\($0)" } }
        let error = try StreamTest.exclusively { () -> (any Error)? in
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            ssc.sequenceStream(batches).writeToKafka(topic: "out", kafkaParams: ["bootstrap.servers": cluster.bootstrapServers]) {
                ProducerRecord(key: String($0.prefix(2)), value: $0)
            }
            try ssc.start()
            runSeconds(ssc, clock, 1...4)
            ssc.stop()
            return ssc.error
        }
        #expect(error == nil, "\(String(describing: error))")
        #expect(try committedValues(of: "out", partitions: 2, servers: cluster.bootstrapServers) == batches.joined().sorted())
    }

    @Test func aRefusedDeliveryFailsTheBatchWithTheBrokersError() throws {
        let broker = try NoidaBroker()
        defer { broker.stop() }
        try KafkaHandle.consumer(configuration: ["bootstrap.servers": broker.bootstrapServers])
            .createTopic("out", partitions: 1, timeoutMs: 10_000)
        let error = try StreamTest.exclusively { () -> (any Error)? in
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            ssc.sequenceStream([["a", "b"], ["c"]]).writeToKafka(
                topic: "out", kafkaParams: ["bootstrap.servers": broker.bootstrapServers, "message.timeout.ms": "500"]
            ) { ProducerRecord(value: $0) }
            return try errorWithTheBrokerDown(ssc, clock, broker)
        }
        let text = "\(String(describing: error))"
        #expect(text.contains("1 of 1 records to out failed") && text.contains("out-0"), "\(text)")
    }

    /// Kafka to Kafka exactly once: each batch's output and its input offsets commit in one transaction; a new
    /// run of the program (no checkpoint) starts from the group's offsets, so the output holds each input once.
    @Test func aTransactionPerBatchWritesEachInputExactlyOnceAcrossRuns() throws {
        let broker = try NoidaBroker()
        defer { broker.stop() }
        let servers = broker.bootstrapServers
        let admin = try KafkaHandle.consumer(configuration: ["bootstrap.servers": servers])
        try admin.createTopic("in", partitions: 2, timeoutMs: 10_000)
        try admin.createTopic("out", partitions: 2, timeoutMs: 10_000)
        let producer = try KafkaProducer(configuration: ["bootstrap.servers": servers])
        func send(_ values: [String]) throws {
            for (i, value) in values.enumerated() { try producer.send(topic: "in", partition: Int32(i % 2), value: Array(value.utf8)) }
            try producer.flush(timeoutMs: 30_000)
        }
        func runProgram(batches: ClosedRange<Int64>, between: () throws -> Void = {}) throws {
            try StreamTest.exclusively {
                let clock = ManualClock()
                let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
                let input = KafkaUtils.createDirectStream(
                    ssc, .preferConsistent,
                    .subscribe(["in"], ["bootstrap.servers": servers, "group.id": "eo", "auto.offset.reset": "earliest"]))
                input.map { $0.valueString.uppercased() }.writeToKafka(
                    topic: "out", kafkaParams: ["bootstrap.servers": servers, "transactional.id": "sluice-eo"],
                    committingOffsetsOf: input
                ) { ProducerRecord(value: $0) }
                try ssc.start()
                runSeconds(ssc, clock, batches.lowerBound...batches.lowerBound)
                try between()
                runSeconds(ssc, clock, (batches.lowerBound + 1)...batches.upperBound)
                ssc.stop()
                #expect(ssc.error == nil, "\(String(describing: ssc.error))")
            }
        }
        try send((0..<40).map { "a\($0)" })
        try runProgram(batches: 1...2) { try send((0..<20).map { "b\($0)" }) }
        try send((0..<10).map { "c\($0)" })
        try runProgram(batches: 1...2)
        let expected = ((0..<40).map { "A\($0)" } + (0..<20).map { "B\($0)" } + (0..<10).map { "C\($0)" }).sorted()
        #expect(try committedValues(of: "out", partitions: 2, servers: servers) == expected)
        let committed = try KafkaHandle.consumer(configuration: ["bootstrap.servers": servers, "group.id": "eo"])
            .committed([TopicPartition("in", 0), TopicPartition("in", 1)], timeoutMs: 10_000)
        #expect(committed.values.reduce(0, +) == 70, "\(committed)")
    }
}
