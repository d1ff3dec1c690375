import ArgumentParser
import FoundationEssentials
import Glibc
import Histogram
import Sluice

/// Parses a duration in the forms the library's duration settings accept (`StreamingConf`: a number with us,
/// ms, s, min, h or d, e.g. `200ms`, `2s`, `1.5min`), into seconds; a bare number is in `bareUnit`.
/// - Throws: `ValidationError` naming the text and the accepted forms.
func parseDuration(_ text: String, bareUnit: String) throws -> Double {
    guard let ms = ConfigValues.milliseconds(text, defaultUnit: bareUnit) else {
        throw ValidationError(
            "'\(text)' is not a duration: use a number with ms, s, min or h (e.g. 500ms, 5s); a bare number is in \(bareUnit)")
    }
    return Double(ms) / 1_000
}

/// Parses a rate in records per second: a number with an optional `k` (thousand) or `M` (million) suffix,
/// e.g. `250k`, `1M`, `2.5M`, `800`.
/// - Throws: `ValidationError` naming the text and the accepted forms.
func parseRate(_ text: String) throws -> Int {
    var body = Substring(text)
    var scale = 1.0
    if let last = body.last, last == "k" || last == "K" {
        scale = 1e3
        body = body.dropLast()
    } else if let last = body.last, last == "M" || last == "m" {
        scale = 1e6
        body = body.dropLast()
    }
    guard let value = Double(body), value > 0, value.isFinite, value * scale >= 1, value * scale <= 1e10 else {
        throw ValidationError("'\(text)' is not a rate: use records per second such as 250k, 1M or 2.5M")
    }
    return Int((value * scale).rounded())
}

/// A rate as the CLI writes it, to three significant digits: 1M, 2.5M, 250k, 800.
func formatRate(_ value: Double) -> String {
    var rate = value
    if rate >= 100 {
        let magnitude = Glibc.pow(10, (Glibc.log10(rate)).rounded(.down) - 2)
        rate = (rate / magnitude).rounded() * magnitude
    }
    if rate >= 1e6 { return "\(trimmed(rate / 1e6))M" }
    if rate >= 1e3 { return "\(trimmed(rate / 1e3))k" }
    return "\(Int(rate.rounded()))"
}

/// A number with at most two decimals and no trailing zeros.
func trimmed(_ x: Double) -> String {
    let scaled = (x * 100).rounded() / 100
    return scaled == scaled.rounded() ? "\(Int(scaled))" : "\(scaled)"
}

func format(_ x: Double) -> String {
    let scaled = (x * 100).rounded() / 100
    return "\(scaled)"
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

/// Peak resident set size of this process in bytes: `VmHWM` of /proc/self/status, which belongs to this
/// address space (`getrusage`'s `ru_maxrss` survives `execve`, so under `swift run` it would report the
/// driver's peak), or `ru_maxrss` where /proc is missing.
func peakRSS() -> Int {
    statusField("VmHWM:") ?? {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }()
}

private func statusField(_ name: String) -> Int? {
    guard let file = fopen("/proc/self/status", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix(name), let kB = Int(text.dropFirst(name.count).filter(\.isNumber)) { return kB * 1024 }
    }
    return nil
}

/// CPU seconds (user + system) this process has used.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
        + Double(usage.ru_stime.tv_usec) / 1e6
}

/// Seconds on a monotonic clock.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Milliseconds since the epoch.
func wallMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Percentiles of a sample, from an HDR histogram (three significant digits, so exact below 1,000).
struct Percentiles: Equatable, Encodable {
    var p50: Double
    var p95: Double
    var p99: Double
    var max: Double

    init(p50: Double, p95: Double, p99: Double, max: Double) {
        self.p50 = p50
        self.p95 = p95
        self.p99 = p99
        self.max = max
    }

    /// The percentiles of `values` (non-negative whole numbers: milliseconds).
    init(_ values: [Double]) {
        var histogram = Histogram<UInt64>()
        for value in values { _ = histogram.record(UInt64(Swift.max(0, value.rounded()))) }
        self.init(histogram)
    }

    /// The percentiles of what `histogram` recorded (zeros when it is empty).
    init(_ histogram: Histogram<UInt64>) {
        guard histogram.totalCount > 0 else {
            self.init(p50: 0, p95: 0, p99: 0, max: 0)
            return
        }
        func at(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) }
        self.init(p50: at(50), p95: at(95), p99: at(99), max: Double(histogram.maxRecorded))
    }
}

/// `value` as JSON (keys sorted, strings escaped by `JSONEncoder`), with a final newline.
func jsonText<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
}
