import ArgumentParser
import Sluice

/// The streaming jobs `streambench` runs: each is the ordinary DStream program a user would write, on the
/// embedded generator.
public enum StreamWorkload: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// Lines of 10 words from a 10,000-word vocabulary: split, pair, `reduceByKey`, `foreachRDD`.
    case wordcount
    /// Ints: `map { ($0 % 1000, 1) }.reduceByKey(+)`.
    case grouped
    /// The word count over `socketTextStream`: a sender process writes the generator's lines to a local socket.
    case socket
    /// Word count over a 30 s window sliding every batch, with an inverse reduce.
    case windowed
    /// A running count per key with `mapWithState` (a timeout) over `--keys` keys (1M), all in the state from
    /// the start.
    case stateful
    /// `count()` only: the source's own cost.
    case passthrough
    /// The block-format path (build, open, compress blocks), without a streaming job.
    case codec
    /// Checkpoint write time with a large `mapWithState` state, then recovery time after a crash.
    case recovery
    /// The receivers' write-ahead log with fsync on: appends/s with `--writers` threads.
    case wal
    /// A context with no input: the CPU it uses while waiting.
    case idle

    /// Words per record, for the words/s figure (nil: records are not lines of words).
    var wordsPerRecord: Int? {
        switch self {
        case .wordcount, .windowed, .socket: 10
        case .passthrough: 10
        case .grouped, .stateful, .codec, .recovery, .wal, .idle: nil
        }
    }

    /// Whether the job keeps state (and needs a checkpoint directory).
    var needsCheckpoint: Bool { self == .windowed || self == .stateful }

    /// Builds the job on `ssc`, fed by the generator at `rate` records per second (the socket workload: by the
    /// sender listening on `socketPort`; with `kafka`, the word count and the grouped count read that topic with a
    /// direct stream, which is returned).
    @discardableResult
    func build(
        on ssc: StreamingContext, rate: Int?, batch: Duration, keys: Int = 1_000_000, socketPort: Int = 0,
        kafka: (brokers: String, topic: String)? = nil
    ) -> DirectKafkaInputDStream? {
        if let kafka {
            let stream = KafkaUtils.createDirectStream(
                ssc, .preferConsistent,
                .subscribe([kafka.topic], ["bootstrap.servers": kafka.brokers, "group.id": "streambench", "auto.offset.reset": "earliest"]))
            if self == .grouped {
                Self.countGroups(stream.map { $0.value.reduce(0) { $0 * 10 + Int($1) - 48 } })
            } else {
                Self.countWords(stream.map(\.valueString))
            }
            return stream
        }
        switch self {
        case .socket:
            Self.countWords(ssc.socketTextStream("127.0.0.1", socketPort))
        case .wordcount:
            Self.countWords(ssc.generatedLineStream(ratePerSecond: rate))
        case .grouped:
            Self.countGroups(ssc.generatedIntStream(ratePerSecond: rate))
        case .windowed:
            Self.wordPairs(ssc.generatedLineStream(ratePerSecond: rate))
                .reduceByKeyAndWindow(Self.sum, inverse: -, windowDuration: .seconds(30), slideDuration: batch)
                .foreachRDD { rdd in _ = try rdd.count() }
        case .stateful:
            // Every key in the state from the start, so that each batch touches a fixed share of it; an idle
            // timeout of an hour, so that untouched keys stay.
            let spec = StateSpec<Int, Int, Int, Int>.function { _, value, state in
                let count = (state.getOption() ?? 0) + (value ?? 0)
                if !state.isTimingOut { try state.update(count) }
                return count
            }.timeout(.seconds(3_600)).initialState(ssc.parallelize(Array(0..<keys).map { ($0, 0) }))
            ssc.generatedIntStream(ratePerSecond: rate, distinctValues: keys)
                .map { ($0, 1) }
                .mapWithState(spec)
                .foreachRDD { rdd in _ = try rdd.count() }
        case .passthrough:
            ssc.generatedLineStream(ratePerSecond: rate).count().foreachRDD { rdd in _ = try rdd.collect() }
        case .codec, .recovery, .wal, .idle:
            break
        }
        return nil
    }

    /// The word count: `flatMap { $0.split(ascii: " ") }.map { ($0, 1) }.reduceByKey(+)`, each batch counted.
    static func countWords(_ lines: DStream<String>) {
        wordPairs(lines).reduceByKey(sum).foreachRDD { rdd in _ = try rdd.count() }
    }

    /// Each word of the lines paired with 1: `flatMap { $0.split(ascii: " ") }.map { ($0, 1) }`.
    static func wordPairs(_ lines: DStream<String>) -> DStream<(Word, Int)> {
        lines.flatMap { $0.split(ascii: " ") }.map { ($0, 1) }
    }

    /// The grouped count: `map { ($0 % 1000, 1) }.reduceByKey(+)`, each batch counted.
    static func countGroups(_ ints: DStream<Int>) {
        ints.map { ($0 % 1000, 1) }.reduceByKey(sum).foreachRDD { rdd in _ = try rdd.count() }
    }

    /// `+` for every workload's counts, one closure. Each closure of the pipelines above is written once: the
    /// optimizer merges identical functions, and the same closure written in several workloads became one body
    /// and thunks that call it, an extra call per record (5% of the grouped count's CPU for `+`) that a program
    /// with one word count does not make.
    static let sum: @Sendable (Int, Int) -> Int = (+)
}
