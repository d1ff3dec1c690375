import ArgumentParser
import Foundation
import Glibc
import Testing
import Synchronization
@testable import Sluice
@testable import SluiceBench
import SluiceTesting

@Suite struct StreamBenchParsingTests {
    @Test func ratesAndDurationsInTheirUsualForms() throws {
        #expect(try parseRate("250k") == 250_000)
        #expect(try parseRate("1M") == 1_000_000)
        #expect(try parseRate("2.5M") == 2_500_000)
        #expect(try parseRate("800") == 800)
        #expect(try parseDuration("500ms", bareUnit: "ms") == 0.5)
        #expect(try parseDuration("1s", bareUnit: "ms") == 1)
        #expect(try parseDuration("2min", bareUnit: "ms") == 120)
        #expect(try parseDuration("500", bareUnit: "ms") == 0.5)
        #expect(try parseDuration("30", bareUnit: "s") == 30)
        #expect(formatRate(999_970) == "1M")
        #expect(formatRate(2_500_000) == "2.5M")
        #expect(formatRate(250_000) == "250k")
        #expect(formatRate(16_000_464) == "16M")
        for bad in ["fast", "1G", "-5k", "0", "1.5.2M", ""] {
            let error = #expect(throws: ValidationError.self) { try parseRate(bad) }
            #expect(error?.message.contains("is not a rate") == true, "\(bad)")
        }
        for bad in ["1 fortnight", "-1s", "ms", "", "1e3s"] {
            #expect(throws: ValidationError.self) { try parseDuration(bad, bareUnit: "ms") }
        }
    }

    /// `--batch` and the library's duration settings accept the same forms, with the same values. (Before, the
    /// CLI had its own parser: "1sec", "2m", "1d" and bare numbers were refused, "1 s" too.)
    @Test func theCLIReadsDurationsAsTheConfigurationDoes() throws {
        let key = "spark.streaming.blockInterval"  // a duration whose bare numbers are ms, as --batch's
        for form in ["500ms", "500", "1s", "1sec", "1.5s", "2m", "2min", "1h", "1d", "250us", " 20 ms", "1S",
                     "fast", "1 fortnight", "-1s", "ms", "", "1e3s", "0x10ms"] {
            let library = try? StreamingConf().set(key, form).duration(key)
            let cli = try? parseDuration(form, bareUnit: "ms")
            #expect(library.map { Double($0.wholeMilliseconds) / 1_000 } == cli, "'\(form)': conf \(String(describing: library)), CLI \(String(describing: cli))")
        }
    }

    @Test func theDefaultsAreTheREADMEsRun() throws {
        let command = try StreamBench.parse([])
        let settings = try command.settings(progress: .quiet)
        #expect(settings.workload == .wordcount && settings.batchMs == 500 && settings.rate == 1_000_000)
        #expect(settings.duration == 30 && settings.warmup == 5)
        // Lines: at most 50 ms, dividing the batch (a batch holds exactly its interval's records); other
        // records: at most 200 ms.
        #expect(settings.blockIntervalMs == 50)
        let odd = try StreamBench.parse(["--batch", "130ms"]).settings(progress: .quiet)
        #expect(odd.blockIntervalMs == 26)
        let ints = try StreamBench.parse(["--workload", "grouped"]).settings(progress: .quiet)
        #expect(ints.blockIntervalMs == 125)
    }

    @Test func flagsAreParsedAndBadOnesAreClearErrors() throws {
        let command = try StreamBench.parse([
            "--batch", "20ms", "--rate", "2.5M", "--workload", "grouped", "--duration", "3s", "--warmup", "0s",
            "--local", "3",
        ])
        let settings = try command.settings(progress: .quiet)
        #expect(settings.batchMs == 20 && settings.rate == 2_500_000 && settings.workload == .grouped)
        #expect(settings.master == "local[3]" && settings.blockIntervalMs == 10)
        let trials = try StreamBench.parse(["--find-max-rate"]).settings(progress: .quiet)
        #expect(trials.duration == 8 && trials.warmup == 2)
        for (arguments, expected) in [
            (["--batch", "fast"], "'fast' is not a duration"),
            (["--batch", "0.4ms"], "--batch must be at least 1ms"),
            (["--rate", "lots"], "'lots' is not a rate"),
            (["--workload", "sorting"], "sorting"),
            (["--local", "0"], "--local must be at least 1"),
            (["--duration", "100ms", "--batch", "1s"], "--duration must cover at least one batch"),
            (["--find-max-rate", "--workload", "codec"], "needs a streaming workload"),
            (["--bogus"], "--bogus"),
        ] {
            do {
                _ = try StreamBench.parseAsRoot(arguments)
                Issue.record("\(arguments) parsed")
            } catch {
                let message = StreamBench.message(for: error)
                #expect(message.contains(expected), "\(arguments): \(message)")
            }
        }
    }

    @Test func aMissingPropertiesFileNamesThePath() throws {
        let command = try StreamBench.parse(["--conf", "/nonexistent/sluice.properties"])
        let error = #expect(throws: (any Error).self) { _ = try command.settings(progress: .quiet) }
        #expect("\(String(describing: error))".contains("/nonexistent/sluice.properties"))
    }
}

@Suite struct StreamBenchRunTests {
    /// A short run of `workload` at a low rate: the job runs through the public API and the report adds up.
    func shortRun(_ workload: StreamWorkload, rate: Int = 20_000) throws -> RunResult {
        try StreamTest.exclusively {
            let settings = RunSettings(
                workload: workload, batchMs: 200, rate: rate, duration: 1.2, warmup: 0.4, threads: 2,
                conf: StreamingConf(), progress: .quiet, keys: 10_000)
            return try runStreaming(settings)
        }
    }

    @Test(arguments: [StreamWorkload.wordcount, .grouped, .windowed, .stateful, .passthrough])
    func everyWorkloadRunsAndReports(_ workload: StreamWorkload) throws {
        let result = try shortRun(workload)
        #expect(!result.measured.isEmpty)
        #expect(result.measured.allSatisfy { $0.records >= 0 && $0.processingMs >= 0 })
        #expect(result.firstBatchSeconds != nil)
        #expect(result.peakRSSBytes > 0)
        let table = result.table()
        #expect(table.contains("Sluice streambench: \(workload.rawValue)") && table.contains("verdict:"))
        if workload.needsCheckpoint {
            #expect((result.checkpoints?.count ?? 0) >= 1 && table.contains("checkpoints "), "jobs with state checkpoint")
        }
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(try result.json().utf8)) as? [String: Any], "not a JSON object")
        #expect(json["workload"] as? String == workload.rawValue && json["batchMs"] as? Int == 200)
        #expect(json["targetRate"] as? Int == 20_000 && json["achievedRate"] is Double && json["keepsUp"] is Bool)
        for key in ["processingMs", "schedulingDelayMs", "endToEndMs"] {
            let percentiles = try #require(json[key] as? [String: Double], "\(key)")
            #expect(Set(percentiles.keys) == ["p50", "p95", "p99", "max"], "\(key)")
        }
        #expect(json["firstBatchSeconds"] is Double && json["peakRSSBytes"] is Int && json["batches"] is Int)
        #expect((json["perBatch"] as? [[String: Any]])?.count == result.batches.count)
        #expect(result.svg().hasPrefix("<svg") && result.svg().contains("polyline"))
    }

    /// The Kafka source end to end: a noida-db broker, the producer process (the streambench built beside the
    /// tests) and the direct stream; the records read are the ones produced, and the report gives the lag.
    @Test(arguments: [StreamWorkload.wordcount, .grouped])
    func theKafkaSourceFeedsTheJobThroughABroker(_ workload: StreamWorkload) throws {
        let result = try StreamTest.exclusively {
            var settings = RunSettings(
                workload: workload, batchMs: 200, rate: 20_000, duration: 1.2, warmup: 0.6, threads: 2,
                conf: StreamingConf(), progress: .quiet)
            settings.source = .kafka
            return try runStreaming(settings)
        }
        let records = result.measured.reduce(0) { $0 + $1.records }
        #expect(records > 10_000, "about 20k records a second arrive through the broker: \(result.measured.map(\.records))")
        #expect(result.consumerLag != nil && result.table().contains("consumer lag"))
    }

    @Test func aRunCountsTheGeneratedRecords() throws {
        let result = try shortRun(.grouped, rate: 50_000)
        // 200 ms batches at 50k/s: 10,000 records a batch once running. On a loaded machine the generator may
        // fall a little behind in one batch and catch up in the next, so each batch is within 20% and the
        // full batches together within 2% of the rate.
        let full = result.measured.dropFirst().dropLast()
        let records = result.measured.map(\.records)
        #expect(full.allSatisfy { abs($0.records - 10_000) <= 2_000 }, "\(records)")
        let total = full.reduce(0) { $0 + $1.records }
        #expect(abs(total - 10_000 * Int64(full.count)) <= 200 * Int64(full.count), "\(records)")
    }

    @Test func theVerdictNamesWhyAJobFallsBehind() {
        let settings = RunSettings(
            workload: .grouped, batchMs: 100, rate: 1_000, duration: 1, warmup: 0, threads: 2, conf: StreamingConf(),
            progress: .quiet)
        // Ten batch times in (0, 1000]; six completed, slowly, with a growing delay and half the records.
        let batches = (1...6).map {
            BatchSample(time: Int64($0) * 100, records: 50, processingMs: 150, schedulingMs: Int64($0) * 100, endMs: Int64($0) * 400)
        }
        let result = RunResult(
            settings: settings, batches: batches, startWall: 0, measureFrom: 0, measureTo: 1_000, cpuCores: 1,
            peakRSSBytes: 1)
        let why = result.fallsBehindBecause ?? ""
        #expect(why.contains("achieved 30% of the target rate"), "\(why)")
        #expect(why.contains("p99 processing 150 ms is over the 100 ms interval"))
        #expect(why.contains("scheduling delay grows"))
        #expect(why.contains("4 batches of the window did not finish"))
        #expect(!result.keepsUp && result.table().contains("verdict: falls behind"))
    }

    @Test func endToEndLatencySpreadsEachBatchOverItsInterval() {
        let settings = RunSettings(
            workload: .grouped, batchMs: 100, rate: 1_000, duration: 1, warmup: 0, threads: 2, conf: StreamingConf(),
            progress: .quiet)
        // Every batch ends 10 ms after its time: records waited 10 to 110 ms.
        let batches = (1...10).map {
            BatchSample(time: Int64($0) * 100, records: 100, processingMs: 5, schedulingMs: 0, endMs: Int64($0) * 100 + 10)
        }
        let result = RunResult(
            settings: settings, batches: batches, startWall: 0, measureFrom: 0, measureTo: 1_000, cpuCores: 1,
            peakRSSBytes: 1)
        #expect(result.endToEnd.p50 == 59 && result.endToEnd.p99 == 108)
        #expect(result.keepsUp)
    }
}

@Suite struct RecoveryWorkloadTests {
    @Test func checkpointsAStateAndRecoversItAfterADroppedContext() throws {
        let report = try StreamTest.exclusively {
            try RecoveryWorkload(
                batchMs: 100, rate: 20_000, seconds: 1.5, keys: 5_000, threads: 2, conf: StreamingConf()
            ).run()
        }
        #expect(report.checkpoints.count >= 5, "a checkpoint every batch")
        #expect(report.keysInState > 4_000 && report.keysInState <= 5_000)
        #expect(report.checkpoints.lastBytes > report.keysInState * 3, "every key is in the checkpoint")
        #expect(report.firstBatchMs != nil, "the rebuilt program ran a batch")
        #expect(report.table().contains("checkpoint write") && report.table().contains("first batch done"))
    }
}

@Suite struct LineSenderTests {
    /// The socket workload's sender, run on a thread here (streambench runs it as a process of its own): lines of
    /// 10 generator words, paced to the rate, until the receiver closes the connection.
    @Test func theSenderWritesPacedLinesOfTenWordsUntilTheReceiverCloses() throws {
        let (listening, port) = try LineSender.listen()
        let result = Mutex<Int32?>(nil)
        let sender = try JoinableThread(name: "line sender") { result.withLock { $0 = LineSender.serve(listening: listening, rate: 20_000) } }
        let fd = try #require(LoopbackServer.connect(port: port), "the sender listens")
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .milliseconds(500) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            received += buffer[0..<n]
        }
        close(fd)
        sender.join()
        #expect(result.withLock { $0 } == 0, "the sender ends when the receiver goes")
        let lines = received.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast()
        // 20k lines a second for half a second, within what a loaded machine's timing allows.
        #expect(lines.count >= 5_000 && lines.count <= 15_000, "\(lines.count) lines")
        for line in lines.prefix(1_000) {
            let words = line.split(separator: UInt8(ascii: " "))
            #expect(words.count == 10)
            #expect(words.allSatisfy { $0.first == UInt8(ascii: "w") && Int(String(decoding: $0.dropFirst(), as: UTF8.self)).map { (0..<10_000).contains($0) } == true })
        }
    }
}

@Suite struct StreamBenchReportTests {
    /// Strings in a report are escaped as JSON needs. (Before, the report was assembled by hand and a quote or
    /// a newline in a reason or a master string made it unreadable.)
    @Test func reportsAreValidJSONWhateverTheirStrings() throws {
        struct Probe: Encodable { var reason: String; var master: String }
        let hostile = Probe(reason: "the \"p99\" grew\nby 5\\ ms", master: "local[2] </script>")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(try jsonText(hostile).utf8)) as? [String: String])
        #expect(object == ["reason": hostile.reason, "master": hostile.master])
        var search = RateSearch(workload: .wordcount, batchMs: 500, trials: [(1_000, "delay \"grew\"", 700)], best: nil)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(try search.json().utf8)) as? [String: Any])
        #expect((parsed["trials"] as? [[String: Any]])?.first?["fallsBehindBecause"] as? String == "delay \"grew\"")
        search.best = 2_000
        #expect(try search.json().contains("\"maxRate\":2000"))
    }

    /// The percentiles are those of the sample (checked against sorting it) on random inputs.
    @Test func percentilesAreThoseOfTheSample() throws {
        var g = SeededGenerator(seed: 16)
        for _ in 0..<200 {
            let values = (0..<Int.random(in: 1...500, using: &g)).map { _ in Double(Int.random(in: 0...1_500, using: &g)) }
            let p = Percentiles(values)
            let sorted = values.sorted()
            #expect(p.max == sorted.last)
            for (q, v) in [(0.5, p.p50), (0.95, p.p95), (0.99, p.p99)] {
                // v is a q-quantile: at least q of the sample is <= v, and less than q is < v (within one value).
                let atMost = Double(sorted.filter { $0 <= v }.count) / Double(sorted.count)
                let below = Double(sorted.filter { $0 < v }.count) / Double(sorted.count)
                #expect(sorted.contains(v) && atMost + 1 / Double(sorted.count) >= q && below <= q, "q \(q) of \(sorted)")
            }
        }
        #expect(Percentiles([]) == Percentiles(p50: 0, p95: 0, p99: 0, max: 0))
    }
}

