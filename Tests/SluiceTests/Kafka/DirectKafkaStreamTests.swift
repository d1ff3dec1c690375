import Glibc
import SluiceColumnar
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// The direct Kafka stream against librdkafka's mock cluster (a real Kafka wire peer, in process): each batch
/// reads a fixed offset range per partition, every record once, ranges restored from the checkpoint, offsets
/// committed to the group, and clear errors.
@Suite(.serialized) struct DirectKafkaStreamTests {
    let conf = StreamingConf().setMaster("local[2]").set("spark.ui.enabled", "false")

    /// A cluster with `topic` of `partitions` partitions and a producer for it.
    func cluster(_ topic: String = "events", partitions: Int32 = 3) throws -> (KafkaMockCluster, KafkaProducer) {
        let cluster = try KafkaMockCluster()
        try cluster.createTopic(topic, partitions: partitions)
        return (cluster, try KafkaProducer(configuration: ["bootstrap.servers": cluster.bootstrapServers]))
    }

    /// Sends `values` round-robin over the partitions, waiting until the broker has them.
    func send(_ values: [String], to topic: String = "events", partitions: Int32 = 3, with producer: KafkaProducer) throws {
        for (i, value) in values.enumerated() {
            try producer.send(topic: topic, partition: Int32(i) % partitions, value: Array(value.utf8))
        }
        try producer.flush(timeoutMs: 10_000)
    }

    func params(_ cluster: KafkaMockCluster, group: String = "g1", reset: String = "earliest") -> [String: String] {
        ["bootstrap.servers": cluster.bootstrapServers, "group.id": group, "auto.offset.reset": reset,
         "key.deserializer": "org.apache.kafka.common.serialization.StringDeserializer"]
    }


    @Test func everyRecordIsReadOnceAndEachBatchReadsContiguousRanges() throws {
        let (cluster, producer) = try cluster()
        try send((0..<300).map { "a\($0)" }, with: producer)
        let (seen, ranges, inputs) = try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            let stream = KafkaUtils.createDirectStream(ssc, .preferConsistent, .subscribe(["events"], params(cluster)))
            let seen = Mutex<[String]>([])
            let ranges = Mutex<[Time: [OffsetRange]]>([:])
            stream.foreachRDD { rdd, time in
                let records = try rdd.collect()
                #expect(rdd.numPartitions == 3, "one RDD partition per Kafka partition")
                ranges.withLock { $0[time] = stream.offsetRanges(at: time) }
                seen.withLock { $0 += records.map(\.valueString) }
            }
            let recorder = EventRecorder()
            ssc.addStreamingListener(recorder)
            try ssc.start()
            runSeconds(ssc, clock, 1...2)
            try send((0..<90).map { "b\($0)" }, with: producer)
            runSeconds(ssc, clock, 3...4)
            ssc.waitForListeners()
            ssc.stop()
            return (seen.withLock { $0 }, ranges.withLock { $0 }, recorder.completedBatches)
        }
        #expect(seen.sorted() == ((0..<300).map { "a\($0)" } + (0..<90).map { "b\($0)" }).sorted(), "every record once")
        for partition in Int32(0)..<3 {
            let mine = ranges.sorted { $0.key < $1.key }.compactMap { $0.value.first { $0.partition == partition } }
            #expect(mine.count == 4)
            #expect(mine.first?.fromOffset == 0 && mine.last?.untilOffset == 130, "\(mine)")
            #expect(zip(mine, mine.dropFirst()).allSatisfy { $0.untilOffset == $1.fromOffset }, "ranges follow each other")
        }
        let counted = inputs.map { $0.numRecords }
        #expect(counted.reduce(0, +) == 390 && counted == ranges.sorted { $0.key < $1.key }.map { $0.value.reduce(0) { $0 + $1.count } })
    }

    @Test func maxRatePerPartitionBoundsEachBatch() throws {
        let (cluster, producer) = try cluster()
        try send((0..<90).map { "r\($0)" }, with: producer)
        let counts = try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: conf.set("spark.streaming.kafka.maxRatePerPartition", "10"), batchDuration: .seconds(1), clock: clock)
            let stream = KafkaUtils.createDirectStream(ssc, .preferConsistent, .subscribe(["events"], params(cluster)))
            let counts = Mutex<[Int]>([])
            stream.foreachRDD { rdd in
                let count = try rdd.count()
                counts.withLock { $0.append(count) }
            }
            try ssc.start()
            runSeconds(ssc, clock, 1...4)
            ssc.stop()
            return counts.withLock { $0 }
        }
        #expect(counts == [30, 30, 30, 0], "10 a second from each of 3 partitions, until the 90 are read")
    }

    @Test func aRestartFromTheCheckpointGoesOnWhereTheLastBatchEnded() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-kafka-checkpoint")
        defer { directory.remove() }
        let (cluster, producer) = try cluster()
        try send((0..<60).map { "c\($0)" }, with: producer)
        let seen = Mutex<[String]>([])
        let firstRanges = Mutex<[OffsetRange]?>(nil)
        func create(_ clock: ManualClock) throws -> StreamingContext {
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            ssc.checkpoint(directory.path)
            let stream = KafkaUtils.createDirectStream(ssc, .preferConsistent, .subscribe(["events"], params(cluster)))
            stream.foreachRDD { rdd in
                let values = try rdd.collect().map(\.valueString)
                seen.withLock { $0 += values }
            }
            return ssc
        }
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try create(clock)
            try ssc.start()
            runSeconds(ssc, clock, 1...2)
            let stream = try #require(ssc.graph.inputs.first as? DirectKafkaInputDStream)
            firstRanges.withLock { $0 = stream.offsetRanges(at: Time(milliseconds: 2_000)) }
            ssc.stop()
        }
        try send((0..<30).map { "d\($0)" }, with: producer)
        try StreamTest.exclusively {
            let clock = ManualClock()
            clock.set(to: Time(milliseconds: 2_000))
            let ssc = try StreamingContext.getOrCreate(checkpointPath: directory.path) { try create(clock) }
            let stream = try #require(ssc.graph.inputs.first as? DirectKafkaInputDStream)
            try ssc.start()
            #expect(stream.offsetRanges(at: Time(milliseconds: 2_000)) == firstRanges.withLock { $0 }, "the ranges came back")
            runSeconds(ssc, clock, 3...4)
            ssc.stop()
        }
        let values = seen.withLock { $0 }
        #expect(values.sorted() == ((0..<60).map { "c\($0)" } + (0..<30).map { "d\($0)" }).sorted(), "no record lost or read twice")
    }

    @Test func committedOffsetsReachTheGroupAndANewRunResumesThere() throws {
        let (cluster, producer) = try cluster()
        try send((0..<30).map { "e\($0)" }, with: producer)
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            let stream = KafkaUtils.createDirectStream(ssc, .preferConsistent, .subscribe(["events"], params(cluster, group: "g2")))
            stream.foreachRDD { rdd, time in
                _ = try rdd.count()
                stream.commitAsync(stream.offsetRanges(at: time) ?? [])
            }
            try ssc.start()
            runSeconds(ssc, clock, 1...2)  // the second batch commits what the first read
            ssc.stop()
        }
        let reader = try KafkaHandle.consumer(configuration: ["bootstrap.servers": cluster.bootstrapServers, "group.id": "g2"])
        var committed: [TopicPartition: Int64] = [:]
        for _ in 0..<50 where committed.count < 3 {
            committed = try reader.committed((0..<3).map { TopicPartition("events", $0) }, timeoutMs: 5_000)
            if committed.count < 3 { usleep(100_000) }
        }
        #expect(committed == [TopicPartition("events", 0): 10, TopicPartition("events", 1): 10, TopicPartition("events", 2): 10])
        try send((0..<6).map { "f\($0)" }, with: producer)
        let resumed = try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            // latest would skip everything: the group's offsets win.
            let stream = KafkaUtils.createDirectStream(
                ssc, .preferConsistent, .subscribe(["events"], params(cluster, group: "g2", reset: "latest")))
            let seen = Mutex<[String]>([])
            stream.foreachRDD { rdd in
                let values = try rdd.collect().map(\.valueString)
                seen.withLock { $0 += values }
            }
            try ssc.start()
            runSeconds(ssc, clock, 1...1)
            ssc.stop()
            return seen.withLock { $0 }
        }
        #expect(resumed.sorted() == (0..<6).map { "f\($0)" }.sorted())
    }

    @Test func subscribePatternAndAssignSelectPartitions() throws {
        let cluster = try KafkaMockCluster()
        try cluster.createTopic("logs-a", partitions: 2)
        try cluster.createTopic("logs-b", partitions: 1)
        try cluster.createTopic("other", partitions: 1)
        let producer = try KafkaProducer(configuration: ["bootstrap.servers": cluster.bootstrapServers])
        for topic in ["logs-a", "logs-b", "other"] {
            try producer.send(topic: topic, partition: 0, value: Array(topic.utf8))
        }
        try producer.flush(timeoutMs: 10_000)
        func read(_ strategy: ConsumerStrategy) throws -> [String] {
            try StreamTest.exclusively {
                let clock = ManualClock()
                let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
                let seen = Mutex<[String]>([])
                KafkaUtils.createDirectStream(ssc, .preferConsistent, strategy).foreachRDD { rdd in
                    let values = try rdd.collect().map(\.valueString)
                    seen.withLock { $0 += values }
                }
                try ssc.start()
                runSeconds(ssc, clock, 1...1)
                ssc.stop()
                return seen.withLock { $0 }.sorted()
            }
        }
        #expect(try read(.subscribePattern("logs-.*", params(cluster))) == ["logs-a", "logs-b"])
        #expect(try read(.assign([TopicPartition("other", 0)], params(cluster))) == ["other"])
        #expect(try read(.assign([TopicPartition("logs-a", 0)], params(cluster), offsets: [TopicPartition("logs-a", 0): 1])) == [])
    }

    @Test func anUnknownTopicIsAnErrorNamingIt() throws {
        let (cluster, _) = try cluster()
        let error = try StreamTest.exclusively { () -> (any Error)? in
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            KafkaUtils.createDirectStream(ssc, .preferConsistent, .subscribe(["nope"], params(cluster))).foreachRDD { _ in }
            try ssc.start()
            runSeconds(ssc, clock, 1...1)
            ssc.stop()
            return ssc.error
        }
        #expect("\(String(describing: error))".contains("unknown topic 'nope'"), "\(String(describing: error))")
    }

    @Test func aBrokerDownMidRunFailsTheBatchNamingTheTopicsAndBrokers() throws {
        let broker = try NoidaBroker()
        defer { broker.stop() }
        try KafkaHandle.consumer(configuration: ["bootstrap.servers": broker.bootstrapServers])
            .createTopic("events", partitions: 1, timeoutMs: 10_000)
        let producer = try KafkaProducer(configuration: ["bootstrap.servers": broker.bootstrapServers])
        try send((0..<5).map { "g\($0)" }, partitions: 1, with: producer)
        let error = try StreamTest.exclusively { () -> (any Error)? in
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: conf.set("spark.streaming.kafka.consumer.poll.ms", "300ms"), batchDuration: .seconds(1), clock: clock)
            let params = ["bootstrap.servers": broker.bootstrapServers, "group.id": "g1", "auto.offset.reset": "earliest"]
            let stream = KafkaUtils.createDirectStream(ssc, .preferConsistent, .subscribe(["events"], params))
            stream.foreachRDD { rdd in _ = try rdd.count() }
            return try errorWithTheBrokerDown(ssc, clock, broker) {
                try send((0..<5).map { "h\($0)" }, partitions: 1, with: producer)
            }
        }
        let text = "\(String(describing: error))"
        #expect(text.contains("topics events") && text.contains(broker.bootstrapServers), "\(text)")
    }
}

extension DirectKafkaStreamTests {
    /// With backpressure, the estimated rate is shared over the partitions by their lag (Spark's
    /// maxMessagesPerPartition), and each batch reports the rate and the PID terms it was cut with.
    @Test func backpressureSharesTheEstimatedRateByLag() throws {
        let cluster = try KafkaMockCluster()
        try cluster.createTopic("events", partitions: 2)
        let producer = try KafkaProducer(configuration: ["bootstrap.servers": cluster.bootstrapServers])
        for i in 0..<4_000 { try producer.send(topic: "events", partition: i < 3_000 ? 0 : 1, value: Array("p\(i)".utf8)) }
        try producer.flush(timeoutMs: 10_000)
        let (ranges, inputs) = try StreamTest.exclusively { () -> ([OffsetRange], [BatchInfo]) in
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: conf.set("spark.streaming.backpressure.enabled", "true"), batchDuration: .seconds(1), clock: clock)
            let stream = KafkaUtils.createDirectStream(ssc, .preferConsistent, .subscribe(["events"], params(cluster)))
            let first = Mutex<[OffsetRange]>([])
            stream.foreachRDD { rdd, time in
                _ = try rdd.count()
                if time == Time(milliseconds: 1_000) { first.withLock { $0 = stream.offsetRanges(at: time) ?? [] } }
                usleep(5_000)  // processing takes time, so that the estimator has a rate to give
            }
            let recorder = EventRecorder()
            ssc.addStreamingListener(recorder)
            // As if the estimator had said 400 records a second for the stream.
            try #require(stream.rateControl).state.withLock { $0.rate = 400 }
            try ssc.start()
            runSeconds(ssc, clock, 1...3)
            ssc.waitForListeners()
            ssc.stop()
            return (first.withLock { $0 }, recorder.completedBatches)
        }
        #expect(ranges.map(\.count) == [300, 100], "3000 and 1000 behind: 3/4 and 1/4 of 400 a second")
        let reported = inputs.compactMap { $0.streamIdToInputInfo.values.first }
        #expect(reported.first?.rateLimit == 400)
        #expect(reported.dropFirst().contains { $0.pidTerms != nil && $0.rateLimit != nil }, "\(reported)")
    }
}
