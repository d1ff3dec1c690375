import ArgumentParser
import CSluiceIntrinsics
import Glibc
import Sluice
import SluiceColumnar

/// `streambench`: runs a real streaming job through the public DStream API on the embedded generator and
/// reports throughput, batch times, delays, latency and memory.
public struct StreamBench: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "streambench",
        abstract: "Run a Sluice streaming job on an embedded generator and measure it.",
        discussion: """
            Workloads: wordcount (default: lines of 10 words, split, reduceByKey), grouped (Ints, \
            reduceByKey on x % 1000), socket (the word count over socketTextStream, fed by a sender process on \
            127.0.0.1), windowed (word count over a 30 s window with an inverse), stateful \
            (mapWithState running counts over --keys keys, 1M, all in the state from the start), passthrough \
            (count only), codec (the block format, no streaming job), recovery (checkpoint write time with --keys keys of mapWithState state, then \
            recovery time after a crash), wal (write-ahead log appends/s with --writers threads, fsync on), idle (the CPU a \
            context with no input uses). Example: streambench --batch 500ms --rate 1M
            """)

    @Option(help: "The batch interval, e.g. 500ms, 1s, 20ms (a bare number is in ms).")
    var batch: String = "500ms"

    @Option(help: "Records per second the generator makes, e.g. 250k, 1M, 2.5M.")
    var rate: String = "1M"

    @Option(help: "The job to run.")
    var workload: StreamWorkload = .wordcount

    @Option(help: "How long to measure, after the warm-up (default 30s; 8s per trial with --find-max-rate; a bare number is in s).")
    var duration: String?

    @Option(help: "How long to run before measuring (default 5s; 2s per trial with --find-max-rate; a bare number is in s).")
    var warmup: String?

    @Option(name: .customLong("local"), help: "Worker threads (local[N]); default: spark.master, else the cores.")
    var threads: Int?

    @Option(help: "A spark-style properties file (same keys as the library), e.g. tuning/throughput.properties.")
    var conf: String?

    @Option(help: "Also write the report as JSON to this file.")
    var json: String?

    @Option(help: "Draw processing time and scheduling delay per batch to this SVG file.")
    var plot: String?

    @Flag(help: "Find the highest rate that keeps up, by bisection (--rate is the first guess).")
    var findMaxRate = false

    @Flag(
        help: ArgumentHelp(
            "Skip the C floor: by default, the same word count or grouped count done by a C loop with no engine "
                + "is measured after the run (a few seconds), and the report gives the run as a share of it."))
    var noFloor = false

    @Option(help: "codec and wal workloads: rows per block.")
    var blockRows: Int = 200_000

    @Option(help: "codec and wal workloads: zstd level for compressed blocks.")
    var zstdLevel: Int32 = 1

    @Option(help: "codec workload: write the uncompressed word block to this file.")
    var saveWordBlock: String?

    @Option(help: "stateful and recovery workloads: distinct keys in the state.")
    var keys: Int = 1_000_000

    @Option(help: "wal workload: threads appending to the log.")
    var writers: Int = 2

    @Flag(help: "Serve the Streaming page, its JSON API and /metrics during the run (spark.ui.*, sluice.ui.host; port 4040 or the next free).")
    var ui = false

    @Option(help: "Serve the Streaming page of a finished run from its event log directory (spark.eventLog.dir/<run>) until interrupted.")
    var history: String?

    @Option(help: "Where records come from: generator (embedded), or kafka (a topic on a local broker, filled by a producer process; wordcount and grouped).")
    var source: BenchSource = .generator

    @Option(help: "With --source kafka: the broker's host:port (default: a noida-db broker started for the run).")
    var brokers: String?

    /// The Kafka source's producer process: the brokers it writes to (not for users).
    @Option(help: .hidden)
    var produceKafka: String?

    /// The Kafka source's producer process: the topic it writes to (not for users).
    @Option(help: .hidden)
    var topic: String?

    /// The socket workload's sender process: the listening socket it inherits (not for users).
    @Option(help: .hidden)
    var serveLines: Int32?

    public init() {}

    /// The parsed batch interval in ms, rate, duration and warm-up.
    struct Parsed {
        var batchMs: Int
        var rate: Int
        var duration: Double
        var warmup: Double
    }

    func parsed() throws -> Parsed {
        let batchMs = Int((try parseDuration(batch, bareUnit: "ms") * 1_000).rounded())
        guard batchMs >= 1 else { throw ValidationError("--batch must be at least 1ms; got '\(batch)'") }
        let duration = try duration.map { try parseDuration($0, bareUnit: "s") } ?? (findMaxRate ? 8 : 30)
        let warmup = try warmup.map { try parseDuration($0, bareUnit: "s") } ?? (findMaxRate ? 2 : 5)
        guard duration * 1_000 >= Double(batchMs) else {
            throw ValidationError("--duration must cover at least one batch (\(batchMs) ms); got '\(self.duration ?? "")'")
        }
        return Parsed(batchMs: batchMs, rate: try parseRate(rate), duration: duration, warmup: warmup)
    }

    public func validate() throws {
        _ = try parsed()
        if let threads, threads < 1 { throw ValidationError("--local must be at least 1, got \(threads)") }
        guard blockRows > 0 && blockRows <= 10_000_000 else {
            throw ValidationError("--block-rows must be in 1...10000000, got \(blockRows)")
        }
        if findMaxRate && [.codec, .recovery, .wal, .idle].contains(workload) {
            throw ValidationError("--find-max-rate needs a streaming workload")
        }
        guard keys > 0 else { throw ValidationError("--keys must be positive, got \(keys)") }
        guard (1...64).contains(writers) else { throw ValidationError("--writers must be in 1...64, got \(writers)") }
        if source == .kafka && ![.wordcount, .grouped].contains(workload) {
            throw ValidationError("--source kafka runs the wordcount and grouped workloads, not \(workload.rawValue)")
        }
    }

    /// The properties of `--conf` (none without it), with the monitoring page on only for `--ui` (or when the
    /// file turns it on).
    func properties() throws -> StreamingConf {
        let file = try conf.map { try StreamingConf(propertiesFile: $0) } ?? StreamingConf()
        if ui { return file.set("spark.ui.enabled", "true") }
        return file.contains("spark.ui.enabled") ? file : file.set("spark.ui.enabled", "false")
    }

    /// The settings of a streaming run.
    func settings(progress: ProgressStyle) throws -> RunSettings {
        let p = try parsed()
        let properties = try properties()
        var settings = RunSettings(
            workload: workload, batchMs: p.batchMs, rate: p.rate, duration: p.duration, warmup: p.warmup,
            threads: threads, conf: properties, progress: progress, keys: keys)
        settings.source = source
        settings.brokers = brokers
        return settings
    }

    public func run() throws {
        if serveLines != nil || produceKafka != nil {
            // A feeder process ends with the run that started it, even one that crashed.
            _ = sluice_set_parent_death_signal(SIGKILL)
        }
        if let serveLines { throw ExitCode(LineSender.serve(listening: serveLines, rate: try parsed().rate)) }
        if let produceKafka, let topic {
            throw ExitCode(KafkaFeed.produce(brokers: produceKafka, topic: topic, rate: try parsed().rate, workload: workload))
        }
        if let history {
            try HistoryServer(directory: history, conf: try properties()).run()
            return
        }
        if workload == .codec {
            let report = try CodecWorkload(
                rows: blockRows, seconds: try parsed().duration, zstdLevel: zstdLevel, saveWordBlock: saveWordBlock
            ).run()
            print(report.table())
            if let json { try write(try report.json(), to: json) }
            return
        }
        if workload == .wal {
            let report = try WALWorkload(
                writers: writers, seconds: try parsed().duration, linesPerBlock: blockRows, level: zstdLevel
            ).run()
            print(report.table())
            if let json { try write(try jsonText(report), to: json) }
            return
        }
        if workload == .idle {
            let p = try parsed()
            let report = try IdleWorkload(batchMs: p.batchMs, seconds: p.duration, threads: threads, conf: try properties())
                .run()
            print(report.table())
            if let json { try write(try jsonText(report), to: json) }
            return
        }
        if workload == .recovery {
            let p = try parsed()
            let report = try RecoveryWorkload(
                batchMs: p.batchMs, rate: p.rate, seconds: p.duration, keys: keys, threads: threads,
                conf: try properties()
            ).run()
            print(report.table())
            return
        }
        let style: ProgressStyle = isatty(1) != 0 ? .live : .periodic
        let settings = try settings(progress: style)
        let write: (String) -> Void = { text in
            print(text, terminator: "")
            fflush(nil)
        }
        let floor = { noFloor ? nil : CFloor.measure(for: settings.workload, master: settings.master) }
        let perRecord = Double(CFloor.unitsPerRecord(settings.workload) ?? 1)
        if findMaxRate {
            var search = try findMaximumRate(settings, output: write)
            search.floor = floor()
            print(search.summary)
            if let floor = search.floor, let best = search.best {
                print(floor.line(comparing: Double(best) * perRecord, as: "the highest rate"))
            }
            if let json { try self.write(try search.json(), to: json) }
            return
        }
        var result = try runStreaming(settings, output: write)
        result.floor = floor()
        print(result.table())
        if let floor = result.floor {
            print(floor.line(comparing: result.achievedRate * perRecord, as: "this run's rate"))
            if let cost = floor.costLine(achieved: result.achievedRate * perRecord, cpuCores: result.cpuCores) {
                print(cost)
            }
        }
        if let json { try self.write(try result.json(), to: json) }
        if let plot { try self.write(result.svg(), to: plot) }
    }

    private func write(_ text: String, to path: String) throws {
        var sink = try FileSink(creating: path)
        try text.utf8CString.dropLast().withUnsafeBytes { try sink.write($0) }
    }
}

/// The outcome of `--find-max-rate`.
struct RateSearch {
    var workload: StreamWorkload
    var batchMs: Int
    /// Each trial: rate, and why it fell behind (nil: kept up).
    var trials: [(rate: Int, fellBehind: String?, p99: Double)]
    /// The highest rate that kept up (nil: none did).
    var best: Int?
    /// The workload's C floor, measured after the search.
    var floor: CFloor? = nil

    var summary: String {
        var lines = ["", "Sluice streambench --find-max-rate: \(workload.rawValue), batch \(batchMs) ms"]
        for trial in trials {
            lines.append(
                "  \(formatRate(Double(trial.rate)).leftPad(8)) records/s: "
                    + (trial.fellBehind.map { "falls behind (\($0))" } ?? "keeps up (p99 processing \(Int(trial.p99)) ms)"))
        }
        let words = workload.wordsPerRecord
        if let best {
            lines.append(
                "highest rate that keeps up: \(formatRate(Double(best))) records/s"
                    + (words.map { " (\(formatRate(Double(best * $0))) words/s)" } ?? ""))
        } else {
            lines.append("no rate tried keeps up")
        }
        return lines.joined(separator: "\n")
    }

    func json() throws -> String {
        struct Trial: Encodable {
            var rate: Int
            var keepsUp: Bool
            var fallsBehindBecause: String?
            var p99ProcessingMs: Double
        }
        struct Report: Encodable {
            var workload: String
            var batchMs: Int
            var maxRate: Int?
            var cFloor: CFloor?
            var trials: [Trial]
        }
        return try jsonText(Report(
            workload: workload.rawValue, batchMs: batchMs, maxRate: best, cFloor: floor,
            trials: trials.map { Trial(rate: $0.rate, keepsUp: $0.fellBehind == nil, fallsBehindBecause: $0.fellBehind, p99ProcessingMs: $0.p99) }))
    }
}

/// Bisects the highest rate that keeps up: from the first guess, doubles (or halves) until the outcome
/// changes, then halves the gap until it is under 5% of the rate.
func findMaximumRate(_ base: RunSettings, output: @escaping (String) -> Void) throws -> RateSearch {
    var search = RateSearch(workload: base.workload, batchMs: base.batchMs, trials: [], best: nil)
    func trial(_ rate: Int) throws -> Bool {
        var settings = base
        settings.rate = rate
        settings.progress = .quiet
        output("trying \(formatRate(Double(rate))) records/s ... ")
        let result = try runStreaming(settings, tolerateJobErrors: true)
        let why = result.fallsBehindBecause
        output((why == nil ? "keeps up" : "falls behind") + "\n")
        search.trials.append((rate, why, result.processing.p99))
        return why == nil
    }
    var good: Int?
    var bad: Int?
    var rate = base.rate
    for _ in 0..<12 where good == nil || bad == nil {
        if try trial(rate) {
            good = rate
            rate *= 2
        } else {
            bad = rate
            rate = max(1, rate / 2)
        }
        if rate <= 1 && good == nil { break }
    }
    while let low = good, let high = bad, Double(high - low) > 0.05 * Double(low), high - low > 1 {
        let middle = (low + high) / 2
        if try trial(middle) { good = middle } else { bad = middle }
    }
    search.best = good
    return search
}
