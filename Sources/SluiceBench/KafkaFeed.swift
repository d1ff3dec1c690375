import ArgumentParser
import Glibc
import Sluice
import SluiceTesting

/// Where a streaming workload's records come from.
public enum BenchSource: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// The embedded generator (a receiver in the job's process).
    case generator
    /// A Kafka topic on a local broker, filled by a separate producer process, read by a direct stream.
    case kafka
}

/// The Kafka source of a run: a broker (noida-db started for the run, unless `--brokers` names one), a fresh
/// topic of 4 partitions, and a producer process (streambench itself, run with `--produce-kafka`) writing the
/// generator's records to it at the run's rate.
final class KafkaFeed {
    let brokers: String
    let topic: String
    private let broker: NoidaBroker?
    private let producer: ChildProcess
    /// The feed's own client (the topic, the lag); closed before the broker stops, so that it logs no error.
    private var client: KafkaHandle?

    init(workload: StreamWorkload, rate: Int, brokers: String?) throws {
        broker = brokers == nil ? try NoidaBroker() : nil
        let servers = brokers ?? broker?.bootstrapServers ?? ""
        self.brokers = servers
        topic = "streambench-\(workload.rawValue)-\(getpid())-\(wallMilliseconds())"
        let client = try KafkaHandle.consumer(configuration: ["bootstrap.servers": servers])
        try client.createTopic(topic, partitions: 4, timeoutMs: 10_000)
        self.client = client
        // streambench itself; from a test process, the streambench built beside it.
        producer = try ChildProcess(
            ChildProcess.builtProduct("streambench") ?? "/proc/self/exe",
            ["--produce-kafka", servers, "--topic", topic, "--rate", String(rate), "--workload", workload.rawValue],
            logPath: "/dev/null")
    }

    /// Records in the topic past `next` (where the stream's next batch starts, per partition).
    func lag(after next: [TopicPartition: Int64]) -> Int64? {
        var lag: Int64 = 0
        for partition in Int32(0)..<4 {
            let key = TopicPartition(topic, partition)
            guard let marks = try? client?.watermarks(key, timeoutMs: 5_000) else { return nil }
            lag += marks.high - (next[key] ?? marks.low)
        }
        return lag
    }

    func stop() {
        producer.killAndWait()
        client = nil
        broker?.stop()
    }

    /// The producer process's loop: `rate` records a second to `topic` (lines of 10 words for the word count,
    /// numbers for the grouped count), spread over the partitions, until killed.
    static func produce(brokers: String, topic: String, rate: Int, workload: StreamWorkload) -> Int32 {
        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(configuration: [
                "bootstrap.servers": brokers, "linger.ms": "5", "batch.num.messages": "10000",
                "queue.buffering.max.messages": "1000000", "enable.idempotence": "false", "acks": "1",
            ])
        } catch {
            print("streambench producer: \(error)")
            return 1
        }
        let maker = LineMaker(wordsPerLine: 10, vocabulary: 10_000)
        var random = WyRand(seed: 1)
        var failure: (any Error)?
        sendPaced(rate: rate) { n in
            do {
                if workload == .grouped {
                    for _ in 0..<n {
                        var text = String(Int(truncatingIfNeeded: random.next() % 1_000_000))
                        try text.withUTF8 { try producer.send(topic: topic, key: nil, value: UnsafeRawBufferPointer($0)) }
                    }
                } else {
                    maker.lines(n, &random) { line in
                        guard failure == nil else { return }
                        do { try producer.send(topic: topic, key: nil, value: line) } catch { failure = error }
                    }
                }
            } catch {
                failure = error
            }
            return failure == nil
        }
        print("streambench producer: \(failure.map { "\($0)" } ?? "stopped")")
        return 1
    }
}
