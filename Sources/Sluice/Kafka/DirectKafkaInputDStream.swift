import CRdKafka
import SluiceColumnar
import SluiceExecution
import Synchronization

/// The records of one Kafka partition a batch reads: offsets `fromOffset..<untilOffset` (Spark's `OffsetRange`).
public struct OffsetRange: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    /// The first offset read.
    public var fromOffset: Int64
    /// One past the last offset read.
    public var untilOffset: Int64

    public init(topic: String, partition: Int32, fromOffset: Int64, untilOffset: Int64) {
        self.topic = topic
        self.partition = partition
        self.fromOffset = fromOffset
        self.untilOffset = untilOffset
    }

    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }
    /// Offsets in the range.
    public var count: Int64 { untilOffset - fromOffset }
    public var description: String { "OffsetRange(topic: '\(topic)', partition: \(partition), range: [\(fromOffset) -> \(untilOffset)])" }
}

/// Which partitions a direct stream reads, and where it starts (Spark's `ConsumerStrategies`).
public struct ConsumerStrategy: Sendable {
    enum Selection: Sendable, CustomStringConvertible {
        case topics([String])
        case pattern(String)
        case partitions([TopicPartition])

        var description: String {
            switch self {
            case .topics(let topics): return "topics " + topics.joined(separator: ", ")
            case .pattern(let pattern): return "topics matching \(pattern)"
            case .partitions(let partitions): return "partitions " + partitions.map(\.description).joined(separator: ", ")
            }
        }
    }

    let selection: Selection
    /// librdkafka's settings; the Java client's key names for the same settings work (`bootstrap.servers`,
    /// `group.id`, `auto.offset.reset` earliest or latest, `enable.auto.commit`).
    let kafkaParams: [String: String]
    /// Where to start, per partition, over the group's committed offsets and `auto.offset.reset`.
    let offsets: [TopicPartition: Int64]

    /// Every partition of `topics`, partitions added later included.
    public static func subscribe(
        _ topics: [String], _ kafkaParams: [String: String], offsets: [TopicPartition: Int64] = [:]
    ) -> ConsumerStrategy {
        ConsumerStrategy(selection: .topics(topics), kafkaParams: kafkaParams, offsets: offsets)
    }

    /// Every partition of the topics whose whole name matches `pattern` (a regular expression), looked for at
    /// each batch.
    public static func subscribePattern(
        _ pattern: String, _ kafkaParams: [String: String], offsets: [TopicPartition: Int64] = [:]
    ) -> ConsumerStrategy {
        ConsumerStrategy(selection: .pattern(pattern), kafkaParams: kafkaParams, offsets: offsets)
    }

    /// Exactly `partitions`.
    public static func assign(
        _ partitions: [TopicPartition], _ kafkaParams: [String: String], offsets: [TopicPartition: Int64] = [:]
    ) -> ConsumerStrategy {
        ConsumerStrategy(selection: .partitions(partitions), kafkaParams: kafkaParams, offsets: offsets)
    }
}

/// Where a direct stream's tasks run (Spark's `LocationStrategies`). One process: every partition is local.
public enum LocationStrategy: Sendable {
    case preferConsistent
    case preferBrokers
}

/// Spark's `KafkaUtils` (the 0.10 integration).
public enum KafkaUtils {
    /// A stream with one RDD partition per Kafka partition per batch, reading a fixed offset range each (see
    /// ``DirectKafkaInputDStream``).
    public static func createDirectStream(
        _ ssc: StreamingContext, _ locationStrategy: LocationStrategy = .preferConsistent,
        _ consumerStrategy: ConsumerStrategy
    ) -> DirectKafkaInputDStream {
        DirectKafkaInputDStream(context: ssc, strategy: consumerStrategy)
    }
}

/// Spark's direct Kafka stream: each batch reads, from every partition, the offsets from where the previous
/// batch stopped up to the partition's end when the batch is made (at most
/// `spark.streaming.kafka.maxRatePerPartition` records a second each). The ranges are part of the checkpoint,
/// so a program restarted with `getOrCreate` reads again exactly the ranges of the batches it had not finished.
/// ``offsetRanges(at:)`` gives a batch's ranges (Spark's `HasOffsetRanges`); ``commitAsync(_:)`` commits
/// offsets to the group once the program's output is safe.
public final class DirectKafkaInputDStream: InputDStream<ConsumerRecord>, @unchecked Sendable {
    private struct Offsets {
        /// Where the next batch starts, per partition (nil until the first batch).
        var current: [TopicPartition: Int64]?
        /// The ranges of each batch made and not yet forgotten.
        var ranges: [Time: [OffsetRange]] = [:]
        /// Offsets queued by commitAsync, committed when the next batch is made.
        var toCommit: [TopicPartition: Int64] = [:]
    }

    let strategy: ConsumerStrategy
    private let offsets = Mutex(Offsets())
    private let driver = Mutex<KafkaHandle?>(nil)
    private let pool: KafkaConsumerPool
    private let maxRatePerPartition: Int64
    private let minRatePerPartition: Int64
    /// With backpressure: Spark's PID estimator, its last rate for the whole stream and its terms.
    let rateControl: RateControl?
    private let pollTimeoutMs: Int32
    /// How long a question to the cluster (partitions, watermarks, committed offsets) may take.
    private let metadataTimeoutMs: Int32

    init(context: StreamingContext, strategy: ConsumerStrategy) {
        self.strategy = strategy
        let conf = context.conf
        maxRatePerPartition = Int64(((try? conf.int("spark.streaming.kafka.maxRatePerPartition")) ?? nil) ?? 0)
        minRatePerPartition = Int64(((try? conf.int("spark.streaming.kafka.minRatePerPartition")) ?? nil) ?? 1)
        // The context validated its configuration when it was made.
        let backpressure = ((try? conf.bool("spark.streaming.backpressure.enabled")) ?? false)
        rateControl = backpressure ? (try? PIDRateEstimator(conf: conf, batchDuration: context.batchDuration)).map(RateControl.init) : nil
        let poll = ((try? conf.duration("spark.streaming.kafka.consumer.poll.ms")) ?? nil) ?? .seconds(120)
        pollTimeoutMs = Int32(clamping: max(1, poll.wholeMilliseconds))
        metadataTimeoutMs = min(10_000, pollTimeoutMs)
        pool = KafkaConsumerPool(
            configuration: strategy.kafkaParams,
            capacity: ((try? conf.int("spark.streaming.kafka.consumer.cache.maxCapacity")) ?? nil) ?? 64)
        super.init(context: context, name: "DirectKafkaInputDStream")
    }

    /// Where the next batch starts, per partition (empty before the first batch).
    package var nextOffsets: [TopicPartition: Int64] { offsets.withLock { $0.current ?? [:] } }

    /// The offset ranges batch `time` reads (nil: no such batch remembered).
    public func offsetRanges(at time: Time) -> [OffsetRange]? { offsets.withLock { $0.ranges[time] } }

    /// Commits, to the consumer group (`group.id`), the end of each range: the group then resumes after them.
    /// Like Spark's, the commit happens when the next batch is made, without waiting for the broker.
    public func commitAsync(_ ranges: [OffsetRange]) {
        offsets.withLock { o in
            for range in ranges { o.toCommit[range.topicPartition] = max(o.toCommit[range.topicPartition] ?? 0, range.untilOffset) }
        }
    }

    /// The driver's client (metadata, watermarks, commits), made at the first batch.
    private func client() throws -> KafkaHandle {
        try driver.withLock { handle in
            if let handle { return handle }
            var conf = strategy.kafkaParams
            conf["enable.auto.commit"] = "false"
            let made = try KafkaHandle(RD_KAFKA_CONSUMER, configuration: conf)
            handle = made
            return made
        }
    }

    /// The partitions the strategy selects now.
    private func selectedPartitions(_ client: KafkaHandle) throws -> [TopicPartition] {
        switch strategy.selection {
        case .partitions(let partitions):
            return partitions
        case .topics(let topics):
            let known = try client.topicPartitions(timeoutMs: metadataTimeoutMs)
            return try topics.flatMap { topic -> [TopicPartition] in
                guard let partitions = known[topic] else {
                    throw KafkaError(
                        "unknown topic '\(topic)' (the cluster has \(known.keys.sorted().joined(separator: ", ")))")
                }
                return partitions.map { TopicPartition(topic, $0) }
            }
        case .pattern(let pattern):
            let regex = try Regex(pattern)
            return try client.topicPartitions(timeoutMs: metadataTimeoutMs).filter { (try? regex.wholeMatch(in: $0.key)) != nil }
                .flatMap { topic in topic.value.map { TopicPartition(topic.key, $0) } }
        }
    }

    /// Where reading starts for partitions not read before: the strategy's offsets, else the group's committed
    /// ones, else `auto.offset.reset` (latest by default, as in Spark).
    private func startingOffsets(_ partitions: [TopicPartition], _ client: KafkaHandle) throws -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let committed = strategy.kafkaParams["group.id"] == nil ? [:] : try client.committed(partitions, timeoutMs: metadataTimeoutMs)
        let reset = strategy.kafkaParams["auto.offset.reset"] ?? "latest"
        var start: [TopicPartition: Int64] = [:]
        for partition in partitions {
            if let offset = strategy.offsets[partition] ?? committed[partition] {
                start[partition] = offset
                continue
            }
            let marks = try client.watermarks(partition, timeoutMs: metadataTimeoutMs)
            switch reset {
            case "earliest", "smallest", "beginning": start[partition] = marks.low
            case "latest", "largest", "end": start[partition] = marks.high
            default:
                throw KafkaError("no committed offset for \(partition) and auto.offset.reset is '\(reset)' (use earliest or latest)")
            }
        }
        return start
    }

    override func compute(_ time: Time) throws -> RDD<ConsumerRecord>? {
        let ranges: [OffsetRange]
        if let restored = offsets.withLock({ $0.ranges[time] }) {
            ranges = restored  // a batch made before a restart reads exactly what it read then
        } else {
            ranges = try nextRanges(time)
        }
        let records = ranges.reduce(0) { $0 + $1.count }
        let description = ranges.map { "topic: \($0.topic)\tpartition: \($0.partition)\toffsets: \($0.fromOffset) to \($0.untilOffset)" }
        let (rate, terms) = rateControl?.state.withLock { ($0.rate, $0.terms) } ?? (nil, nil)
        context.reportInputInfo(
            StreamInputInfo(
                inputStreamId: id, numRecords: records, metadata: ["Description": description.joined(separator: "\n")],
                rateLimit: rate, pidTerms: terms),
            at: time)
        let (pool, timeout) = (self.pool, pollTimeoutMs)
        return RDD.custom(engine: context.engine, numPartitions: ranges.count, lineage: Lineage()) { p, sink in
            var chunk = ChunkBuffer<ConsumerRecord>()
            try pool.read(ranges[p], pollTimeoutMs: timeout) { record in
                if chunk.isFull {
                    try chunk.flush(to: sink)
                    WorkStealingPool.yieldPoint()
                }
                chunk.append(record)
            }
            try chunk.flush(to: sink)
        }
    }

    /// The ranges of a new batch: from where the last one stopped to each partition's end now, at most
    /// `maxRatePerPartition` × the batch interval records each; commits what ``commitAsync(_:)`` queued.
    private func nextRanges(_ time: Time) throws -> [OffsetRange] {
        do {
            return try nextRanges(time, client: try client())
        } catch let error as KafkaError {
            let servers = strategy.kafkaParams["bootstrap.servers"] ?? "(no bootstrap.servers)"
            throw KafkaError("\(name) stream \(id) (\(strategy.selection), brokers \(servers)): \(error.message)", code: error.code)
        }
    }

    private func nextRanges(_ time: Time, client: KafkaHandle) throws -> [OffsetRange] {
        let partitions = try selectedPartitions(client)
        let known = offsets.withLock { $0.current ?? [:] }
        let fresh = try startingOffsets(partitions.filter { known[$0] == nil }, client)
        var ends: [(partition: TopicPartition, from: Int64, high: Int64)] = []
        for partition in partitions.sorted() {
            let from = known[partition] ?? fresh[partition] ?? 0
            let marks = try client.watermarks(partition, timeoutMs: metadataTimeoutMs)
            guard from >= marks.low else {
                throw KafkaError(
                    "offsets of \(partition) from \(from) are gone (the partition now starts at \(marks.low): retention "
                        + "removed them before this stream read them)")
            }
            ends.append((partition, from, marks.high))
        }
        let limits = maxMessages(lags: ends.map { max(0, $0.high - $0.from) })
        let ranges = zip(ends, limits).map { end, limit in
            let until = max(end.from, min(end.high, end.from > Int64.max - limit ? Int64.max : end.from + limit))
            return OffsetRange(topic: end.partition.topic, partition: end.partition.partition, fromOffset: end.from, untilOffset: until)
        }
        let toCommit = offsets.withLock { o -> [TopicPartition: Int64] in
            var current = o.current ?? [:]
            for range in ranges { current[range.topicPartition] = range.untilOffset }
            o.current = current
            o.ranges[time] = ranges
            defer { o.toCommit = [:] }
            return o.toCommit
        }
        do {
            try client.commit(toCommit, async: true)
        } catch {
            context.log(.warning, .stream, "\(name) stream \(id): \(error); the offsets are committed with the next batch")
            offsets.withLock { o in o.toCommit.merge(toCommit) { max($0, $1) } }
        }
        return ranges
    }

    /// Closes the stream's clients when the context stops (before a broker the program stops next goes away).
    override func clearAll() {
        super.clearAll()
        driver.withLock { $0 = nil }
        pool.drain()
    }

    /// Spark's `maxMessagesPerPartition`: with backpressure, the estimated rate shared over the partitions by
    /// their lag (at least `minRatePerPartition` each), under `maxRatePerPartition`; records for one batch.
    private func maxMessages(lags: [Int64]) -> [Int64] {
        let seconds = Double(slideDuration.wholeMilliseconds) / 1_000
        let estimated = rateControl?.state.withLock { $0.rate }
        let totalLag = lags.reduce(0, +)
        return lags.map { lag in
            var rate: Double? = maxRatePerPartition > 0 ? Double(maxRatePerPartition) : nil
            if let estimated {
                let share = totalLag > 0 ? estimated * Double(lag) / Double(totalLag) : estimated / Double(max(1, lags.count))
                let backpressured = max(share, Double(minRatePerPartition))
                rate = rate.map { min($0, backpressured) } ?? backpressured
            }
            guard let rate else { return Int64.max }
            return max(1, Int64(rate * seconds))
        }
    }

    override func clearMetadata(_ time: Time) {
        let keep = rememberDuration ?? slideDuration
        offsets.withLock { o in o.ranges = o.ranges.filter { $0.key > time - keep } }
        super.clearMetadata(time)
    }
}

/// A direct stream's backpressure: Spark's PID estimator, its last rate for the whole stream and its terms.
final class RateControl: Sendable {
    let state: Mutex<(estimator: PIDRateEstimator, rate: Double?, terms: PIDTerms?)>

    init(_ estimator: PIDRateEstimator) { state = Mutex((estimator, nil, nil)) }
}

extension DirectKafkaInputDStream: RateControlledNode {
    /// With backpressure, feeds the batch to the PID estimator; its rate limits the next batches' ranges.
    func batchCompleted(_ batch: BatchInfo) {
        guard let control = rateControl, let info = batch.streamIdToInputInfo[id], let end = batch.processingEndTime,
            let processing = batch.processingDelay, let scheduling = batch.schedulingDelay
        else { return }
        control.state.withLock { c in
            if let rate = c.estimator.compute(
                time: end, elements: Int(info.numRecords), processingDelay: processing, schedulingDelay: scheduling)
            {
                c.rate = rate
                c.terms = c.estimator.lastTerms
            }
        }
    }
}

extension DirectKafkaInputDStream: CheckpointedNode {
    var dataCheckpointInterval: Duration? { checkpointInterval }

    func checkCheckpointable() throws {}

    /// Writes the ranges of every batch made (those after `time` too: a restart reads them again) and where
    /// the next batch starts.
    func writeCheckpoint(at time: Time, to writer: inout BinaryWriter) throws {
        let (current, ranges) = offsets.withLock { ($0.current ?? [:], $0.ranges) }
        writer.writeVarUInt(UInt64(current.count))
        for (partition, offset) in current.sorted(by: { $0.key < $1.key }) {
            writer.writeString(partition.topic)
            writer.writeVarInt(Int64(partition.partition))
            writer.writeVarInt(offset)
        }
        writer.writeVarUInt(UInt64(ranges.count))
        for (batchTime, batch) in ranges.sorted(by: { $0.key < $1.key }) {
            writer.writeVarInt(batchTime.milliseconds)
            writer.writeVarUInt(UInt64(batch.count))
            for range in batch {
                writer.writeString(range.topic)
                writer.writeVarInt(Int64(range.partition))
                writer.writeVarInt(range.fromOffset)
                writer.writeVarInt(range.untilOffset)
            }
        }
    }

    func restoreCheckpoint(from reader: inout BinaryReader, at time: Time) throws {
        func partition() throws -> TopicPartition {
            let topic = try reader.readString()
            let number = try reader.readVarInt()
            guard let value = Int32(exactly: number) else {
                throw FormatError(.invalidValue, at: reader.offset, "Kafka partition number \(number) of topic '\(topic)' does not fit 32 bits")
            }
            return TopicPartition(topic, value)
        }
        var current: [TopicPartition: Int64] = [:]
        for _ in 0..<(try reader.readCount(for: "Kafka partitions")) { current[try partition()] = try reader.readVarInt() }
        var ranges: [Time: [OffsetRange]] = [:]
        for _ in 0..<(try reader.readCount(for: "Kafka batches")) {
            let batchTime = Time(milliseconds: try reader.readVarInt())
            var batch: [OffsetRange] = []
            for _ in 0..<(try reader.readCount(for: "a batch's offset ranges")) {
                let p = try partition()
                batch.append(
                    OffsetRange(topic: p.topic, partition: p.partition, fromOffset: try reader.readVarInt(), untilOffset: try reader.readVarInt()))
            }
            ranges[batchTime] = batch
        }
        offsets.withLock { o in
            o.current = current.isEmpty ? nil : current
            o.ranges = ranges
        }
    }
}
