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
                let ssc = try StreamingContext(
                    conf: conf.setMaster("local[2]").set("spark.default.parallelism", "2"), batchDuration: .seconds(1),
                    clock: manual)
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

    /// The outputs of a run with stops after each of `stops`, next to those of a run without.
    static func compare(_ input: [Pairs], stops: [Int], build: Build, _ comment: Comment) throws {
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
        for stop in stops + [input.count] {
            try run(b.path, input, after: after, through: stop, gracefully: false, into: interrupted, build: build)
            after = stop
        }
        let (want, got) = (whole.byTime.withLock { $0 }, interrupted.byTime.withLock { $0 })
        for time in want.keys.sorted() where want[time] != got[time] {
            Issue.record("\(comment): batch \(time) wrote \(got[time] ?? []) after stops at \(stops), \(want[time] ?? []) without")
            return
        }
        #expect(Set(want.keys) == Set(got.keys), comment)
    }

    @Test func statefulStreamsCarryOnFromTheirCheckpointOnRandomInput() throws {
        let builds: [(String, Build)] = [
            ("updateStateByKey", { $0.updateStateByKey { (v: [Int], s: Int?) -> Int? in v.reduce(s ?? 0, +) }.checkpoint(.seconds(3)) }),
            ("mapWithState with timeouts", { stream in
                let spec = StateSpec<String, Int, Int, (String, Int)>.function { key, value, state in
                    if state.isTimingOut { return ("timeout:" + key, state.getOption() ?? 0) }
                    let sum = (state.getOption() ?? 0) + (value ?? 0)
                    try state.update(sum)
                    return (key, sum)
                }.timeout(.seconds(2))
                return stream.mapWithState(spec).checkpoint(.seconds(2))
            }),
            ("inverse window", { $0.reduceByKeyAndWindow(+, inverse: -, windowDuration: .seconds(4), slideDuration: .seconds(2)).checkpoint(.seconds(4)) }),
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
}
