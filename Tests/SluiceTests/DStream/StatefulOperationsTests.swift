import Synchronization
import Testing
@testable import Sluice
import SluiceTesting

/// Values appended from jobs, read by the test.
final class Collected<T: Sendable>: Sendable {
    private let storage = Mutex<[T]>([])
    func append(_ value: T) { storage.withLock { $0.append(value) } }
    var values: [T] { storage.withLock { $0 } }
}

@Suite struct StatefulOperationsTests {
    @Test func updateStateByKeyMatchesAReplayOfAllInput() throws {
        for seed in 1...6 as ClosedRange<UInt64> {
            let input = randomBatches(10, seed: seed).map { $0?.map { ("k\(abs($0) % 7)", $0) } }
            // Running sums; a key whose sum falls below -30 is removed.
            let out = try StreamTest.run(input: input) { stream in
                stream.updateStateByKey { (values: [Int], state: Int?) -> Int? in
                    let sum = values.reduce(state ?? 0, +)
                    return sum < -30 ? nil : sum
                }
            }
            var state: [String: Int] = [:]
            var expected: [[String: Int]] = []
            for batch in input {
                var grouped: [String: [Int]] = [:]
                for (k, v) in batch ?? [] { grouped[k, default: []].append(v) }
                for key in Set(state.keys).union(grouped.keys) {
                    let sum = (grouped[key] ?? []).reduce(state[key] ?? 0, +)
                    state[key] = sum < -30 ? nil : sum
                }
                expected.append(state)
            }
            #expect(out.map { Dictionary(uniqueKeysWithValues: $0) } == expected, "seed \(seed)")
        }
    }

    @Test func updateStateByKeyWithAnInitialStateAndTheTimeAwareForm() throws {
        let out = try StreamTest.run(numBatches: 3) { ssc in
            let initial = ssc.parallelize([("a", 100), ("z", 5)])
            let queue = RDDQueue<(String, Int)>()
            queue.enqueue(ssc.parallelize([("a", 1), ("b", 2)]))
            queue.enqueue(ssc.parallelize([("b", 3)]))
            return ssc.queueStream(queue).updateStateByKey(numPartitions: 3, initialState: initial) {
                (time: Time, key: String, values: [Int], state: Int?) -> Int? in
                key == "z" && time.milliseconds >= 2_000 ? nil : values.reduce(state ?? 0, +) + Int(time.milliseconds / 1_000) * 0
            }
        }
        #expect(out.map { Dictionary(uniqueKeysWithValues: $0) } == [
            ["a": 101, "b": 2, "z": 5], ["a": 101, "b": 5], ["a": 101, "b": 5],
        ])
    }

    @Test func theGuidesRunningWordCount() throws {
        // StatefulNetworkWordCount: updateFunction adds the new values to the running count.
        let lines: [[String]?] = [["hello world"], ["hello"], nil, ["world world"]]
        let out = try StreamTest.run(input: lines) { stream in
            stream.flatMap { $0.split(ascii: " ") }.map { ($0, 1) }
                .updateStateByKey { (newValues: [Int], runningCount: Int?) -> Int? in
                    newValues.reduce(runningCount ?? 0, +)
                }
        }
        #expect(out.map { Dictionary(uniqueKeysWithValues: $0) } == [
            ["hello": 1, "world": 1], ["hello": 2, "world": 1], ["hello": 2, "world": 1], ["hello": 2, "world": 3],
        ], "a batch with no RDD re-applies the function to every key with no values")
    }

    @Test func aWindowOverStateReadsEarlierStates() throws {
        let input: [[(String, Int)]?] = [[("a", 1)], [("a", 1), ("b", 1)], [("b", 5)], [("a", 2)]]
        let out = try StreamTest.run(input: input) { stream in
            stream.updateStateByKey { (values: [Int], state: Int?) -> Int? in values.reduce(state ?? 0, +) }
                .window(windowDuration: .seconds(2)).reduceByKey(+)
        }
        // States: {a1} {a2 b1} {a2 b6} {a4 b6}; windows of two states summed.
        #expect(out.map { Dictionary(uniqueKeysWithValues: $0) }
            == [["a": 1], ["a": 3, "b": 1], ["a": 4, "b": 7], ["a": 6, "b": 12]])
    }

    @Test func mapWithStateCallsTheFunctionPerRecordAndSnapshotsTheState() throws {
        let input: [[(String, Int)]?] = [[("a", 1), ("a", 2), ("b", 5)], [("a", 3)], nil, [("b", -5), ("c", 1)]]
        let spec = StateSpec<String, Int, Int, String>.function { key, value, state in
            let total = (value ?? 0) + (state.getOption() ?? 0)
            if total == 0 {
                try state.remove()
                return "\(key) removed"
            }
            try state.update(total)
            return "\(key)=\(total)"
        }
        // One input partition, so that a key's records reach the function in input order.
        let single = StreamingConf().set("spark.default.parallelism", "1")
        let mapped = try StreamTest.run(input: input, conf: single) { $0.mapWithState(spec) }
        // As in Spark, the mapped stream has an (empty) RDD even when the input has none.
        #expect(mapped.map { $0.sorted() } == [["a=1", "a=3", "b=5"], ["a=6"], [], ["b removed", "c=1"]])
        let snapshots = try StreamTest.run(input: input, conf: single) { $0.mapWithState(spec).stateSnapshots() }
        #expect(snapshots.map { Dictionary(uniqueKeysWithValues: $0) } == [
            ["a": 3, "b": 5], ["a": 6, "b": 5], ["a": 6, "b": 5], ["a": 6, "c": 1],
        ])
    }

    @Test func mapWithStateMatchesAReplayOnRandomInput() throws {
        for seed in 40...44 as ClosedRange<UInt64> {
            let input = randomBatches(10, seed: seed, allowMissing: false).map { $0?.map { (abs($0) % 9, $0) } }
            let spec = StateSpec<Int, Int, Int, Int>.function { key, value, state in
                let next = (state.getOption() ?? 0) + (value ?? 0)
                try state.update(next)
                return next * 100 + key
            }
            // One input partition: records of a key keep their order within an input partition (as in Spark), so
            // with one the running totals a record sees are defined.
            let out = try StreamTest.run(input: input, conf: StreamingConf().set("spark.default.parallelism", "1")) {
                $0.mapWithState(spec.numPartitions(3))
            }
            var state: [Int: Int] = [:]
            var expected: [[Int]] = []
            for batch in input {
                var emitted: [Int] = []
                for (k, v) in batch ?? [] {
                    state[k, default: 0] += v
                    emitted.append(state[k]! * 100 + k)
                }
                expected.append(emitted.sorted())
            }
            // Records of a key keep their order; keys interleave as the shuffle delivers them.
            #expect(out.map { $0.sorted() } == expected, "seed \(seed)")
        }
    }

    /// A state past the last-level cache (one partition of 200,000 keys: a 16 MiB table) is looked up in runs
    /// of records before the function runs for them; inserts and removals inside a run move keys, so the run's
    /// later records must find theirs again. Hot keys come back within a run, new keys are added and removed
    /// again: every output and the final state match a replay over a dictionary.
    @Test func aStatePastTheCacheMatchesAReplayThroughInsertsAndRemovals() throws {
        let keys = 200_000
        var random = SeededGenerator(seed: 77)
        let batches: [[(Int, Int)]] = (0..<4).map { _ in
            (0..<3_000).map { _ in
                let key = switch Int.random(in: 0..<4, using: &random) {
                case 0, 1: Int.random(in: 0..<48, using: &random)  // hot: back within a run of 32 records
                case 2: keys + Int.random(in: 0..<16, using: &random)  // new keys, added and removed again
                default: Int.random(in: 0..<keys, using: &random)
                }
                return (key, Int.random(in: -1...5, using: &random))  // -1 removes, 0 only reads
            }
        }
        let spec = StateSpec<Int, Int, Int, String>.function { key, value, state in
            switch value ?? 0 {
            case -1:
                guard state.exists else { return "\(key) absent" }
                try state.remove()
                return "\(key) removed"
            case 0: return "\(key) is \(state.getOption() ?? -1)"
            case let v:
                let next = (state.getOption() ?? 0) + v
                try state.update(next)
                return "\(key)=\(next)"
            }
        }.numPartitions(1)
        func stream(_ ssc: StreamingContext) -> MapWithStateDStream<Int, Int, Int, String> {
            let queue = RDDQueue<(Int, Int)>()
            for batch in batches { queue.enqueue(ssc.parallelize(batch, numSlices: 1)) }
            return ssc.queueStream(queue).mapWithState(
                spec.initialState(ssc.parallelize((0..<keys).map { ($0, $0 % 7) }, numSlices: 1)))
        }
        var state = Dictionary(uniqueKeysWithValues: (0..<keys).map { ($0, $0 % 7) })
        var expected: [[String]] = []
        for batch in batches {
            expected.append(batch.map { key, value in
                switch value {
                case -1: return state.removeValue(forKey: key) == nil ? "\(key) absent" : "\(key) removed"
                case 0: return "\(key) is \(state[key] ?? -1)"
                default:
                    state[key, default: 0] += value
                    return "\(key)=\(state[key]!)"
                }
            })
        }
        let conf = StreamingConf().set("spark.default.parallelism", "1")
        let out = try StreamTest.run(numBatches: batches.count, conf: conf) { stream($0) }
        #expect(out == expected)
        let snapshots = try StreamTest.run(numBatches: batches.count, conf: conf) { stream($0).stateSnapshots() }
        #expect(snapshots.last.map { Dictionary(uniqueKeysWithValues: $0) } == state)
    }

    @Test func idleKeysTimeOutInTheBatchInWhichTheyExpire() throws {
        // Timeout 2 s with 1 s batches: a key last updated at u times out at the first batch t with u < t - 2.
        let input: [[(String, Int)]?] = [[("a", 1), ("b", 1)], [("b", 1)], [], [], [("b", 1)], [], [], [], []]
        let spec = StateSpec<String, Int, Int, String>.function { (time: Time, key: String, value: Int?, state: State<Int>) -> String? in
            if state.isTimingOut {
                #expect(value == nil)
                #expect(throws: StreamingError.self) { try state.update(0) }
                #expect(throws: StreamingError.self) { try state.remove() }
                return "\(key) timed out at \(time.milliseconds / 1_000) after \(try state.get())"
            }
            try state.update((state.getOption() ?? 0) + (value ?? 0))
            return nil
        }.timeout(.seconds(2))
        let out = try StreamTest.run(input: input) { $0.mapWithState(spec) }
        // a: updated at 1 -> times out at 4; b: updated at 5 -> times out at 8 (no input needed).
        #expect(out == [[], [], [], ["a timed out at 4 after 1"], [], [], [], ["b timed out at 8 after 3"], []])
        let snapshots = try StreamTest.run(input: input) { $0.mapWithState(spec).stateSnapshots() }
        #expect(snapshots.map { $0.map(\.0).sorted() } == [
            ["a", "b"], ["a", "b"], ["a", "b"], ["b"], ["b"], ["b"], ["b"], [], [],
        ])
    }

    @Test func timeoutsMatchAReplayWithTouchesRemovalsAndReAdds() throws {
        // Sparse random batches over 8 keys, timeout 3 s: keys go idle, are touched without an update (which
        // refreshes the idle clock), removed and added again, so timers go stale and move to later buckets.
        for seed in 60...65 as ClosedRange<UInt64> {
            var random = SeededGenerator(seed: seed)
            let input: [[(Int, Int)]?] = (0..<40).map { _ in
                if Int.random(in: 0..<8, using: &random) == 0 { return nil }
                return (0..<Int.random(in: 0...4, using: &random)).map { _ in
                    (Int.random(in: 0..<8, using: &random), Int.random(in: -3...5, using: &random))
                }
            }
            let spec = StateSpec<Int, Int, Int, String>.function { (time: Time, key: Int, value: Int?, state: State<Int>) -> String? in
                let t = time.milliseconds / 1_000
                if state.isTimingOut { return "\(key) timed out at \(t) with \(try state.get())" }
                switch value ?? 0 {
                case -3: try state.remove()
                case 0: break
                case let v: try state.update((state.getOption() ?? 0) + v)
                }
                return "\(key) at \(t): \(state.getOption().map(String.init) ?? "-")"
            }.timeout(.seconds(3))
            let out = try StreamTest.run(input: input, conf: StreamingConf().set("spark.default.parallelism", "1")) {
                $0.mapWithState(spec.numPartitions(2))
            }
            var state: [Int: (value: Int, updated: Int)] = [:]
            var expected: [[String]] = []
            for (index, batch) in input.enumerated() {
                let t = index + 1
                var emitted: [String] = []
                for (key, value) in batch ?? [] {
                    switch value {
                    case -3: state[key] = nil
                    case 0: if let s = state[key] { state[key] = (s.value, t) }
                    default: state[key] = ((state[key]?.value ?? 0) + value, t)
                    }
                    emitted.append("\(key) at \(t): \(state[key].map { String($0.value) } ?? "-")")
                }
                for (key, s) in state where s.updated + 3 < t {
                    emitted.append("\(key) timed out at \(t) with \(s.value)")
                    state[key] = nil
                }
                expected.append(emitted.sorted())
            }
            #expect(out.map { $0.sorted() } == expected, "seed \(seed)")
        }
    }

    @Test func eachKeyWaitsInOneTimerBucketHoweverOftenItIsTouched() throws {
        // 10 keys touched every batch, timeout 5 s: the timer index holds one entry per key (arming on every
        // touch held one per key and batch of the timeout). Then 5 of them are also removed and added again every
        // other batch: their copies stay within one per batch of the timeout, and stop growing.
        let spec = StateSpec<Int, Int, Int, Int>.function { _, value, state in
            if value == -1 { try state.remove() } else { try state.update((state.getOption() ?? 0) + (value ?? 0)) }
            return nil
        }.timeout(.seconds(5))
        let kernel = MapWithStateKernel.make(spec)
        var store = MapWithStateStore<Int, Int>()
        let state = State<Int>()
        var mapped: [Int] = []
        var waiting: [Int] = []
        for t in 1...60 {
            let churn = t > 20 && t.isMultiple(of: 2) ? (0..<5).map { ($0, -1) } : []
            let records = churn + (0..<10).map { ($0, 1) }
            let time = Time(milliseconds: Int64(t) * 1_000)
            try records.withUnsafeBufferPointer { try kernel.records($0, &store, state, time, &mapped) }
            try kernel.timeouts(&store, state, time, &mapped)
            waiting.append(store.timers.values.reduce(0) { $0 + $1.count })
        }
        #expect(waiting[..<20].allSatisfy { $0 == 10 }, "\(waiting)")
        #expect(waiting[20...].allSatisfy { $0 <= 10 + 5 * 6 }, "\(waiting)")
        #expect(waiting[50...].max() == waiting[30..<40].max(), "no growth once the copies cycle: \(waiting)")
        #expect(mapped.isEmpty && store.entries.count == 10)
    }

    @Test func theStateHandleEnforcesSparksRules() throws {
        let results = Collected<String>()
        let spec = StateSpec<String, Int, Int, Int>.function { _, value, state in
            #expect(!state.exists)
            #expect(throws: StreamingError.self) { try state.get() }
            try state.update(value ?? 0)
            #expect(try state.exists && state.get() == (value ?? 0))
            try state.remove()
            #expect(!state.exists && state.getOption() == nil)
            do {
                try state.remove()
            } catch let error as StreamingError {
                results.append(error.message)
            }
            do {
                try state.update(1)
            } catch let error as StreamingError {
                results.append(error.message)
            }
            return nil
        }
        _ = try StreamTest.run(input: [[("k", 1)]]) { $0.mapWithState(spec) }
        #expect(results.values == [
            "Cannot remove the state that has already been removed", "Cannot update the state after it has been removed",
        ])
    }

    @Test func mapWithStateStartsFromAnInitialState() throws {
        let out = try StreamTest.run(numBatches: 2) { ssc in
            let queue = RDDQueue<(String, Int)>()
            queue.enqueue(ssc.parallelize([("a", 1)]))
            let spec = StateSpec<String, Int, Int, Int>.function { _, value, state in
                let next = (state.getOption() ?? 0) + (value ?? 0)
                try state.update(next)
                return next
            }.initialState(ssc.parallelize([("a", 10), ("b", 20)]))
            return ssc.queueStream(queue).mapWithState(spec).stateSnapshots()
        }
        #expect(out.map { Dictionary(uniqueKeysWithValues: $0) } == [["a": 11, "b": 20], ["a": 11, "b": 20]])
    }

    @Test func statefulStreamsNeedACheckpointDirectory() throws {
        try StreamTest.exclusively {
            let ssc = try StreamingContext(conf: StreamingConf().setMaster("local[2]"), batchDuration: .seconds(1), clock: ManualClock())
            ssc.sequenceStream([[("a", 1)]]).updateStateByKey { (v: [Int], s: Int?) -> Int? in s }.print()
            let error = #expect(throws: StreamingError.self) { try ssc.start() }
            #expect(error?.message.contains("checkpoint directory has not been set") == true)
            #expect(error?.message.contains("updateStateByKey") == true)
        }
    }

    @Test func aFailedStateUpdateLeavesTheStateUnusableRatherThanCountingTwice() throws {
        let fail = Mutex(true)
        let error = #expect(throws: StreamingError.self) {
            _ = try StreamTest.run(input: [[("a", 1)], [("a", 1)], [("a", 1)]]) { stream in
                stream.updateStateByKey { (values: [Int], state: Int?) -> Int? in
                    if values.isEmpty == false, (state ?? 0) == 1, fail.withLock({ $0 }) { throw Boom(value: 1) }
                    return values.reduce(state ?? 0, +)
                }
            }
        }
        #expect(error?.underlying as? Boom == Boom(value: 1))
    }
}

@Suite struct LongRunningStateTests {
    /// 40 batches from a queue, each RDD used once: stateful streams must pull each batch exactly once, also
    /// long after their earliest batches were forgotten.
    @Test func statefulStreamsTakeEachQueuedBatchOnceOverManyBatches() throws {
        let n = 40
        let expectedTotals = (1...n).map { $0 * ($0 + 1) / 2 }
        for kind in ["updateStateByKey", "mapWithState", "inverseWindow"] {
            let queue = RDDQueue<(String, Int)>()
            let out = try StreamTest.run(numBatches: n, beforeBatch: { i, ssc in
                queue.enqueue(ssc.parallelize([("k", i + 1)]))
            }) { ssc -> DStream<Int> in
                let input = ssc.queueStream(queue)
                switch kind {
                case "updateStateByKey":
                    return input.updateStateByKey { (values: [Int], state: Int?) -> Int? in values.reduce(state ?? 0, +) }
                        .map(\.1)
                case "mapWithState":
                    return input.mapWithState(StateSpec<String, Int, Int, Int>.function { _, value, state in
                        let total = (state.getOption() ?? 0) + (value ?? 0)
                        try state.update(total)
                        return total
                    }.timeout(.seconds(1_000)))
                default:
                    return input.reduceByKeyAndWindow(+, inverse: -, windowDuration: .seconds(1_000)).map(\.1)
                }
            }
            #expect(out == expectedTotals.map { [$0] }, "\(kind)")
            #expect(queue.count == 0)
        }
    }
}
