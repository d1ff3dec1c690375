import Glibc
import SluiceColumnar
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// Kills a real streaming program (Examples/RecoverableWordCount) with SIGKILL at random points, 20 times per
/// scenario, starts it again from its checkpoint each time, and checks that what it wrote equals what a run that
/// never crashed writes: every batch's output directory complete, no record lost, none counted twice.
///
/// The input is files whose modification times are set to future batch times, so that a run that never crashed
/// is known exactly: the file of time t belongs to batch t.
@Suite(.serialized) struct CrashRecoveryTests {
    static let batchMs: Int64 = 100
    static let kills = 20
    static let vocabulary = ["apple", "pear", "fig", "kiwi", "lime", "plum", "date", "yuzu", "sloe", "nut"]

    struct Run {
        let directory: TemporaryDirectory
        var input: String { "\(directory.path)/in" }
        var checkpoints: String { "\(directory.path)/ck" }
        var outputPrefix: String { "\(directory.path)/out/o" }
        var log: String { "\(directory.path)/child.log" }
    }

    func program() throws -> String {
        try #require(
            ChildProcess.builtProduct("RecoverableWordCount"),
            "the RecoverableWordCount example is built with the tests (swift build --build-tests)")
    }

    func start(_ mode: String, _ run: Run, source: String) throws -> ChildProcess {
        try ChildProcess(
            try program(), [mode, run.checkpoints, run.outputPrefix, source, "\(Self.batchMs)"], logPath: run.log)
    }

    func log(_ run: Run) -> String {
        (try? SystemCalls.live.readFile(run.log)).map { String(decoding: $0.suffix(4_000), as: UTF8.self) } ?? ""
    }

    func waitFor(_ what: String, _ run: Run, timeout: Int = 120, _ condition: () -> Bool) throws {
        var waited = 0
        while !condition() {
            if waited > timeout * 100 {
                throw StreamingError(.internalFailure, "timed out waiting for \(what); log:\n\(log(run))")
            }
            usleep(10_000)
            waited += 1
        }
    }

    /// The batch time of the newest checkpoint file (0 if none).
    func newestCheckpoint(_ run: Run) -> Int64 {
        (directoryNames(run.checkpoints) ?? []).compactMap { name in
            name.hasPrefix("checkpoint-") ? Int64(name.dropFirst("checkpoint-".count)) : nil
        }.max() ?? 0
    }

    func nowMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Writes `count` input files, file k modified at `first + k` batches, each a few random words.
    func writeInput(_ run: Run, first: Int64, count: Int, seed: UInt64) throws -> [Int64: [String]] {
        var random = SeededGenerator(seed: seed)
        var byTime: [Int64: [String]] = [:]
        for k in 0..<count {
            let time = first + Int64(k) * Self.batchMs
            let words = (0..<Int.random(in: 1...12, using: &random)).map { _ in Self.vocabulary.randomElement(using: &random)! }
            byTime[time] = words
            let hidden = "\(run.input)/.f\(k)"
            let fd = open(hidden, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            let text = Array(words.joined(separator: k.isMultiple(of: 2) ? " " : "\n").utf8)
            _ = text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
            // The modification time is the batch time itself: the batch at `time` takes the file.
            let stamp = timespec(tv_sec: Int(time / 1_000), tv_nsec: Int((time % 1_000) * 1_000_000))
            var times = [stamp, stamp]
            utimensat(AT_FDCWD, hidden, &times, 0)
            rename(hidden, "\(run.input)/f\(k)")
        }
        return byTime
    }

    /// Every output directory (only the newest with `lastOnly`): batch time -> its lines; fails on a directory
    /// without `_SUCCESS` or a leftover.
    func outputs(_ run: Run, lastOnly: Bool = false) throws -> [Int64: [String]] {
        let root = "\(run.directory.path)/out"
        var result: [Int64: [String]] = [:]
        let names = directoryNames(root) ?? []
        let newest = names.compactMap { Int64($0.dropFirst(2)) }.max()
        for name in names {
            guard let time = Int64(name.dropFirst(2)), name.hasPrefix("o-") else {
                Issue.record("a leftover in the output directory: \(name)")
                continue
            }
            let files = directoryNames("\(root)/\(name)") ?? []
            #expect(files.contains("_SUCCESS"), "output \(name) is incomplete: \(files)")
            if lastOnly && time != newest { continue }
            var lines: [String] = []
            for file in files where file.hasPrefix("part-") {
                let text = String(decoding: try SystemCalls.live.readFile("\(root)/\(name)/\(file)"), as: UTF8.self)
                lines += text.split(separator: "\n").map(String.init)
            }
            result[time] = lines.sorted()
        }
        return result
    }

    /// The key and count of an output line "(key,count)"; nil (and an issue recorded) for any other line.
    func pair(_ line: String) -> (String, Int)? {
        let inner = line.dropFirst().dropLast()
        guard line.hasPrefix("("), line.hasSuffix(")"), let comma = inner.lastIndex(of: ","),
            let count = Int(inner[inner.index(after: comma)...])
        else {
            Issue.record("unexpected output line \(line)")
            return nil
        }
        return (String(inner[..<comma]), count)
    }

    func pairLines(_ counts: [String: Int]) -> [String] {
        counts.filter { $0.value != 0 }.map { "(\($0.key),\($0.value))" }.sorted()
    }

    /// Runs `mode` with `kills` SIGKILLs at random points, then to the end, and compares every batch's output
    /// with `expected(time, input)`.
    func crashAndCompare(_ mode: String, seed: UInt64, expected: (Int64, [Int64: [String]]) -> [String]) throws {
        let run = Run(directory: try TemporaryDirectory(prefix: "sluice-crash-\(mode)"))
        defer { run.directory.remove() }
        mkdir(run.input, 0o755)
        var child = try start(mode, run, source: run.input)
        // Input only after the first checkpoint: from then on every restart recovers rather than starts afresh.
        try waitFor("the first checkpoint", run) { !(directoryNames(run.checkpoints) ?? []).filter { $0.hasPrefix("checkpoint-") }.isEmpty }
        let first = (nowMs() / Self.batchMs + 5) * Self.batchMs
        let fileCount = 60
        let input = try writeInput(run, first: first, count: fileCount, seed: seed)
        var random = SeededGenerator(seed: seed ^ 0x5EED)
        for _ in 0..<Self.kills {
            usleep(UInt32.random(in: 80_000...600_000, using: &random))
            child.killAndWait()
            // Input a checkpoint covers goes away (as a source's retention would drop it), so a restart cannot
            // rebuild its state by reading everything again: the state must come from the checkpoint.
            let covered = min(nowMs() - 3_000, newestCheckpoint(run))
            for (time, _) in input where time <= covered {
                let k = (time - first) / Self.batchMs
                unlink("\(run.input)/f\(k)")
            }
            child = try start(mode, run, source: run.input)
        }
        let last = first + Int64(fileCount + 6) * Self.batchMs
        try waitFor("the output of batch \(last)", run) { isDirectory("\(run.outputPrefix)-\(last)") }
        child.signal(SIGTERM)
        let status = try #require(child.wait(timeout: .seconds(120)), "the program did not stop after SIGTERM")
        // The program ends by the signal or, when its awaitTermination returns first, normally.
        #expect(status & 0x7f == SIGTERM || status == 0, "a graceful stop ends the program; log:\n\(log(run))")

        let written = try outputs(run)
        var checked = 0
        // Every batch from the first run's first to the last has its directory.
        var time = written.keys.min() ?? first
        while time <= last {
            #expect(written[time] != nil, "no output for batch \(time)")
            time += Self.batchMs
        }
        for (time, lines) in written.sorted(by: { $0.key < $1.key }) {
            let want = expected(time, input).sorted()
            if lines != want {
                Issue.record("batch \(time) (file batch \((time - first) / Self.batchMs)): wrote \(lines), a run without crashes writes \(want)\nlog:\n\(log(run))")
                return
            }
            checked += 1
        }
        #expect(checked >= fileCount)
        #expect(log(run).contains("recovering from checkpoint"), "the program recovered from its checkpoint after kills")
    }

    func counts(_ words: [String]) -> [String: Int] { words.reduce(into: [:]) { $0[$1, default: 0] += 1 } }

    @Test func statelessWordCountToFiles() throws {
        try crashAndCompare("counts", seed: 11) { time, input in pairLines(counts(input[time] ?? [])) }
    }

    @Test func updateStateByKeyRunningCounts() throws {
        try crashAndCompare("running", seed: 12) { time, input in
            pairLines(counts(input.filter { $0.key <= time }.flatMap(\.value)))
        }
    }

    /// Spark's updateStateByKey object-lifecycle test with a plain Codable struct as the state: it checkpoints
    /// with no declaration and comes back after every kill.
    @Test func updateStateByKeyWithAPlainCodableState() throws {
        try crashAndCompare("lifecycle", seed: 16) { time, input in
            // A replay of every batch up to `time`: the counter, and batches in a row without the word.
            var state: [String: (counter: Int, expire: Int)] = [:]
            var t = (input.keys.min() ?? time) - Self.batchMs
            while t <= time {
                let new = counts(input[t] ?? [])
                for word in Set(state.keys).union(new.keys) {
                    var object = state[word] ?? (0, 0)
                    if let n = new[word] { object = (object.counter + n, 0) } else { object.expire += 1 }
                    state[word] = object.expire == 2 ? nil : object
                }
                t += Self.batchMs
            }
            return pairLines(state.mapValues(\.counter))
        }
    }

    @Test func inverseWindowCounts() throws {
        try crashAndCompare("window", seed: 13) { time, input in
            pairLines(counts(input.filter { $0.key <= time && $0.key > time - 5 * Self.batchMs }.flatMap(\.value)))
        }
    }

    @Test func mapWithStateWithTimeouts() throws {
        try crashAndCompare("timeouts", seed: 14) { time, input in
            // A replay of every batch up to `time` with the function and the 3-batch timeout.
            var state: [String: (count: Int, updated: Int64)] = [:]
            var out: [String] = []
            let start = (input.keys.min() ?? time) - Self.batchMs
            var t = start
            while t <= time {
                out = []
                for word in input[t] ?? [] {
                    let count = (state[word]?.count ?? 0) + 1
                    state[word] = (count, t)
                    out.append("\(word):\(count)")
                }
                for (word, entry) in state where entry.updated + 3 * Self.batchMs < t {
                    out.append("\(word):timeout:\(entry.count)")
                    state[word] = nil
                }
                t += Self.batchMs
            }
            return time < start ? [] : out
        }
    }

    /// Every line in the program's write-ahead logs now.
    func loggedLines(_ run: Run) throws -> Set<String> {
        let root = "\(run.checkpoints)/receivedData"
        var lines = Set<String>()
        for stream in directoryNames(root) ?? [] {
            let found = try WriteAheadLog.readAll(
                directory: "\(root)/\(stream)", streamId: Int(stream) ?? 0, calls: .live, warn: { _ in })
            for logged in found.blocks { lines.formUnion(try ElementCodecs.standard(String.self).decode(logged.block)) }
        }
        return lines
    }

    @Test func socketReceiverWithTheWriteAheadLog() throws {
        let run = Run(directory: try TemporaryDirectory(prefix: "sluice-crash-socket"))
        defer { run.directory.remove() }
        let server = try LoopbackServer()
        defer { server.close() }
        // Per connection, the lines the kernel accepted: "c<connection>-<n>".
        let sent = Mutex<[[String]]>([])
        let sending = Mutex(true)
        let serving = Mutex(true)
        let feeder = try JoinableThread(name: "test server") {
            while serving.withLock({ $0 }) {
                guard let connection = server.accept(timeout: .milliseconds(200)) else { continue }
                let index = sent.withLock { s in
                    s.append([])
                    return s.count - 1
                }
                var n = 0
                while serving.withLock({ $0 }) {
                    guard sending.withLock({ $0 }) else {
                        usleep(5_000)
                        continue
                    }
                    let lines = (n..<(n + 20)).map { "c\(index)-\($0)" }
                    do {
                        try connection.send(lines.joined(separator: "\n") + "\n")
                    } catch {
                        break
                    }
                    sent.withLock { $0[index] += lines }
                    n += 20
                    usleep(2_000)
                }
                connection.close()
            }
        }
        defer {
            serving.withLock { $0 = false }
            feeder.join()
        }
        var child = try start("socket", run, source: "127.0.0.1:\(server.port)")
        try waitFor("the first checkpoint", run) {
            !(directoryNames(run.checkpoints) ?? []).filter { $0.hasPrefix("checkpoint-") }.isEmpty
        }
        var logged = Set<String>()
        var random = SeededGenerator(seed: 15)
        for _ in 0..<Self.kills {
            usleep(UInt32.random(in: 150_000...600_000, using: &random))
            child.killAndWait()
            logged.formUnion(try loggedLines(run))  // what the log held when the program died
            child = try start("socket", run, source: "127.0.0.1:\(server.port)")
        }
        usleep(1_000_000)
        sending.withLock { $0 = false }
        let lastSent = try #require(sent.withLock { $0.last?.last })
        try waitFor("the last line in the write-ahead log", run) { (try? loggedLines(run).contains(lastSent)) ?? false }
        child.signal(SIGTERM)
        _ = try #require(child.wait(timeout: .seconds(120)), "the program did not stop after SIGTERM")

        let written = try outputs(run, lastOnly: true)
        let final = try #require(written.max { $0.key < $1.key }?.value, "no output")
        var counts: [String: Int] = [:]
        for line in final {
            guard let (key, count) = pair(line) else { continue }
            counts[key] = count
        }
        let twice = counts.filter { $0.value != 1 }
        #expect(twice.isEmpty, "lines counted more than once: \(twice.prefix(5))")
        let lostFromLog = logged.subtracting(counts.keys)
        #expect(lostFromLog.isEmpty, "lines the write-ahead log held are lost: \(lostFromLog.sorted().prefix(5))")
        let connections = sent.withLock { $0 }
        var lost = 0
        for (index, lines) in connections.enumerated() {
            // What a killed program had not yet stored is lost in flight; the rest, a prefix, is all there.
            let kept = lines.prefix { counts[$0] != nil }.count
            let afterGap = lines.dropFirst(kept).filter { counts[$0] != nil }
            #expect(afterGap.isEmpty, "connection \(index) has lines after a gap: \(afterGap.prefix(3))")
            lost += lines.count - kept
            if index == connections.count - 1 {
                #expect(kept == lines.count, "the last connection, stopped gracefully, lost \(lines.count - kept) lines")
            }
        }
        #expect(counts.count > 1_000 && logged.count > 1_000, "\(counts.count) lines counted, \(logged.count) seen logged")
        Swift.print("socket crash test: \(counts.count) lines counted once, \(lost) lost in flight at \(Self.kills) kills, \(logged.count) seen in the log")
    }
}

extension CrashRecoveryTests {
    /// A checkpointed direct Kafka stream (noida-db) killed with SIGKILL at random moments and restarted with
    /// getOrCreate: the batches' outputs together hold every record exactly once (the offset ranges come back from
    /// the checkpoint; a batch run again reads the same records and replaces its own output).
    @Test func directKafkaStreamExactlyOnceAcrossKills() throws {
        let run = Run(directory: try TemporaryDirectory(prefix: "sluice-crash-kafka"))
        defer { run.directory.remove() }
        let broker = try NoidaBroker()
        defer { broker.stop() }
        try KafkaHandle.consumer(configuration: ["bootstrap.servers": broker.bootstrapServers])
            .createTopic("records", partitions: 3, timeoutMs: 10_000)
        let producer = try KafkaProducer(configuration: ["bootstrap.servers": broker.bootstrapServers])
        let total = 3_000
        for i in 0..<total { try producer.send(topic: "records", partition: Int32(i % 3), value: Array("r\(i)".utf8)) }
        try producer.flush(timeoutMs: 30_000)
        // 100 records a second per partition in 100 ms batches: 30 a batch, 100 batches to read them all.
        let source = "\(broker.bootstrapServers)/records"
        var child = try start("kafka", run, source: source)
        var random = SeededGenerator(seed: 21)
        for _ in 0..<10 {
            usleep(UInt32.random(in: 200_000...800_000, using: &random))
            child.killAndWait()
            child = try start("kafka", run, source: source)
        }
        /// Every record's count over the batches' outputs (`outputs` checks that each one is complete).
        func counted() throws -> [String: Int] {
            var counts: [String: Int] = [:]
            for (_, lines) in try outputs(run) {
                for line in lines {
                    guard let (key, n) = pair(line) else { continue }
                    counts[key, default: 0] += n
                }
            }
            return counts
        }
        // While it runs, a batch being written is a temporary directory: count the finished ones by their _SUCCESS.
        func finishedLines() -> Int {
            let root = "\(run.directory.path)/out"
            return (directoryNames(root) ?? []).filter { $0.hasPrefix("o-") && access("\(root)/\($0)/_SUCCESS", F_OK) == 0 }.reduce(0) {
                total, name in
                total + (directoryNames("\(root)/\(name)") ?? []).filter { $0.hasPrefix("part-") }.reduce(0) {
                    $0 + ((try? SystemCalls.live.readFile("\(root)/\(name)/\($1)"))?.filter { $0 == UInt8(ascii: "\n") }.count ?? 0)
                }
            }
        }
        try waitFor("every record in the output", run, timeout: 180) { finishedLines() >= total }
        child.signal(SIGTERM)
        _ = try #require(child.wait(timeout: .seconds(120)), "the program did not stop after SIGTERM")
        let counts = try counted()
        let wrong = counts.filter { $0.value != 1 }
        #expect(counts.count == total && wrong.isEmpty, "\(counts.count) records counted; not once: \(wrong.prefix(10))\nlog:\n\(log(run))")
        #expect(log(run).contains("recovering from checkpoint"), "the program recovered from its checkpoint after kills")
    }
}
