import CRdKafka
import Glibc
import SluiceExecution

/// The receiver of `KafkaUtils.createStream`: a member of the consumer group `group.id` (Kafka balances the
/// topics' partitions over the group's members) that stores what it polls in blocks, and commits the offsets of
/// a block to the group only once the block is stored (with the write-ahead log on: durable), so that a restart
/// loses nothing the receiver took (Spark's reliable Kafka receiver).
final class KafkaReceiver: Receiver<(String, String)>, @unchecked Sendable {
    let topics: [String]
    let kafkaParams: [String: String]

    init(topics: [String], kafkaParams: [String: String], storageLevel: StorageLevel) {
        self.topics = topics
        self.kafkaParams = kafkaParams
        super.init(storageLevel: storageLevel)
    }

    override func onStart() {
        do {
            guard kafkaParams["group.id"] != nil else {
                throw KafkaError("KafkaUtils.createStream needs group.id in kafkaParams (the consumer group it joins)")
            }
            var conf = kafkaParams
            conf["enable.auto.commit"] = "false"  // committed after each block is stored
            let consumer = try KafkaHandle.consumer(configuration: conf)
            rd_kafka_poll_set_consumer(consumer.pointer)
            let list = KafkaHandle.list(topics.map { (TopicPartition($0, RD_KAFKA_PARTITION_UA), 0) })
            defer { rd_kafka_topic_partition_list_destroy(list) }
            let subscribed = rd_kafka_subscribe(consumer.pointer, list)
            guard subscribed == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError("subscribing to \(topics.joined(separator: ", "))", code: subscribed)
            }
            try DetachedThread.run("Kafka receiver") { [self] in receive(consumer) }
        } catch {
            restart("the Kafka receiver could not start", error: error)
        }
    }

    /// Polls until stopped: a block every 10,000 records or 200 ms, stored, then its offsets committed. Records
    /// polled but not stored when the receiver stops are not committed: the group gives them again. The thread
    /// leaves the group (closes the consumer) as it ends.
    private func receive(_ consumer: KafkaHandle) {
        defer { _ = rd_kafka_consumer_close(consumer.pointer) }
        var block: [(String, String)] = []
        var next: [TopicPartition: Int64] = [:]
        var started = monotonicNanoseconds()
        while !isStopped {
            if let message = rd_kafka_consumer_poll(consumer.pointer, 100) {
                let m = message.pointee
                if m.err == RD_KAFKA_RESP_ERR_NO_ERROR, let topic = m.rkt.map({ String(cString: rd_kafka_topic_name($0)) }) {
                    let key = m.keyBytes.map { String(decoding: $0, as: UTF8.self) } ?? ""
                    block.append((key, String(decoding: m.valueBytes, as: UTF8.self)))
                    next[TopicPartition(topic, m.partition)] = m.offset + 1
                } else if m.err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    reportError("Kafka receiver", KafkaError("polling \(topics.joined(separator: ", "))", code: m.err))
                }
                rd_kafka_message_destroy(message)
            }
            let due = monotonicNanoseconds() &- started >= 200_000_000
            guard !block.isEmpty, block.count >= 10_000 || due else { continue }
            do {
                try store(contentsOf: block)
                try consumer.commit(next, async: false)
            } catch {
                // Not committed: the group gives these records again to whoever reads the partitions next.
                restart("the Kafka receiver could not store or commit a block", error: error)
                return
            }
            block.removeAll(keepingCapacity: true)
            next = [:]
            started = monotonicNanoseconds()
        }
    }
}

extension KafkaUtils {
    /// A receiver stream (Spark's `KafkaUtils.createStream`): a consumer-group member reading `topics`, as
    /// (key, value) text ("" for no key). Turn on the write-ahead log
    /// (`spark.streaming.receiver.writeAheadLog.enable`, with a checkpoint directory) for zero data loss, as the
    /// guide says: offsets are committed only for blocks stored.
    public static func createStream(
        _ ssc: StreamingContext, kafkaParams: [String: String], topics: [String],
        storageLevel: StorageLevel = .memoryAndDiskSer2
    ) -> ReceiverInputDStream<(String, String)> {
        ssc.receiverStream(KafkaReceiver(topics: topics, kafkaParams: kafkaParams, storageLevel: storageLevel))
    }
}
