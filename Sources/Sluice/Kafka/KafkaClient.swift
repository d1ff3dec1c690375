import CRdKafka
import Glibc
import Logging
import SluiceColumnar
import Synchronization

/// librdkafka's own messages (its syslog levels), through swift-log as `sluice.kafka`, rather than to standard
/// error.
private let kafkaLog: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    _, level, facility, text in
    let logger = Logger(label: LogLayer.kafka.label)
    let severity: Logger.Level = level <= 3 ? .error : level == 4 ? .warning : level == 5 ? .notice : level == 6 ? .info : .debug
    let message = text.map { String(cString: $0) } ?? ""
    logger.log(level: severity, "librdkafka \(facility.map { String(cString: $0) } ?? ""): \(message)")
}

/// A topic and partition (Kafka's `TopicPartition`).
public struct TopicPartition: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    public var description: String { "\(topic)-\(partition)" }
}

/// What went wrong talking to Kafka: what was being done, librdkafka's error code and its message.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// librdkafka's `rd_kafka_resp_err_t` (negative: the client's own; positive: the broker's).
    public let code: Int32
    public let message: String

    init(_ what: String, code: rd_kafka_resp_err_t) {
        self.code = code.rawValue
        self.message = "\(what): \(String(cString: rd_kafka_err2str(code))) (\(String(cString: rd_kafka_err2name(code))))"
    }

    init(_ message: String, code: Int32 = -1) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// The Java client's keys Spark programs pass that librdkafka has no use for (the Swift stream hands out
/// bytes): accepted and left out.
let javaOnlyKafkaKeys: Set<String> = ["key.deserializer", "value.deserializer", "key.serializer", "value.serializer"]

/// A librdkafka client (consumer or producer). librdkafka's handles are thread-safe; the handle is destroyed
/// with the object.
package final class KafkaHandle: @unchecked Sendable {
    // @unchecked: `pointer` is a librdkafka handle, which librdkafka makes safe to use from any thread.
    let pointer: OpaquePointer
    let configuration: [String: String]

    /// A client of `kind` with `configuration` (librdkafka's keys; the Java client's names of the same
    /// settings, such as `bootstrap.servers`, are librdkafka's too).
    /// - Throws: ``KafkaError`` naming the key and value librdkafka refused.
    init(
        _ kind: rd_kafka_type_t, configuration: [String: String], prepare: (OpaquePointer?) -> Void = { _ in }
    ) throws {
        let conf = rd_kafka_conf_new()
        rd_kafka_conf_set_log_cb(conf, kafkaLog)
        prepare(conf)
        var error = [CChar](repeating: 0, count: 512)
        func text() -> String { String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        for (key, value) in configuration.sorted(by: { $0.key < $1.key }) where !javaOnlyKafkaKeys.contains(key) {
            if rd_kafka_conf_set(conf, key, value, &error, error.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError("Kafka setting \(key)=\(value): \(text())")
            }
        }
        // rd_kafka_new owns the configuration once it succeeds.
        guard let handle = rd_kafka_new(kind, conf, &error, error.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError("cannot make a Kafka client: \(text())")
        }
        self.pointer = handle
        self.configuration = configuration
    }

    deinit { rd_kafka_destroy(pointer) }

    /// A consumer client with `configuration`.
    package static func consumer(configuration: [String: String]) throws -> KafkaHandle {
        try KafkaHandle(RD_KAFKA_CONSUMER, configuration: configuration)
    }

    /// The low and high watermarks of `partition` (the first offset kept and the next offset to be written).
    package func watermarks(_ partition: TopicPartition, timeoutMs: Int32) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(pointer, partition.topic, partition.partition, &low, &high, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError("offsets of \(partition)", code: err) }
        return (low, high)
    }

    /// The partitions of every topic the cluster has (internal topics left out).
    func topicPartitions(timeoutMs: Int32) throws -> [String: [Int32]] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(pointer, 1, nil, &metadata, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError("the cluster's topics", code: err) }
        defer { rd_kafka_metadata_destroy(metadata) }
        var topics: [String: [Int32]] = [:]
        for t in 0..<Int(metadata.pointee.topic_cnt) {
            let topic = metadata.pointee.topics[t]
            let name = String(cString: topic.topic)
            guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR, !name.hasPrefix("__") else { continue }
            topics[name] = (0..<Int(topic.partition_cnt)).map { topic.partitions[$0].id }.sorted()
        }
        return topics
    }

    /// Makes `topic` with `partitions` partitions (replication 1); a topic that exists already is left as it is.
    package func createTopic(_ topic: String, partitions: Int32, timeoutMs: Int32) throws {
        var error = [CChar](repeating: 0, count: 512)
        guard let newTopic = rd_kafka_NewTopic_new(topic, partitions, 1, &error, error.count) else {
            throw KafkaError("topic \(topic) with \(partitions) partitions: refused by the client")
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        try admin("making topic \(topic)", timeoutMs: timeoutMs) { queue in
            var topics: [OpaquePointer?] = [newTopic]
            rd_kafka_CreateTopics(pointer, &topics, 1, nil, queue)
        } result: { event in
            let topicError = Self.onlyTopicError(rd_kafka_event_CreateTopics_result(event).map { result in
                { rd_kafka_CreateTopics_result_topics(result, &$0) } })
            return topicError == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS ? RD_KAFKA_RESP_ERR_NO_ERROR : topicError
        }
    }

    /// Gives `topic` `total` partitions in all (Kafka's CreatePartitions: partitions are only ever added).
    package func addPartitions(_ topic: String, total: Int32, timeoutMs: Int32) throws {
        var error = [CChar](repeating: 0, count: 512)
        guard let request = rd_kafka_NewPartitions_new(topic, Int(total), &error, error.count) else {
            throw KafkaError("\(total) partitions for topic \(topic): refused by the client")
        }
        defer { rd_kafka_NewPartitions_destroy(request) }
        try admin("adding partitions to topic \(topic)", timeoutMs: timeoutMs) { queue in
            var requests: [OpaquePointer?] = [request]
            rd_kafka_CreatePartitions(pointer, &requests, 1, nil, queue)
        } result: { event in
            Self.onlyTopicError(rd_kafka_event_CreatePartitions_result(event).map { result in
                { rd_kafka_CreatePartitions_result_topics(result, &$0) } })
        }
    }

    /// Deletes the records of each partition before its offset in `before` (Kafka's DeleteRecords: what retention
    /// does): the partition then starts there.
    package func deleteRecords(before: [TopicPartition: Int64], timeoutMs: Int32) throws {
        let offsets = Self.list(before.map { ($0.key, $0.value) })
        defer { rd_kafka_topic_partition_list_destroy(offsets) }
        guard let request = rd_kafka_DeleteRecords_new(offsets) else { throw KafkaError("deleting records: refused by the client") }
        defer { rd_kafka_DeleteRecords_destroy(request) }
        try admin("deleting records", timeoutMs: timeoutMs) { queue in
            var requests: [OpaquePointer?] = [request]
            rd_kafka_DeleteRecords(pointer, &requests, 1, nil, queue)
        } result: { event in
            guard let result = rd_kafka_event_DeleteRecords_result(event), let list = rd_kafka_DeleteRecords_result_offsets(result) else {
                return RD_KAFKA_RESP_ERR__BAD_MSG
            }
            return (0..<Int(list.pointee.cnt)).map { list.pointee.elems[$0].err }.first { $0 != RD_KAFKA_RESP_ERR_NO_ERROR }
                ?? RD_KAFKA_RESP_ERR_NO_ERROR
        }
    }

    /// The error of the one topic result an admin answer holds (`results` gives them and their count); a bad
    /// message error when there is not exactly one.
    private static func onlyTopicError(
        _ results: ((inout Int) -> UnsafeMutablePointer<OpaquePointer?>?)?
    ) -> rd_kafka_resp_err_t {
        var count = 0
        guard let list = results?(&count), count == 1 else { return RD_KAFKA_RESP_ERR__BAD_MSG }
        return rd_kafka_topic_result_error(list[0])
    }

    /// Runs one admin request: `send` queues it on the queue it is given; `result` reads the error of the
    /// answer's event (no error: done).
    private func admin(
        _ what: String, timeoutMs: Int32, send: (OpaquePointer?) -> Void, result: (OpaquePointer) -> rd_kafka_resp_err_t
    ) throws {
        let queue = rd_kafka_queue_new(pointer)
        defer { rd_kafka_queue_destroy(queue) }
        send(queue)
        guard let event = rd_kafka_queue_poll(queue, timeoutMs) else {
            throw KafkaError("\(what): no answer within \(timeoutMs) ms")
        }
        defer { rd_kafka_event_destroy(event) }
        let eventError = rd_kafka_event_error(event)
        guard eventError == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(what, code: eventError) }
        let answer = result(event)
        guard answer == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(what, code: answer) }
    }

    /// The group's committed offsets of `partitions` (absent: none committed).
    func committed(_ partitions: [TopicPartition], timeoutMs: Int32) throws -> [TopicPartition: Int64] {
        let list = Self.list(partitions.map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_committed(pointer, list, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError("committed offsets", code: err) }
        var offsets: [TopicPartition: Int64] = [:]
        for i in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[i]
            if element.offset >= 0 { offsets[TopicPartition(String(cString: element.topic), element.partition)] = element.offset }
        }
        return offsets
    }

    /// Commits `offsets` (the next offset to read, per partition) for the group; `async` returns at once.
    func commit(_ offsets: [TopicPartition: Int64], async: Bool) throws {
        guard !offsets.isEmpty else { return }
        let list = Self.list(offsets.map { ($0.key, $0.value) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_commit(pointer, list, async ? 1 : 0)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError("committing offsets", code: err) }
    }

    /// A librdkafka partition list (the caller destroys it).
    static func list(_ entries: [(TopicPartition, Int64)]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(entries.count))!  // Safe: only fails without memory, which traps anyway.
        for (partition, offset) in entries {
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition).pointee.offset = offset
        }
        return list
    }
}

/// One record read from Kafka (Spark's `ConsumerRecord`, with bytes for key and value).
public struct ConsumerRecord: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// Milliseconds since the epoch (the producer's or the broker's time, as the topic says); -1 if none.
    public var timestamp: Int64
    public var key: [UInt8]?
    public var value: [UInt8]

    public init(topic: String, partition: Int32, offset: Int64, timestamp: Int64, key: [UInt8]?, value: [UInt8]) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
    }

    /// The value as UTF-8 text.
    public var valueString: String { String(decoding: value, as: UTF8.self) }
    /// The key as UTF-8 text (nil: no key).
    public var keyString: String? { key.map { String(decoding: $0, as: UTF8.self) } }
}

/// A record stored in a block (a batch persisted at a serialized storage level, a window's batches, a spilled
/// partition) takes six columns: topic, partition, offset, timestamp, key (null: none) and value.
extension ConsumerRecord: BlockSerializable {
    public static var columnTypes: [ColumnType] {
        [ColumnType(.string), ColumnType(.int32), ColumnType(.int64), ColumnType(.int64), ColumnType(.binary, nullable: true),
         ColumnType(.binary)]
    }

    public static var columnCount: Int { 6 }
    public static var hasNullableColumns: Bool { true }

    public static func writeColumns(_ record: ConsumerRecord, to builder: inout BlockBuilder) throws {
        builder.write(string: record.topic)
        builder.write(record.partition)
        builder.write(record.offset)
        builder.write(record.timestamp)
        if let key = record.key { key.withUnsafeBytes { builder.write(bytes: $0) } } else { builder.writeNulls(1) }
        record.value.withUnsafeBytes { builder.write(bytes: $0) }
    }

    public static func readColumns(from row: inout RowReader) throws -> ConsumerRecord {
        let topic = row.readString()
        let partition = row.read(Int32.self)
        let offset = row.read(Int64.self)
        let timestamp = row.read(Int64.self)
        var key: [UInt8]?
        if row.isNextNull() { row.skip(1) } else { key = row.withBytes { Array($0) } }
        let value = row.withBytes { Array($0) }
        return ConsumerRecord(topic: topic, partition: partition, offset: offset, timestamp: timestamp, key: key, value: value)
    }

    public func encode(to writer: inout BinaryWriter) {
        writer.writeString(topic)
        writer.writeVarInt(Int64(partition))
        writer.writeVarInt(offset)
        writer.writeVarInt(timestamp)
        writer.writeBool(key != nil)
        key?.withUnsafeBytes { writer.writeBytes($0) }
        value.withUnsafeBytes { writer.writeBytes($0) }
    }

    public static func decode(from reader: inout BinaryReader) throws -> ConsumerRecord {
        let topic = try reader.readString()
        let at = reader.offset
        let number = try reader.readVarInt()
        guard let partition = Int32(exactly: number) else {
            throw FormatError(.invalidValue, at: at, "Kafka partition number \(number) of topic '\(topic)' does not fit 32 bits")
        }
        let offset = try reader.readVarInt()
        let timestamp = try reader.readVarInt()
        let key = try reader.readBool() ? Array(try reader.readBytes()) : nil
        return ConsumerRecord(
            topic: topic, partition: partition, offset: offset, timestamp: timestamp, key: key, value: Array(try reader.readBytes()))
    }
}

extension rd_kafka_message_t {
    /// The message's key, valid while the message is (nil: no key).
    var keyBytes: UnsafeRawBufferPointer? { key.map { UnsafeRawBufferPointer(start: $0, count: key_len) } }
    /// The message's value, valid while the message is (empty: no value).
    var valueBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: payload, count: payload == nil ? 0 : len) }
}

/// Consumers for reading offset ranges, kept between batches (Spark's `spark.streaming.kafka.consumer.cache`):
/// making one costs a connection to the cluster. A consumer is assigned its range's partition for the read only:
/// one left assigned at the end of a partition fetches again at once whenever the broker answers without
/// waiting for records (noida-db does: ~5,000 empty fetches a second).
final class KafkaConsumerPool: Sendable {
    private let idle = Mutex<[KafkaHandle]>([])
    private let configuration: [String: String]
    let capacity: Int

    init(configuration: [String: String], capacity: Int) {
        var conf = configuration
        // Ranges are read by assignment; nothing is committed from here, and the end of a partition is reported.
        conf["enable.auto.commit"] = "false"
        conf["enable.partition.eof"] = "true"
        conf["auto.offset.reset"] = "error"
        // librdkafka's consumer needs a group even for assigned partitions; Spark's executors use their own.
        conf["group.id"] = "spark-executor-" + (conf["group.id"] ?? "sluice")
        self.configuration = conf
        self.capacity = capacity
    }

    /// Closes the idle consumers (the stream stopped).
    func drain() { idle.withLock { $0 = [] } }

    /// Runs `body` with an idle consumer, or a new one; the consumer goes back to the pool after, unassigned.
    private func withConsumer<R>(_ body: (KafkaHandle) throws -> R) throws -> R {
        let consumer = try idle.withLock { $0.popLast() } ?? KafkaHandle(RD_KAFKA_CONSUMER, configuration: configuration)
        defer {
            _ = rd_kafka_assign(consumer.pointer, nil)
            idle.withLock { if $0.count < capacity { $0.append(consumer) } }
        }
        return try body(consumer)
    }

    /// The records of `range`, in offset order, waiting up to `pollTimeoutMs` for each poll.
    /// - Throws: ``KafkaError`` naming the topic, partition and offset when the broker cannot give them (gone
    ///   by retention, the broker down past the timeout).
    func read(_ range: OffsetRange, pollTimeoutMs: Int32, _ emit: (ConsumerRecord) throws -> Void) throws {
        guard range.untilOffset > range.fromOffset else { return }
        try withConsumer { consumer in
            let partition = KafkaHandle.list([(range.topicPartition, range.fromOffset)])
            defer { rd_kafka_topic_partition_list_destroy(partition) }
            let assigned = rd_kafka_assign(consumer.pointer, partition)
            guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError("assigning \(range.topicPartition) at offset \(range.fromOffset)", code: assigned)
            }
            guard let queue = rd_kafka_queue_get_consumer(consumer.pointer) else {
                throw KafkaError("reading \(range.topicPartition): the consumer has no queue")
            }
            defer { rd_kafka_queue_destroy(queue) }
            try read(range, from: queue, consumer: consumer.pointer, pollTimeoutMs: pollTimeoutMs, emit)
        }
    }

    /// Reads `range` from the queue of `consumer`, assigned to its partition at its first offset: what the queue
    /// holds, a batch at a time, else a wait for the next record.
    private func read(
        _ range: OffsetRange, from queue: OpaquePointer, consumer: OpaquePointer, pollTimeoutMs: Int32,
        _ emit: (ConsumerRecord) throws -> Void
    ) throws {
        let batchSize = 1024
        let messages = UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>.allocate(capacity: batchSize)
        defer { messages.deallocate() }
        var next = range.fromOffset
        /// A record at or past the range's end was seen, or the partition ends there (offsets left in the range
        /// then hold no record: transaction markers).
        var done = false
        while next < range.untilOffset && !done {
            // At most the records left in the range (a batch call waits for all it asks for, so it never waits).
            var count = rd_kafka_consume_batch_queue(queue, 0, messages, Int(min(Int64(batchSize), range.untilOffset - next)))
            if count == 0, let message = rd_kafka_consumer_poll(consumer, pollTimeoutMs) {
                messages[0] = message
                count = 1
            }
            guard count > 0 else {
                throw KafkaError(
                    "no record of \(range.topicPartition) at offset \(next) within \(pollTimeoutMs) ms "
                        + "(spark.streaming.kafka.consumer.poll.ms); the batch reads offsets \(range.fromOffset) to "
                        + "\(range.untilOffset)")
            }
            var failure: (any Error)?
            for i in 0..<count {
                guard let message = messages[i] else { continue }
                defer { rd_kafka_message_destroy(message) }
                guard failure == nil && !done else { continue }
                let m = message.pointee
                if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    done = m.offset >= range.untilOffset
                    continue
                }
                guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    let detail = rd_kafka_message_errstr(message).map { String(cString: $0) } ?? ""
                    failure = KafkaError("reading \(range.topicPartition) at offset \(next) (\(detail))", code: m.err)
                    continue
                }
                guard m.offset >= next else { continue }
                guard m.offset < range.untilOffset else {
                    done = true
                    continue
                }
                var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
                let timestamp = rd_kafka_message_timestamp(message, &timestampType)
                do {
                    try emit(ConsumerRecord(
                        topic: range.topic, partition: range.partition, offset: m.offset, timestamp: timestamp,
                        key: m.keyBytes.map(Array.init), value: Array(m.valueBytes)))
                } catch {
                    failure = error
                }
                next = m.offset + 1
            }
            if let failure { throw failure }
        }
    }
}

/// The delivery reports of a set of records (one batch's): counted as librdkafka reports them.
package final class DeliveryReports: Sendable {
    struct Counts {
        var delivered = 0
        var failed = 0
        var firstError: String?
    }

    let counts = Mutex(Counts())

    package init() {}

    func record(_ error: rd_kafka_resp_err_t, topic: String, partition: Int32) {
        counts.withLock { c in
            if error == RD_KAFKA_RESP_ERR_NO_ERROR {
                c.delivered += 1
            } else {
                c.failed += 1
                if c.firstError == nil { c.firstError = KafkaError("delivering a record to \(topic)-\(partition)", code: error).message }
            }
        }
    }
}

/// librdkafka's delivery report callback: the record's opaque is its batch's ``DeliveryReports``, retained when
/// the record was queued.
private let deliveryReport: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    let reports = Unmanaged<DeliveryReports>.fromOpaque(opaque).takeRetainedValue()
    let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
    reports.record(message.pointee.err, topic: topic, partition: message.pointee.partition)
}

/// A producer: records to topics, each one's delivery reported to the ``DeliveryReports`` it was sent with;
/// with `transactional.id`, in transactions.
package final class KafkaProducer: @unchecked Sendable {
    // @unchecked: librdkafka's handles are thread-safe; `topics` is behind a lock.
    let handle: KafkaHandle
    let transactional: Bool
    /// librdkafka topic handles, made once per topic.
    private let topics = Mutex<[String: OpaquePointer?]>([:])

    deinit {
        for (_, topic) in topics.withLock({ $0 }) { rd_kafka_topic_destroy(topic) }
    }

    package init(configuration: [String: String]) throws {
        handle = try KafkaHandle(RD_KAFKA_PRODUCER, configuration: configuration) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, deliveryReport)
        }
        transactional = configuration["transactional.id"] != nil
    }

    /// Queues `value` (with `key`) for `topic`, at `partition` or where the partitioner puts it; its delivery
    /// goes to `reports`. Waits while librdkafka's queue is full.
    func send(
        topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8], reports: DeliveryReports = DeliveryReports()
    ) throws {
        let keyBytes = key ?? []
        try keyBytes.withUnsafeBytes { keyBytes in
            try value.withUnsafeBytes { valueBytes in
                try send(topic: topic, partition: partition, key: key == nil ? nil : keyBytes, value: valueBytes, reports: reports)
            }
        }
    }

    /// As ``send(topic:partition:key:value:reports:)``, from bytes librdkafka copies.
    package func send(
        topic: String, partition: Int32? = nil, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
        reports: DeliveryReports? = nil
    ) throws {
        let topicHandle = topics.withLock { topics in
            if let known = topics[topic] { return known }
            let made = rd_kafka_topic_new(handle.pointer, topic, nil)
            topics[topic] = made
            return made
        }
        while true {
            let opaque = reports.map { Unmanaged.passRetained($0).toOpaque() }
            let rc = rd_kafka_produce(
                topicHandle, partition ?? RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, UnsafeMutableRawPointer(mutating: value.baseAddress),
                value.count, key?.baseAddress, key?.count ?? 0, opaque)
            if rc == 0 { break }
            if let opaque { Unmanaged<DeliveryReports>.fromOpaque(opaque).release() }
            let error = rd_kafka_last_error()
            guard error == RD_KAFKA_RESP_ERR__QUEUE_FULL else { throw KafkaError("producing to \(topic)", code: error) }
            rd_kafka_poll(handle.pointer, 100)
        }
        rd_kafka_poll(handle.pointer, 0)
    }

    /// Waits up to `timeoutMs` for every queued record's delivery report.
    package func flush(timeoutMs: Int32) throws {
        let err = rd_kafka_flush(handle.pointer, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError("waiting for records to be delivered", code: err) }
    }

    /// Runs a librdkafka transaction call; its error as a ``KafkaError`` (nil: none).
    func transactionCall(_ what: String, _ call: () -> OpaquePointer?) -> KafkaError? {
        guard let error = call() else { return nil }
        defer { rd_kafka_error_destroy(error) }
        return KafkaError("\(what): \(String(cString: rd_kafka_error_string(error)))", code: rd_kafka_error_code(error).rawValue)
    }

    func initTransactions(timeoutMs: Int32) throws {
        if let error = transactionCall("starting transactions", { rd_kafka_init_transactions(handle.pointer, timeoutMs) }) { throw error }
    }

    func beginTransaction() throws {
        if let error = transactionCall("beginning a transaction", { rd_kafka_begin_transaction(handle.pointer) }) { throw error }
    }

    /// Adds the consumer group `group`'s next offsets (`offsets`) to the open transaction.
    func sendOffsets(_ offsets: [TopicPartition: Int64], group: String, timeoutMs: Int32) throws {
        guard !offsets.isEmpty else { return }
        let list = KafkaHandle.list(offsets.map { ($0.key, $0.value) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let metadata = rd_kafka_consumer_group_metadata_new(group)
        defer { rd_kafka_consumer_group_metadata_destroy(metadata) }
        if let error = transactionCall("adding offsets of group \(group) to the transaction", {
            rd_kafka_send_offsets_to_transaction(handle.pointer, list, metadata, timeoutMs)
        }) { throw error }
    }

    func commitTransaction(timeoutMs: Int32) throws {
        if let error = transactionCall("committing the transaction", { rd_kafka_commit_transaction(handle.pointer, timeoutMs) }) {
            throw error
        }
    }

    /// Aborts the open transaction (what it wrote is never read by read_committed consumers).
    func abortTransaction(timeoutMs: Int32) {
        _ = transactionCall("aborting the transaction", { rd_kafka_abort_transaction(handle.pointer, timeoutMs) })
    }
}
