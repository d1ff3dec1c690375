import SluiceColumnar
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// What a direct stream's run gave: every value read, each batch's ranges, the completed batches, the error.
struct DirectRun {
    var values: [String] = []
    var ranges: [Time: [OffsetRange]] = [:]
    var batches: [BatchInfo] = []
    var error: (any Error)?
}

/// The direct stream when the cluster misbehaves: a leader moving, slow fetches, offsets gone by retention,
/// partitions added. Faults come from librdkafka's mock cluster, or from a noida-db broker where the mock cannot
/// make them (it has no DeleteRecords nor CreatePartitions).
extension DirectKafkaStreamTests {
    /// Runs batches `seconds` (in seconds) of a direct stream over `strategy`, calling `between(second)` before
    /// each batch, and stops.
    func runDirect(
        _ strategy: ConsumerStrategy, conf: StreamingConf? = nil, seconds: ClosedRange<Int64>,
        between: (Int64) throws -> Void = { _ in }
    ) throws -> DirectRun {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf ?? self.conf, batchDuration: .seconds(1), clock: clock)
            let stream = KafkaUtils.createDirectStream(ssc, .preferConsistent, strategy)
            let run = Mutex(DirectRun())
            stream.foreachRDD { rdd, time in
                let values = try rdd.collect().map(\.valueString)
                run.withLock {
                    $0.values += values
                    $0.ranges[time] = stream.offsetRanges(at: time)
                }
            }
            let recorder = EventRecorder()
            ssc.addStreamingListener(recorder)
            try ssc.start()
            for second in seconds {
                try between(second)
                runSeconds(ssc, clock, second...second)
                if ssc.error != nil { break }
            }
            ssc.waitForListeners()
            ssc.stop()
            var result = run.withLock { $0 }
            result.batches = recorder.completedBatches
            result.error = ssc.error
            return result
        }
    }

    @Test func aLeaderMovingMidRunLosesAndRepeatsNoRecord() throws {
        let cluster = try KafkaMockCluster(brokers: 3)
        try cluster.createTopic("events", partitions: 3, replicas: 3)
        let producer = try KafkaProducer(configuration: ["bootstrap.servers": cluster.bootstrapServers])
        let sent = (0..<3).map { round in (0..<60).map { "l\(round)-\($0)" } }
        let run = try runDirect(.subscribe(["events"], params(cluster)), seconds: 1...4) { second in
            guard second <= 3 else { return }
            if second > 1 {
                // Every partition's leader moves to another broker at least once over the two moves.
                for partition in Int32(0)..<3 {
                    try cluster.moveLeader(of: "events", partition: partition, to: (partition + Int32(second)) % 3 + 1)
                }
            }
            try send(sent[Int(second) - 1], with: producer)
        }
        #expect(run.error == nil, "\(String(describing: run.error))")
        #expect(run.values.sorted() == sent.flatMap { $0 }.sorted(), "every record once")
    }

    @Test func noBrokerAtStartFailsTheFirstBatchNamingTheTopicsAndBrokers() throws {
        // A port nothing listens on (a NoidaBroker stopped at once).
        let gone = try NoidaBroker()
        gone.stop()
        let params = ["bootstrap.servers": gone.bootstrapServers, "group.id": "g1", "auto.offset.reset": "earliest"]
        let started = ContinuousClock.now
        let run = try runDirect(
            .subscribe(["events"], params), conf: conf.set("spark.streaming.kafka.consumer.poll.ms", "500ms"), seconds: 1...1)
        let text = "\(String(describing: run.error))"
        #expect(text.contains("topics events") && text.contains("brokers \(gone.bootstrapServers)"), "\(text)")
        #expect(ContinuousClock.now - started < .seconds(10), "the batch fails within the poll timeout, not hangs")
    }

    @Test func aSlowFetchWithinThePollTimeoutStillReadsEveryRecord() throws {
        let (cluster, producer) = try cluster()
        let values = (0..<60).map { "s\($0)" }
        try send(values, with: producer)
        try cluster.delay(next: 3, .fetch, by: 400)
        let run = try runDirect(.subscribe(["events"], params(cluster)), seconds: 1...2)
        #expect(run.error == nil, "\(String(describing: run.error))")
        #expect(run.values.sorted() == values.sorted())
        let first = try #require(run.batches.first?.processingDelay)
        #expect(first >= 400, "the first batch waited for the slow fetch: \(first) ms")
    }

    @Test func aFetchSlowerThanThePollTimeoutFailsTheBatchNamingTheRangeAndTheKey() throws {
        let (cluster, producer) = try cluster()
        try send((0..<30).map { "t\($0)" }, with: producer)
        try cluster.delay(next: 6, .fetch, by: 3_000)
        let run = try runDirect(
            .subscribe(["events"], params(cluster)), conf: conf.set("spark.streaming.kafka.consumer.poll.ms", "300ms"),
            seconds: 1...1)
        let text = "\(String(describing: run.error))"
        #expect(
            text.contains("no record of events-") && text.contains("at offset 0 within 300 ms")
                && text.contains("spark.streaming.kafka.consumer.poll.ms") && text.contains("offsets 0 to 10"),
            "\(text)")
    }

    @Test func aFetchAnsweredOffsetOutOfRangeFailsTheBatchNamingThePartitionAndOffset() throws {
        let (cluster, producer) = try cluster(partitions: 1)
        try send((0..<10).map { "o\($0)" }, partitions: 1, with: producer)
        cluster.fail(next: 1, .fetch, with: 1)  // OFFSET_OUT_OF_RANGE
        let run = try runDirect(.subscribe(["events"], params(cluster)), seconds: 1...1)
        let text = "\(String(describing: run.error))"
        #expect(text.contains("reading events-0 at offset 0") && text.contains("ffset out of range"), "\(text)")
        #expect(run.values.isEmpty)
    }
}

/// Faults the mock cluster cannot make, on a noida-db broker.
@Suite(.serialized) struct DirectKafkaBrokerFaultTests {
    let suite = DirectKafkaStreamTests()

    func topic(_ name: String, partitions: Int32, on broker: NoidaBroker) throws -> KafkaHandle {
        let admin = try KafkaHandle.consumer(configuration: ["bootstrap.servers": broker.bootstrapServers])
        try admin.createTopic(name, partitions: partitions, timeoutMs: 10_000)
        return admin
    }

    func params(_ broker: NoidaBroker) -> [String: String] {
        ["bootstrap.servers": broker.bootstrapServers, "group.id": "faults", "auto.offset.reset": "earliest"]
    }

    @Test func partitionsAddedToASubscribedTopicAreReadFromTheirStart() throws {
        let broker = try NoidaBroker()
        defer { broker.stop() }
        let admin = try topic("grows", partitions: 1, on: broker)
        let before = (0..<10).map { "x\($0)" }
        let after = (0..<30).map { "y\($0)" }
        let run = try suite.runDirect(.subscribe(["grows"], params(broker)), seconds: 1...3) { second in
            guard second <= 2 else { return }
            if second == 2 { try admin.addPartitions("grows", total: 3, timeoutMs: 10_000) }
            // Made after the change, so that it knows the new partitions.
            let producer = try KafkaProducer(configuration: ["bootstrap.servers": broker.bootstrapServers])
            try suite.send(second == 1 ? before : after, to: "grows", partitions: second == 1 ? 1 : 3, with: producer)
        }
        #expect(run.error == nil, "\(String(describing: run.error))")
        #expect(run.values.sorted() == (before + after).sorted(), "every record once")
        let second = run.ranges[Time(milliseconds: 2_000)] ?? []
        #expect(second.map(\.partition) == [0, 1, 2], "\(second)")
        #expect(second.filter { $0.partition > 0 }.allSatisfy { $0.fromOffset == 0 && $0.untilOffset == 10 }, "\(second)")
    }

    @Test func recordsRemovedByRetentionBeforeTheStreamReadThemFailTheBatchNamingThePartitionAndOffsets() throws {
        let broker = try NoidaBroker()
        defer { broker.stop() }
        let admin = try topic("kept", partitions: 1, on: broker)
        let producer = try KafkaProducer(configuration: ["bootstrap.servers": broker.bootstrapServers])
        let run = try suite.runDirect(.subscribe(["kept"], params(broker)), seconds: 1...2) { second in
            try suite.send((0..<10).map { "k\(second)-\($0)" }, to: "kept", partitions: 1, with: producer)
            if second == 2 { try admin.deleteRecords(before: [TopicPartition("kept", 0): 15], timeoutMs: 10_000) }
        }
        #expect(run.values.sorted() == (0..<10).map { "k1-\($0)" }.sorted(), "the first batch's records, output once")
        let text = "\(String(describing: run.error))"
        #expect(
            text.contains("offsets of kept-0 from 10 are gone") && text.contains("the partition now starts at 15"), "\(text)")
    }
}

extension DirectKafkaStreamTests {
    /// Runs one batch of `decodeValues(undecodable) { try $0.utf8Value() }` over `values` (bytes) on partition 0:
    /// the values decoded and the context's error.
    func decodeOneBatch(_ values: [[UInt8]], _ undecodable: UndecodableRecords) throws -> ([String], (any Error)?) {
        let (cluster, producer) = try cluster(partitions: 1)
        for value in values { try producer.send(topic: "events", partition: 0, value: value) }
        try producer.flush(timeoutMs: 10_000)
        return try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            let decoded = Mutex<[String]>([])
            KafkaUtils.createDirectStream(ssc, .preferConsistent, .subscribe(["events"], params(cluster)))
                .decodeValues(undecodable) { try $0.utf8Value() }
                .foreachRDD { rdd in
                    let values = try rdd.collect()
                    decoded.withLock { $0 += values }
                }
            try ssc.start()
            runSeconds(ssc, clock, 1...1)
            ssc.stop()
            return (decoded.withLock { $0 }, ssc.error)
        }
    }

    @Test func aRecordThatFailsDecodingFailsTheBatchNamingIt() throws {
        let (decoded, error) = try decodeOneBatch([Array("good".utf8), [0x61, 0xFF, 0x62], Array("fine".utf8)], .failTheBatch)
        #expect(decoded.isEmpty)
        let text = "\(String(describing: error))"
        #expect(text.contains("cannot decode the value of events-0 at offset 1: not UTF-8: bad byte at 1 of 3"), "\(text)")
    }

    @Test func aRecordThatFailsDecodingIsSkippedAndLoggedWhenAsked() throws {
        let logs = CapturedLogs.shared  // before the context makes its loggers
        let (decoded, error) = try decodeOneBatch(
            [Array("good".utf8), [0xC3], Array("caf\u{E9}".utf8), [0xE2, 0x82]], .skipAndLog)
        #expect(error == nil)
        #expect(decoded.sorted() == ["caf\u{E9}", "good"])
        let warnings = logs.matching("cannot decode the value of events-0")
        #expect(warnings.count == 2 && warnings.allSatisfy { $0.level == .warning && $0.label == "sluice.stream" }, "\(warnings)")
        #expect(warnings.contains { $0.message.contains("at offset 3: not UTF-8: bad byte at 0 of 2; the record is skipped") })
    }
}

extension DirectKafkaStreamTests {
    @Test func aWindowOverTheStreamKeepsItsBatchesOnDiskWhenAsked() throws {
        let (cluster, producer) = try cluster()
        let values = (0..<90).map { "w\($0)" }
        let (windows, spilled) = try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            let windows = Mutex<[[String]]>([])
            let stream = KafkaUtils.createDirectStream(ssc, .preferConsistent, .subscribe(["events"], params(cluster)))
            // On disk only: each batch's records go through their block columns (before they had any, this failed
            // with "no block encoding").
            stream.persist(.diskOnly)
            stream.window(windowDuration: .seconds(2), slideDuration: .seconds(1)).foreachRDD { rdd in
                let values = try rdd.collect().map(\.valueString)
                windows.withLock { $0.append(values.sorted()) }
            }
            try ssc.start()
            for second in Int64(1)...3 {
                try send(Array(values[Int(second - 1) * 30..<Int(second) * 30]), with: producer)
                runSeconds(ssc, clock, second...second)
            }
            let spilled = ssc.engineStatus.spill.bytesSpilled
            ssc.stop()
            #expect(ssc.error == nil, "\(String(describing: ssc.error))")
            return (windows.withLock { $0 }, spilled)
        }
        #expect(windows == [Array(values[0..<30]).sorted(), Array(values[0..<60]).sorted(), Array(values[30..<90]).sorted()])
        #expect(spilled > 0, "the batches went to disk")
    }
}

/// Kafka records stored in blocks (a persisted batch, a window's batches, a spill) and in the row encoding.
@Suite struct ConsumerRecordStorageTests {
    func randomRecords(_ count: Int, seed: UInt64) -> [ConsumerRecord] {
        var random = SeededGenerator(seed: seed)
        func bytes(_ most: Int) -> [UInt8] { (0..<Int.random(in: 0...most, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) } }
        return (0..<count).map { i in
            ConsumerRecord(
                topic: ["events", "logs-\u{E9}t\u{E9}", ""][i % 3], partition: Int32.random(in: 0...Int32.max, using: &random),
                offset: Int64.random(in: 0...Int64.max, using: &random), timestamp: i % 5 == 0 ? -1 : Int64.random(in: 0...1 << 42, using: &random),
                key: i % 4 == 0 ? nil : bytes(20), value: bytes(i % 7 == 0 ? 5_000 : 60))
        }
    }

    @Test func recordsRoundTripThroughTheirSixColumnsAndTheRowEncoding() throws {
        let records = randomRecords(500, seed: 15)
        let codec = try #require(ElementCodecs.lookup(ConsumerRecord.self))
        let block = try codec.encode(records)
        #expect(block.schema.map(\.kind) == [.string, .int32, .int64, .int64, .binary, .binary])
        #expect(try codec.decode(block) == records)
        for record in records.prefix(50) {
            var writer = try BinaryWriter()
            record.encode(to: &writer)
            let back = try writer.buffer.withUnsafeBytes { bytes in
                try BinaryReader.withReader(bytes) { try ConsumerRecord.decode(from: &$0) }
            }
            #expect(back == record)
        }
    }

    @Test func aCorruptRowIsAnErrorNamingWhatWasWrong() throws {
        var writer = try BinaryWriter()
        writer.writeString("events")
        writer.writeVarInt(Int64(Int32.max) + 1)
        let error = writer.buffer.withUnsafeBytes { bytes in
            #expect(throws: FormatError.self) { try BinaryReader.withReader(bytes) { try ConsumerRecord.decode(from: &$0) } }
        }
        #expect("\(String(describing: error))".contains("partition number 2147483648 of topic 'events'"))
        // Cut short anywhere: an error, never a crash.
        let record = randomRecords(1, seed: 3)[0]
        var full = try BinaryWriter()
        record.encode(to: &full)
        let bytes = full.buffer.withUnsafeBytes { Array($0) }
        for cut in 0..<bytes.count {
            _ = bytes.prefix(cut).withUnsafeBytes { prefix in
                #expect(throws: FormatError.self) { try BinaryReader.withReader(prefix) { try ConsumerRecord.decode(from: &$0) } }
            }
        }
    }
}
