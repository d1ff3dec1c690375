import Glibc
import SluiceColumnar
import SluiceExecution
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// Recovery in one process, on a manual clock: a program is stopped without a graceful stop after some batch
/// (its memory is lost, as in a crash), rebuilt with `getOrCreate`, and must then write what a run that never
/// stopped writes. The input is a queue, which gives each batch's data once: nothing can be recomputed from the
/// input, so state and window contents must come from the checkpoint.
@Suite struct RecoveryTests {
    typealias Pairs = [(String, Int)]
    typealias Build = @Sendable (DStream<(String, Int)>) -> DStream<(String, Int)>

    final class Collected: Sendable {
        let byTime = Mutex<[Int64: [String]]>([:])
        func keep(_ rdd: RDD<(String, Int)>, _ time: Time) throws {
            let lines = try rdd.collect().map { "\($0.0)=\($0.1)" }.sorted()
            byTime.withLock { $0[time.milliseconds] = lines }
        }
    }

    static func randomInput(batches: Int, seed: UInt64) -> [Pairs] {
        var random = SeededGenerator(seed: seed)
        let keys = ["a", "b", "c", "d", "e", "f", "g"]
        // Each key at most once per batch: the order of a key's records within a batch is not fixed (as in
        // Spark), and mapWithState's per-record output would show it.
        return (0..<batches).map { _ in
            keys.shuffled(using: &random).prefix(Int.random(in: 0...6, using: &random)).map { key in
                (key, Int.random(in: 1...9, using: &random))
            }
        }
    }

    /// Runs the batches after batch `after` through `last` (batch i at i s) of `input` in a context made by
    /// `getOrCreate` over `directory`, then stops, gracefully or not; what each batch wrote goes to `collected`.
    /// Returns the last checkpoint's time.
    @discardableResult
    static func run(
        _ directory: String, _ input: [Pairs], after: Int = 0, through last: Int, gracefully: Bool,
        conf: StreamingConf = StreamingConf(), into collected: Collected, build: Build
    ) throws -> Time? {
        try StreamTest.exclusively {
            var queue: RDDQueue<(String, Int)>?
            var clock: ManualClock?
            let previous = Int64(after) * 1_000
            let context = try StreamingContext.getOrCreate(checkpointPath: directory) {
                let manual = ManualClock(startTime: Time(milliseconds: previous))
                let parallelism = conf.get("spark.default.parallelism") ?? "2"
                let ssc = try StreamingContext(
                    conf: conf.setMaster("local[2]").set("spark.default.parallelism", parallelism),
                    batchDuration: .seconds(1), clock: manual)
                let made = RDDQueue<(String, Int)>()
                build(ssc.queueStream(made)).foreachRDD { rdd, time in try collected.keep(rdd, time) }
                (queue, clock) = (made, manual)
                return ssc
            }
            defer { context.stop() }
            guard let queue, let clock else { throw StreamingError(.internalFailure, "creatingFunc was not called") }
            // The batches after the checkpoint run again first: their input goes in the queue now.
            let recoveredAt = context.life.withLock { $0.recovery?.checkpoint.time.milliseconds }
            let firstNew = Int(previous / 1_000) + 1
            for i in Int((recoveredAt ?? previous) / 1_000) + 1 ..< firstNew {
                queue.enqueue(context.parallelize(input[i - 1], numSlices: 2))
            }
            try context.start()
            for i in firstNew...last {
                queue.enqueue(context.parallelize(i <= input.count ? input[i - 1] : [], numSlices: 2))
                clock.set(to: Time(milliseconds: Int64(i) * 1_000))
                #expect(context.waitUntilBatchHandled(Time(milliseconds: Int64(i) * 1_000), timeout: .seconds(60)))
                if let error = context.error { throw error }
            }
            context.stop(gracefully: gracefully)
            return context.lastCheckpointTime
        }
    }

    /// The outputs of a run with stops after each of `stops`, next to those of a run without; run i after a
    /// stop (0 the first) uses `conf(i)`.
    static func compare(
        _ input: [Pairs], stops: [Int], conf: (Int) -> StreamingConf = { _ in StreamingConf() }, build: Build,
        _ comment: Comment
    ) throws {
        let (whole, interrupted) = (Collected(), Collected())
        let a = try TemporaryDirectory(prefix: "sluice-recovery")
        let b = try TemporaryDirectory(prefix: "sluice-recovery")
        defer {
            a.remove()
            b.remove()
        }
        // (A graceful stop on a manual clock would wait for a tick that never comes.)
        try run(a.path, input, through: input.count, gracefully: false, into: whole, build: build)
        var after = 0
        for (i, stop) in (stops + [input.count]).enumerated() {
            try run(
                b.path, input, after: after, through: stop, gracefully: false, conf: conf(i), into: interrupted,
                build: build)
            after = stop
        }
        let (want, got) = (whole.byTime.withLock { $0 }, interrupted.byTime.withLock { $0 })
        for time in want.keys.sorted() where want[time] != got[time] {
            Issue.record("\(comment): batch \(time) wrote \(got[time] ?? []) after stops at \(stops), \(want[time] ?? []) without")
            return
        }
        #expect(Set(want.keys) == Set(got.keys), comment)
    }

    /// Running sums with `updateStateByKey`.
    static func runningSums(checkpoint: Duration) -> Build {
        { $0.updateStateByKey { (v: [Int], s: Int?) -> Int? in v.reduce(s ?? 0, +) }.checkpoint(checkpoint) }
    }

    /// Running sums with `mapWithState` and a timeout: each record's key and new sum, and each timed-out key.
    static func sumsWithTimeouts(timeout: Duration, checkpoint: Duration) -> Build {
        { stream in
            let spec = StateSpec<String, Int, Int, (String, Int)>.function { key, value, state in
                if state.isTimingOut { return ("timeout:" + key, state.getOption() ?? 0) }
                let sum = (state.getOption() ?? 0) + (value ?? 0)
                try state.update(sum)
                return (key, sum)
            }.timeout(timeout)
            return stream.mapWithState(spec).checkpoint(checkpoint)
        }
    }

    /// Sums over a 4 s window sliding every 2 s, with an inverse.
    static func inverseWindow(checkpoint: Duration) -> Build {
        {
            $0.reduceByKeyAndWindow(+, inverse: -, windowDuration: .seconds(4), slideDuration: .seconds(2))
                .checkpoint(checkpoint)
        }
    }

    @Test func statefulStreamsCarryOnFromTheirCheckpointOnRandomInput() throws {
        let builds: [(String, Build)] = [
            ("updateStateByKey", Self.runningSums(checkpoint: .seconds(3))),
            ("mapWithState with timeouts", Self.sumsWithTimeouts(timeout: .seconds(2), checkpoint: .seconds(2))),
            ("inverse window", Self.inverseWindow(checkpoint: .seconds(4))),
            ("window then reduce", { $0.window(windowDuration: .seconds(3)).reduceByKey(+) }),
            ("stateSnapshots", { stream in
                stream.mapWithState(StateSpec<String, Int, Int, Int>.function { _, value, state in
                    try state.update((state.getOption() ?? 0) + (value ?? 0))
                    return nil
                }).stateSnapshots()
            }),
        ]
        for (seed, (name, build)) in builds.enumerated() {
            let input = Self.randomInput(batches: 16, seed: UInt64(seed) + 100)
            try Self.compare(input, stops: [4, 9, 10, 13], build: build, "\(name)")
        }
    }

    /// A key hashed as a Swift struct is: through `Hasher`, which each process seeds anew. `seed` stands for
    /// the process's seed; each rebuild of the program bumps it, so a restart hashes the key differently, as a
    /// real restart does.
    struct ReseededKey: Hashable, Codable, BlockSerializable, Sendable {
        static let seed = Atomic<Int>(0)
        let name: String
        func hash(into hasher: inout Hasher) {
            hasher.combine(name)
            hasher.combine(Self.seed.load(ordering: .relaxed))
        }
        static func == (a: ReseededKey, b: ReseededKey) -> Bool { a.name == b.name }
    }

    /// `build` over keys hashed per process: a new seed for each run of the program.
    static func reseeded(_ build: @escaping @Sendable (DStream<(ReseededKey, Int)>) -> DStream<(ReseededKey, Int)>) -> Build {
        { stream in
            ReseededKey.seed.add(1, ordering: .relaxed)
            return build(stream.map { (ReseededKey(name: $0.0), $0.1) }).map { ($0.0.name, $0.1) }
        }
    }

    /// Keys whose hash code changes from one process to the next (anything but Int, Int32, Int64, Bool and
    /// String) land in other partitions after a restart: restored state and window batches must move with them,
    /// or a key's new records would miss its state (counted from zero, and the old state left beside it).
    @Test func keysHashedPerProcessFindTheirStateAfterARestart() throws {
        let builds: [(String, Build)] = [
            ("updateStateByKey", Self.reseeded { $0.updateStateByKey { (v: [Int], s: Int?) -> Int? in v.reduce(s ?? 0, +) }.checkpoint(.seconds(3)) }),
            ("mapWithState with timeouts", Self.reseeded { stream in
                let spec = StateSpec<ReseededKey, Int, Int, (ReseededKey, Int)>.function { key, value, state in
                    if state.isTimingOut { return (ReseededKey(name: "timeout:" + key.name), state.getOption() ?? 0) }
                    let sum = (state.getOption() ?? 0) + (value ?? 0)
                    try state.update(sum)
                    return (key, sum)
                }.timeout(.seconds(3))
                return stream.mapWithState(spec).checkpoint(.seconds(2))
            }),
            ("inverse window", Self.reseeded { $0.reduceByKeyAndWindow(+, inverse: -, windowDuration: .seconds(4), slideDuration: .seconds(2)).checkpoint(.seconds(4)) }),
            ("reduced batches in a window", Self.reseeded { $0.reduceByKey(+).window(windowDuration: .seconds(3)).reduceByKey(+) }),
        ]
        for (seed, (name, build)) in builds.enumerated() {
            let input = Self.randomInput(batches: 12, seed: UInt64(seed) + 200)
            try Self.compare(input, stops: [3, 7, 8], build: build, "\(name), keys hashed per process")
        }
    }

    /// A program restarted with another number of partitions (`spark.default.parallelism`, or `local[*]` on a
    /// machine with other cores) carries on: its state and window batches are spread over the new partitions.
    @Test func aRestartWithAnotherNumberOfPartitionsCarriesOn() throws {
        let builds: [(String, Build)] = [
            ("updateStateByKey", Self.runningSums(checkpoint: .seconds(2))),
            ("mapWithState with timeouts", Self.sumsWithTimeouts(timeout: .seconds(3), checkpoint: .seconds(2))),
            ("inverse window", Self.inverseWindow(checkpoint: .seconds(2))),
            ("reduced batches in a window", { $0.reduceByKey(+).window(windowDuration: .seconds(3)).reduceByKey(+) }),
            ("custom keys, inverse window", Self.reseeded { $0.reduceByKeyAndWindow(+, inverse: -, windowDuration: .seconds(4), slideDuration: .seconds(2)).checkpoint(.seconds(2)) }),
        ]
        let parallelism = [2, 3, 1, 4]
        for (seed, (name, build)) in builds.enumerated() {
            let input = Self.randomInput(batches: 12, seed: UInt64(seed) + 300)
            try Self.compare(
                input, stops: [3, 6, 9], conf: { StreamingConf().set("spark.default.parallelism", "\(parallelism[$0])") },
                build: build, "\(name), partitions \(parallelism)")
        }
    }

    final class Pushed: Receiver<String>, @unchecked Sendable {}

    /// One context's run over batches `batches` (batch i at i s): before batch i, `stored[i]` is stored as one
    /// block; returns what each batch held.
    static func runLogged(
        _ directory: String, startAt: Int, batches: ClosedRange<Int>, stored: [Int: [String]],
        storedAtEnd: [String] = [], beforeBatch: (Int, Pushed) throws -> Void = { _, _ in }
    ) throws -> [Int64: [String]] {
        try StreamTest.exclusively {
            let seen = Collected()
            var receiver: Pushed?
            let clock = ManualClock(startTime: Time(milliseconds: Int64(startAt) * 1_000))
            let ssc = try StreamingContext.getOrCreate(checkpointPath: directory) {
                let conf = StreamingConf().setMaster("local[2]")
                    .set("spark.streaming.receiver.writeAheadLog.enable", "true")
                    .set("sluice.checkpoint.interval", "3s")
                let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
                let made = Pushed(storageLevel: .memoryOnly)
                ssc.receiverStream(made).map { ($0, 1) }.foreachRDD { rdd, time in try seen.keep(rdd, time) }
                receiver = made
                return ssc
            }
            defer { ssc.stop() }
            try ssc.start()
            for i in batches {
                if let receiver { try beforeBatch(i, receiver) }
                if let lines = stored[i] { try receiver?.store(contentsOf: lines) }
                clock.set(to: Time(milliseconds: Int64(i) * 1_000))
                #expect(ssc.waitUntilBatchHandled(Time(milliseconds: Int64(i) * 1_000), timeout: .seconds(30)))
                if let error = ssc.error { throw error }
            }
            if !storedAtEnd.isEmpty { try receiver?.store(contentsOf: storedAtEnd) }  // logged; no batch took it
            return seen.byTime.withLock { $0 }
        }
    }

    @Test func loggedBlocksGoBackToTheBatchesThatTookThem() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-recovery")
        defer { dir.remove() }
        let stored = [1: ["a1", "a2"], 2: ["b"], 3: ["c1", "c2", "c3"]]
        let first = try Self.runLogged(dir.path, startAt: 0, batches: 1...3, stored: stored)
        #expect(first[2_000] == ["b=1"] && first[3_000] == ["c1=1", "c2=1", "c3=1"])
        // The program dies after batch 3; its last checkpoint is batch 1's. Batches 2 and 3 run again from the
        // log, each with the block it had, then batch 4 goes on.
        let second = try Self.runLogged(dir.path, startAt: 3, batches: 4...4, stored: [4: ["d"]])
        #expect(second[2_000] == ["b=1"])
        #expect(second[3_000] == ["c1=1", "c2=1", "c3=1"])
        #expect(second[4_000] == ["d=1"])
        #expect(second[1_000] == nil, "batch 1 is in the checkpoint and does not run again")
    }

    /// A block stored at once and a block the generator cut in the same batch both come back from the log:
    /// their ids differ even when the count of blocks stored at once reaches the generator's interval starts
    /// (batch 1's block and 999 empty stores brought it to 1,000, the id of the block of 1,000-1,200 ms, before
    /// direct ids were set apart).
    @Test func blocksStoredBothWaysInOneBatchAllComeBackFromTheLog() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-recovery")
        defer { dir.remove() }
        let storeBothWays: (Int, Pushed) throws -> Void = { batch, receiver in
            guard batch == 2 else { return }
            for _ in 0..<999 { try receiver.store(contentsOf: []) }  // an id each, nothing stored
            try receiver.store("one")
            try receiver.store(contentsOf: ["block"])
        }
        let first = try Self.runLogged(dir.path, startAt: 0, batches: 1...3, stored: [1: ["a"]], beforeBatch: storeBothWays)
        #expect(first[2_000]?.sorted() == ["block=1", "one=1"])
        let second = try Self.runLogged(dir.path, startAt: 3, batches: 4...4, stored: [:])
        #expect(second[2_000]?.sorted() == ["block=1", "one=1"], "\(second)")
    }

    @Test func blocksNoBatchTookWaitForTheBatchesThatRunAgain() throws {
        let dir = try TemporaryDirectory(prefix: "sluice-recovery")
        defer { dir.remove() }
        // Batch 2 took nothing, batch 3 took "c"; "d" was logged just before the program died.
        _ = try Self.runLogged(dir.path, startAt: 0, batches: 1...3, stored: [1: ["a"], 3: ["c"]], storedAtEnd: ["d"])
        let second = try Self.runLogged(dir.path, startAt: 3, batches: 4...4, stored: [4: ["e"]])
        // "d" goes after "c", to the first new batch: batches keep taking blocks in the order they were logged.
        #expect(second[2_000] == [] && second[3_000] == ["c=1"], "\(second)")
        #expect(second[4_000] == ["d=1", "e=1"], "\(second)")
    }
}
