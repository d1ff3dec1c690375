import Synchronization

/// A record to write to Kafka: its key (nil: none) and value.
public struct ProducerRecord: Sendable, Equatable {
    public var key: [UInt8]?
    public var value: [UInt8]

    public init(key: [UInt8]? = nil, value: [UInt8]) {
        self.key = key
        self.value = value
    }

    /// A record of UTF-8 text.
    public init(key: String? = nil, value: String) {
        self.init(key: key.map { Array($0.utf8) }, value: Array(value.utf8))
    }
}

/// Writes batches to a Kafka topic: an idempotent producer, made at the first batch and kept; with
/// `transactional.id`, one transaction a batch, which may carry a direct stream's offsets.
final class KafkaSink: Sendable {
    let topic: String
    let kafkaParams: [String: String]
    private let producer = Mutex<KafkaProducer?>(nil)
    private let timeoutMs: Int32 = 60_000

    init(topic: String, kafkaParams: [String: String]) {
        self.topic = topic
        var params = kafkaParams
        // Retries never duplicate or reorder records (Kafka's idempotent producer), unless the program says no.
        if params["enable.idempotence"] == nil { params["enable.idempotence"] = "true" }
        self.kafkaParams = params
    }

    private func client() throws -> KafkaProducer {
        try producer.withLock { producer in
            if let producer { return producer }
            let made = try KafkaProducer(configuration: kafkaParams)
            if made.transactional { try made.initTransactions(timeoutMs: timeoutMs) }
            producer = made
            return made
        }
    }

    /// Writes `rdd`'s records and waits for every delivery report; with a transactional producer, inside one
    /// transaction that also commits `offsets` for `group`. Any failed delivery fails the batch with the broker's
    /// error (and aborts the transaction).
    func write<T>(
        _ rdd: RDD<T>, offsets: (group: String, next: [TopicPartition: Int64])?,
        _ record: @escaping @Sendable (T) -> ProducerRecord
    ) throws {
        let producer = try client()
        if offsets != nil && !producer.transactional {
            throw KafkaError("committing a stream's offsets with the output to \(topic) needs a transactional producer (set transactional.id)")
        }
        if producer.transactional { try producer.beginTransaction() }
        do {
            let reports = DeliveryReports()
            let topic = self.topic
            try rdd.foreachPartition { partition in
                for element in partition {
                    let out = record(element)
                    try producer.send(topic: topic, key: out.key, value: out.value, reports: reports)
                }
            }
            try producer.flush(timeoutMs: timeoutMs)
            let counts = reports.counts.withLock { $0 }
            if let first = counts.firstError {
                throw KafkaError("\(counts.failed) of \(counts.failed + counts.delivered) records to \(topic) failed; the first: \(first)")
            }
            if let offsets { try producer.sendOffsets(offsets.next, group: offsets.group, timeoutMs: timeoutMs) }
            if producer.transactional { try producer.commitTransaction(timeoutMs: timeoutMs) }
        } catch {
            if producer.transactional { producer.abortTransaction(timeoutMs: timeoutMs) }
            throw error
        }
    }
}

extension DStream {
    /// Writes every batch's records to Kafka `topic` (the Kafka sink): `record` makes each element's key and
    /// value. The producer is idempotent (`enable.idempotence`, unless `kafkaParams` says otherwise); the output
    /// operation waits for every record's delivery report, and a record the broker refuses fails the batch with
    /// the broker's error. With `transactional.id` in `kafkaParams`, each batch is one transaction.
    ///
    /// Exactly once from Kafka to Kafka: give `committingOffsetsOf` the direct stream the records came from (its
    /// `group.id` is the group), with `transactional.id` set: each batch's output and the end of its offset
    /// ranges commit in the same transaction, and a restarted program (no checkpoint; the stream starts from the
    /// group's committed offsets) neither loses nor repeats a record for `read_committed` readers.
    public func writeToKafka(
        topic: String, kafkaParams: [String: String], committingOffsetsOf source: DirectKafkaInputDStream? = nil,
        _ record: @escaping @Sendable (Element) -> ProducerRecord
    ) {
        let sink = KafkaSink(topic: topic, kafkaParams: kafkaParams)
        _ = ForEachDStream(parent: self, name: "writeToKafka") { rdd, time in
            var offsets: (String, [TopicPartition: Int64])?
            if let source {
                guard let group = source.strategy.kafkaParams["group.id"] else {
                    throw KafkaError("committing offsets with the output to \(topic) needs group.id in the source stream's kafkaParams")
                }
                let ranges = source.offsetRanges(at: time) ?? []
                offsets = (group, Dictionary(ranges.map { ($0.topicPartition, $0.untilOffset) }) { max($0, $1) })
            }
            try sink.write(rdd, offsets: offsets, record)
        }
    }
}
