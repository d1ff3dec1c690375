import Histogram
import Sluice
/// What one streaming run measured, and the verdict.
struct RunResult {
    let settings: RunSettings
    /// Every completed batch, in time order (warm-up included).
    let batches: [BatchSample]
    /// When the context started, ms since the epoch.
    let startWall: Int64
    /// The measured window of batch times: (measureFrom, measureTo].
    let measureFrom: Int64
    let measureTo: Int64
    /// CPU cores used on average over the measured window.
    let cpuCores: Double
    let peakRSSBytes: Int
    /// `sluice.memory.limit` (`Int.max`: none).
    var memoryLimit: Int = .max
    /// The checkpoints written, when the job checkpoints.
    var checkpoints: CheckpointStatistics? = nil
    /// Whether the receiver write-ahead log was on.
    var writeAheadLog = false
    /// With the Kafka source: records in the topic the stream had not reached when the run ended.
    var consumerLag: Int64? = nil
    /// Why a batch failed, when the run went on despite it (`--find-max-rate` trials).
    var jobFailure: String? = nil
    /// The workload's C floor, measured after the run.
    var floor: CFloor? = nil

    var batchMs: Int64 { Int64(settings.batchMs) }

    /// The batch times of the measured window.
    var windowTimes: [Int64] {
        let first = (measureFrom / batchMs + 1) * batchMs
        return Array(stride(from: first, through: measureTo, by: Int(batchMs)))
    }

    /// The measured window's completed batches.
    var measured: [BatchSample] { batches.filter { $0.time > measureFrom && $0.time <= measureTo } }

    /// Records per second processed over the window (batches not completed count as nothing).
    var achievedRate: Double {
        let expected = windowTimes.count
        guard expected > 0 else { return 0 }
        return Double(measured.reduce(0) { $0 + $1.records }) * 1_000 / Double(Int64(expected) * batchMs)
    }

    var processing: Percentiles { Percentiles(measured.map { Double($0.processingMs) }) }
    var schedulingDelay: Percentiles { Percentiles(measured.map { Double($0.schedulingMs) }) }

    /// Record latency from generation to its batch's output: a record generated at t belongs to the batch at
    /// the next batch time T (batches hold exactly the records stored before their time, and the generator
    /// spreads records evenly), so a batch of n records contributes n latencies spread evenly over
    /// [end - T, end - T + interval).
    var endToEnd: Percentiles {
        // Every batch's records weigh the same per ms of the interval (the interval is the same for all).
        var histogram = Histogram<UInt64>()
        for batch in measured where batch.records > 0 {
            let base = Swift.max(0, Int(batch.endMs - batch.time))
            for offset in 0..<Int(batchMs) { _ = histogram.record(UInt64(base + offset), count: UInt64(batch.records)) }
        }
        return Percentiles(histogram)
    }

    /// Seconds from start to the first completed batch's output.
    var firstBatchSeconds: Double? { batches.first.map { Double($0.endMs - startWall) / 1_000 } }

    /// Whether the scheduling delay grows over the window: its last third averages more than one interval
    /// above its first third.
    var delayGrows: Bool {
        let delays = measured.map { Double($0.schedulingMs) }
        guard delays.count >= 3 else { return false }
        let third = delays.count / 3
        let first = delays.prefix(third).reduce(0, +) / Double(third)
        let last = delays.suffix(third).reduce(0, +) / Double(third)
        return last > first + Double(batchMs)
    }

    /// Why the job falls behind, or nil when it keeps up: achieved >= 99% of the target, the scheduling delay
    /// not growing, p99 processing time within the interval, and every batch of the window completed.
    var fallsBehindBecause: String? {
        var reasons: [String] = jobFailure.map { [$0] } ?? []
        let ratio = achievedRate / Double(settings.rate)
        if ratio < 0.99 { reasons.append("achieved \(trimmed(ratio * 100))% of the target rate") }
        if processing.p99 > Double(batchMs) {
            reasons.append("p99 processing \(Int(processing.p99)) ms is over the \(batchMs) ms interval")
        }
        if delayGrows { reasons.append("the scheduling delay grows (\(Int(schedulingDelay.max)) ms at most)") }
        let missing = windowTimes.count - measured.count
        if missing > 0 { reasons.append("\(missing) batch\(missing == 1 ? "" : "es") of the window did not finish") }
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }

    var keepsUp: Bool { fallsBehindBecause == nil }

    // MARK: Output

    func table() -> String {
        let s = settings
        let words = s.workload.wordsPerRecord
        let target = "\(formatRate(Double(s.rate))) records/s" + (words.map { " (\(formatRate(Double(s.rate * $0))) words/s)" } ?? "")
        let achieved = "\(formatRate(achievedRate)) records/s" + (words.map { " (\(formatRate(achievedRate * Double($0))) words/s)" } ?? "")
        let p = processing, d = schedulingDelay, e = endToEnd
        func ms(_ x: Double) -> String { "\(Int(x))" }
        var lines = [
            "Sluice streambench: \(s.workload.rawValue), batch \(s.batchMs) ms, target \(target), \(s.master), "
                + "\(trimmed(s.duration)) s measured after \(trimmed(s.warmup)) s warm-up",
            "",
            "  achieved            \(achieved)",
            "  batches             \(measured.count) of \(windowTimes.count) in the window",
            "  processing time     p50 \(ms(p.p50))  p95 \(ms(p.p95))  p99 \(ms(p.p99))  max \(ms(p.max)) ms (interval \(s.batchMs) ms)",
            "  scheduling delay    p50 \(ms(d.p50))  p99 \(ms(d.p99))  max \(ms(d.max)) ms",
            "  end-to-end latency  p50 \(ms(e.p50))  p99 \(ms(e.p99)) ms (record generated -> its batch's output done)",
            "  first batch done    \(firstBatchSeconds.map { "\(trimmed($0)) s" } ?? "never") after start",
            "  peak RSS            \(peakRSSBytes / 1_000_000) MB",
            "  memory budget       " + budgetLine,
            "  CPU                 \(trimmed(cpuCores)) cores",
        ]
        if let c = checkpoints {
            lines.append(
                "  checkpoints         \(c.count) written, mean \(trimmed(c.meanMilliseconds)) ms, max "
                    + "\(trimmed(c.maxMilliseconds)) ms, last \(c.lastBytes / 1_000_000) MB of stream data"
                    + (writeAheadLog ? " (receiver write-ahead log on)" : ""))
        }
        if let lag = consumerLag {
            lines.append("  consumer lag        \(lag) records in the topic after the last batch's ranges, at the end")
        }
        lines.append("")
        if let why = fallsBehindBecause {
            lines.append("verdict: falls behind: \(why)")
        } else {
            lines.append(
                "verdict: keeps up: \(trimmed(achievedRate / Double(s.rate) * 100))% of the target, p99 processing "
                    + "\(ms(p.p99)) ms within the \(s.batchMs) ms interval, scheduling delay steady")
        }
        return lines.joined(separator: "\n")
    }

    /// The most each category of the memory budget held when a measured batch completed.
    var peakMemoryByCategory: [MemoryCategory: Int] {
        measured.reduce(into: [:]) { peak, batch in
            for (category, bytes) in batch.memory { peak[category] = Swift.max(peak[category] ?? 0, bytes) }
        }
    }

    /// The budget's peak use per category, and its limit.
    private var budgetLine: String {
        let peaks = peakMemoryByCategory
        let parts = MemoryCategory.allCases.compactMap { c in peaks[c].map { "\(c.rawValue) \($0 / 1_000_000)" } }
        let limit = memoryLimit == .max ? "no limit" : "limit \(memoryLimit / 1_000_000) MB"
        return (parts.isEmpty ? "nothing reserved" : "peak MB per category: " + parts.joined(separator: ", "))
            + " (\(limit), sluice.memory.limit)"
    }

    /// The report as `--json` writes it (absent optional fields: none).
    struct Report: Encodable {
        struct Batch: Encodable {
            var time: Int64
            var records: Int64
            var processingMs: Int64
            var schedulingDelayMs: Int64
            var endMs: Int64
            var measured: Bool
        }
        var workload: String
        var batchMs: Int
        var targetRate: Int
        var achievedRate: Double
        var keepsUp: Bool
        var processingMs: Percentiles
        var schedulingDelayMs: Percentiles
        var endToEndMs: Percentiles
        var firstBatchSeconds: Double?
        var peakRSSBytes: Int
        /// The most each category of the memory budget held when a measured batch completed.
        var peakMemoryBytes: [MemoryCategory: Int]
        var memoryLimitBytes: Int?
        var batches: Int
        var cpuCores: Double
        var master: String
        var fallsBehindBecause: String?
        var cFloor: CFloor?
        var perBatch: [Batch]
    }

    var report: Report {
        Report(
            workload: settings.workload.rawValue, batchMs: settings.batchMs, targetRate: settings.rate,
            achievedRate: achievedRate, keepsUp: keepsUp, processingMs: processing, schedulingDelayMs: schedulingDelay,
            endToEndMs: endToEnd, firstBatchSeconds: firstBatchSeconds, peakRSSBytes: peakRSSBytes,
            peakMemoryBytes: peakMemoryByCategory, memoryLimitBytes: memoryLimit == .max ? nil : memoryLimit,
            batches: measured.count, cpuCores: cpuCores, master: settings.master, fallsBehindBecause: fallsBehindBecause,
            cFloor: floor, perBatch: batches.map {
                Report.Batch(
                    time: $0.time, records: $0.records, processingMs: $0.processingMs,
                    schedulingDelayMs: $0.schedulingMs, endMs: $0.endMs,
                    measured: $0.time > measureFrom && $0.time <= measureTo)
            })
    }

    func json() throws -> String { try jsonText(report) }

    /// Processing time and scheduling delay per batch against the interval, as SVG.
    func svg() -> String {
        let width = 900.0, height = 400.0, left = 60.0, bottom = 40.0, top = 30.0, right = 20.0
        let shown = batches
        let highest = max(Double(batchMs) * 1.2, shown.map { Double(max($0.processingMs, $0.schedulingMs)) }.max() ?? 0)
        let count = max(1, shown.count - 1)
        func x(_ i: Int) -> Double { left + (width - left - right) * Double(i) / Double(count) }
        func y(_ value: Double) -> Double { height - bottom - (height - bottom - top) * value / highest }
        func line(_ values: [Double], _ color: String) -> String {
            let points = values.enumerated().map { "\(format(x($0.offset))),\(format(y($0.element)))" }.joined(separator: " ")
            return "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(points)\"/>"
        }
        var parts = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(Int(left))\" y=\"18\">streambench \(settings.workload.rawValue): \(formatRate(Double(settings.rate))) records/s, batch \(settings.batchMs) ms</text>",
            "<line x1=\"\(left)\" y1=\"\(y(0))\" x2=\"\(width - right)\" y2=\"\(y(0))\" stroke=\"black\"/>",
            "<line x1=\"\(left)\" y1=\"\(y(0))\" x2=\"\(left)\" y2=\"\(top)\" stroke=\"black\"/>",
            "<line x1=\"\(left)\" y1=\"\(format(y(Double(batchMs))))\" x2=\"\(width - right)\" y2=\"\(format(y(Double(batchMs))))\" stroke=\"gray\" stroke-dasharray=\"4 4\"/>",
            "<text x=\"\(Int(width - right - 120))\" y=\"\(format(y(Double(batchMs)) - 4))\" fill=\"gray\">interval \(batchMs) ms</text>",
            "<text x=\"5\" y=\"\(format(y(highest) + 10))\">\(Int(highest)) ms</text>",
            "<text x=\"5\" y=\"\(format(y(0)))\">0</text>",
            "<text x=\"\(Int(left))\" y=\"\(Int(height - 10))\">batch (\(shown.count) in all, warm-up included)</text>",
            line(shown.map { Double($0.processingMs) }, "steelblue"),
            line(shown.map { Double($0.schedulingMs) }, "firebrick"),
            "<text x=\"\(Int(width - 300))\" y=\"\(Int(height - 10))\" fill=\"steelblue\">processing time</text>",
            "<text x=\"\(Int(width - 180))\" y=\"\(Int(height - 10))\" fill=\"firebrick\">scheduling delay</text>",
            "</svg>",
        ]
        parts.append("")
        return parts.joined(separator: "\n")
    }
}
