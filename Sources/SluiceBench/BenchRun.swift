import Glibc
import Sluice
import SluiceTesting
import SluiceColumnar
import Synchronization

/// What one streaming run does.
public struct RunSettings: Sendable {
    public var workload: StreamWorkload
    public var batchMs: Int
    /// Target records per second.
    public var rate: Int
    /// Seconds measured, after the warm-up.
    public var duration: Double
    /// Seconds run before measuring.
    public var warmup: Double
    /// Worker threads (`local[N]`), or nil for the configuration's `spark.master` (else `local[2]` at least).
    public var threads: Int?
    /// Properties from `--conf`.
    public var conf: StreamingConf
    /// How progress is shown while running.
    public var progress: ProgressStyle
    /// Keys in the state of the stateful workload (all loaded before the first batch).
    public var keys: Int
    /// Where the records come from.
    public var source: BenchSource = .generator
    /// With the Kafka source: the broker to use (nil: a noida-db broker started for the run).
    public var brokers: String?

    public init(
        workload: StreamWorkload, batchMs: Int, rate: Int, duration: Double, warmup: Double, threads: Int?,
        conf: StreamingConf, progress: ProgressStyle, keys: Int = 1_000_000
    ) {
        self.keys = keys
        self.workload = workload
        self.batchMs = batchMs
        self.rate = rate
        self.duration = duration
        self.warmup = warmup
        self.threads = threads
        self.conf = conf
        self.progress = progress
    }

    /// The master the run uses.
    var master: String {
        if let threads { return "local[\(threads)]" }
        if conf.contains("spark.master"), let master = conf.get("spark.master") { return master }
        return "local[\(max(2, Master.onlineCores))]"
    }

    /// The block interval: the configuration's, else the largest divisor of the batch interval up to
    /// ``maxBlockMs`` with at least two blocks a batch, so that a batch holds exactly the records generated in
    /// its interval.
    var blockIntervalMs: Int? {
        guard !conf.contains("spark.streaming.blockInterval") else { return nil }
        var blocks = max(2, (batchMs + maxBlockMs - 1) / maxBlockMs)
        while batchMs % blocks != 0 && blocks < batchMs { blocks += 1 }
        return max(1, batchMs / blocks)
    }

    /// The longest block streambench cuts: 50 ms (the guide's recommended minimum) for lines of text, whose
    /// blocks are most of the job's memory (the word count at 1M lines/s peaked at 81-82 MB with 50 ms blocks,
    /// 96-99 MB with 125 ms ones, at the same processing time); 200 ms (Spark's default) for other records,
    /// whose per-record work is small enough for each block's task to show (the grouped count at 85M
    /// records/s: 1.24-1.33 cores with 125 ms blocks, 1.45-1.53 with 50 ms ones).
    var maxBlockMs: Int { workload.wordsPerRecord != nil ? 50 : 200 }
}

/// How a run shows progress.
public enum ProgressStyle: Sendable {
    /// One line rewritten in place (a terminal).
    case live
    /// A plain line every few seconds (a pipe or a file).
    case periodic
    /// Nothing.
    case quiet
}

/// One completed batch, as the listener saw it.
struct BatchSample: Sendable, Equatable {
    /// Batch time, ms since the epoch.
    var time: Int64
    var records: Int64
    var processingMs: Int64
    var schedulingMs: Int64
    /// When its output finished, ms since the epoch.
    var endMs: Int64
    /// The memory budget's reservations per category when it completed.
    var memory: [MemoryCategory: Int] = [:]
}

/// Collects completed batches.
final class BatchRecorder: StreamingListener {
    private let samples = Mutex<[BatchSample]>([])

    func onBatchCompleted(_ batch: BatchInfo) {
        guard let end = batch.processingEndTime, let processing = batch.processingDelay,
            let scheduling = batch.schedulingDelay
        else { return }
        let sample = BatchSample(
            time: batch.batchTime.milliseconds, records: batch.numRecords, processingMs: processing,
            schedulingMs: scheduling, endMs: end, memory: batch.memoryByCategory ?? [:])
        samples.withLock { $0.append(sample) }
    }

    var all: [BatchSample] { samples.withLock { $0.sorted { $0.time < $1.time } } }
}

/// Runs `settings`' job once and measures it.
/// - Throws: a configuration or streaming error (with the key or reason), or the job's first error.
/// With `tolerateJobErrors`, a batch that fails ends the run as falling behind (``RunResult/jobFailure``).
func runStreaming(
    _ settings: RunSettings, tolerateJobErrors: Bool = false, output: (String) -> Void = { print($0) }
) throws -> RunResult {
    var failure: String?
    var conf = settings.conf.setMaster(settings.master).setAppName("streambench-\(settings.workload.rawValue)")
    if let block = settings.blockIntervalMs { conf = conf.set("spark.streaming.blockInterval", "\(block)ms") }
    if settings.source == .kafka && !conf.contains("spark.streaming.kafka.consumer.poll.ms") {
        conf = conf.set("spark.streaming.kafka.consumer.poll.ms", "10s")  // a stuck read ends the run soon
    }
    let ssc = try StreamingContext(conf: conf, batchDuration: .milliseconds(settings.batchMs))
    var checkpoint: TemporaryDirectory?
    let logged = try conf.bool("spark.streaming.receiver.writeAheadLog.enable")
    if (settings.workload.needsCheckpoint || logged) && ssc.checkpointDirectory == nil {
        let directory = try TemporaryDirectory(prefix: "streambench")
        checkpoint = directory
        ssc.checkpoint(directory.path)
    }
    defer { checkpoint?.remove() }
    let recorder = BatchRecorder()
    ssc.addStreamingListener(recorder)
    // The socket workload's peer: a process of its own, so that its CPU is not the job's.
    let sender = settings.workload == .socket ? try LineSender(rate: settings.rate) : nil
    defer { sender?.stop() }
    // The Kafka source's broker and producer process, likewise out of the job's process.
    let feed = settings.source == .kafka
        ? try KafkaFeed(workload: settings.workload, rate: settings.rate, brokers: settings.brokers) : nil
    defer { feed?.stop() }
    let kafkaStream = settings.workload.build(
        on: ssc, rate: settings.rate, batch: .milliseconds(settings.batchMs), keys: settings.keys,
        socketPort: sender?.port ?? 0, kafka: feed.map { ($0.brokers, $0.topic) })

    let startWall = wallMilliseconds()
    let start = now()
    try ssc.start()
    if let url = ssc.uiWebURL, settings.progress != .quiet { output("Streaming page: \(url)/streaming/\n") }
    let measureFrom = startWall + Int64(settings.warmup * 1_000)
    let measureTo = measureFrom + Int64(settings.duration * 1_000)
    var cpuAtMeasure: (cpu: Double, at: Double)?
    var lastReport = start
    while now() - start < settings.warmup + settings.duration {
        usleep(100_000)
        if let error = ssc.error { ssc.stop(); throw error }
        if cpuAtMeasure == nil && now() - start >= settings.warmup { cpuAtMeasure = (cpuSeconds(), now()) }
        switch settings.progress {
        case .quiet: break
        case .live:
            output("\r" + progressLine(recorder.all, start: start, batchMs: settings.batchMs) + "\u{1B}[K")
        case .periodic where now() - lastReport >= 5:
            lastReport = now()
            output(progressLine(recorder.all, start: start, batchMs: settings.batchMs) + "\n")
        case .periodic: break
        }
    }
    let cpuUsed = cpuAtMeasure.map { (cpuSeconds() - $0.cpu) / (now() - $0.at) } ?? 0
    // Let the batches of the measured window finish (a job that keeps up needs less than an interval more).
    let grace = now() + max(2, 4 * Double(settings.batchMs) / 1_000)
    let lastBatch = measureTo - measureTo % Int64(settings.batchMs)
    while now() < grace && !(recorder.all.last.map { $0.time >= lastBatch } ?? false) { usleep(20_000) }
    let lag = kafkaStream.flatMap { feed?.lag(after: $0.nextOffsets) }
    ssc.stop()
    if settings.progress == .live { output("\r\u{1B}[K") }
    if let error = ssc.error {
        guard tolerateJobErrors else { throw error }
        failure = "a batch failed: \(error)"
    }
    return RunResult(
        settings: settings, batches: recorder.all, startWall: startWall, measureFrom: measureFrom,
        measureTo: measureTo, cpuCores: cpuUsed, peakRSSBytes: peakRSS(), memoryLimit: ssc.engine.memory.limit,
        checkpoints: ssc.checkpointDirectory == nil ? nil : ssc.checkpointStatistics, writeAheadLog: logged,
        consumerLag: lag, jobFailure: failure)
}

/// The live line: elapsed, rate over the last second, batches, last processing time and delay, memory.
func progressLine(_ batches: [BatchSample], start: Double, batchMs: Int) -> String {
    let recent = batches.suffix(max(1, 1_000 / max(1, batchMs)))
    let rate = recent.isEmpty ? 0 : Double(recent.reduce(0) { $0 + $1.records }) * 1_000 / Double(recent.count * batchMs)
    let last = batches.last
    return "elapsed \(trimmed(now() - start)) s | rate \(formatRate(rate))/s | batches \(batches.count) | "
        + "last \(last.map { "\($0.processingMs)" } ?? "-") ms | delay \(last.map { "\($0.schedulingMs)" } ?? "-") ms | "
        + "RSS \(residentBytes() / 1_000_000) MB"
}

