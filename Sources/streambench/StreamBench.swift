import ArgumentParser
import Glibc
import SluiceColumnar

/// `streambench`: Sluice's benchmark and tuning tool.
///
/// Today it runs the `codec` workload: the path every received block takes through the format layer
/// (build and seal a columnar block, open and read it, zstd compress and decompress it as the WAL and spill
/// files do) over the default generator's data. The streaming workloads (`--batch`, `--rate`) arrive with the
/// streaming engine.
@main
struct StreamBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streambench",
        abstract: "Measure Sluice on an embedded generator.")

    @Option(help: "The workload to run. Available: codec.")
    var workload: Workload = .codec

    @Option(help: "How long to measure, e.g. 500ms, 5s, 1min.", transform: parseDuration)
    var duration: Double = 4

    @Option(help: "Rows per block.")
    var blockRows: Int = 200_000

    @Option(help: "zstd level for compressed blocks (sluice.zstd.level).")
    var zstdLevel: Int32 = 1

    @Option(help: "Also write the report as JSON to this file.")
    var json: String?

    @Option(help: "Write the uncompressed word block to this file, to compare with `zstd -b1 FILE`.")
    var saveWordBlock: String?

    enum Workload: String, ExpressibleByArgument, CaseIterable {
        case codec
    }

    func validate() throws {
        guard blockRows > 0 && blockRows <= 10_000_000 else {
            throw ValidationError("--block-rows must be in 1...10000000, got \(blockRows)")
        }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
    }

    func run() throws {
        let report = try CodecWorkload(
            rows: blockRows, seconds: duration, zstdLevel: zstdLevel, saveWordBlock: saveWordBlock
        ).run()
        print(report.table())
        if let json {
            var sink = try FileSink(creating: json)
            let text = report.json()
            try text.utf8CString.dropLast().withUnsafeBytes { try sink.write($0) }
        }
    }
}

/// Parses Spark's duration forms (`200ms`, `2s`, `1min`, `1h`) into seconds.
func parseDuration(_ text: String) throws -> Double {
    let units: [(String, Double)] = [("ms", 0.001), ("min", 60), ("s", 1), ("h", 3_600)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        if let value = Double(text.dropLast(suffix.count)), value >= 0 { return value * scale }
    }
    throw ValidationError("'\(text)' is not a duration: use a number with ms, s, min or h (e.g. 500ms, 5s)")
}

/// Peak resident set size of this process in bytes: `VmHWM` of /proc/self/status, which belongs to this
/// address space (`getrusage`'s `ru_maxrss` survives `execve`, so under `swift run` it would report the
/// driver's peak), or `ru_maxrss` where /proc is missing.
func peakRSS() -> Int {
    if let file = fopen("/proc/self/status", "r") {
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("VmHWM:"), let kB = Int(text.dropFirst(6).filter(\.isNumber)) { return kB * 1024 }
        }
    }
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
}

/// Seconds on a monotonic clock.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
