import Synchronization
import Testing
@testable import Sluice
import SluiceTesting

/// Plain recomputation of windows over batches 1...n (batch i at time i): the window at output time t holds
/// the batches in (t - window, t]; outputs are at every multiple of the slide.
struct WindowReference<T> {
    let batches: [[T]]  // present batches (nil treated as empty, as Spark's slice skips missing RDDs)
    let window: Int
    let slide: Int

    var outputTimes: [Int] { Array(stride(from: slide, through: batches.count, by: slide)) }

    func contents(at t: Int) -> [T] {
        (max(1, t - window + 1)...t).flatMap { batches[$0 - 1] }
    }

    func everyWindow() -> [[T]] { outputTimes.map(contents(at:)) }
}

@Suite struct WindowOperationsTests {
    /// Random batches with window and slide random multiples of the batch (slide never above 4).
    func randomCase(seed: UInt64) -> (input: [[Int]?], window: Int, slide: Int) {
        var g = SeededGenerator(seed: seed)
        let slide = Int.random(in: 1...4, using: &g)
        let window = slide * Int.random(in: 1...3, using: &g) + (Bool.random(using: &g) ? 0 : Int.random(in: 0...2, using: &g))
        let input = randomBatches(Int.random(in: 6...16, using: &g), seed: seed &* 31, allowMissing: false)
        return (input, max(window, 1), slide)
    }

    func counts<K: Hashable>(_ xs: [K]) -> [K: Int] { Dictionary(xs.map { ($0, 1) }, uniquingKeysWith: +) }

    @Test func windowMatchesARecomputationForRandomWindowsAndSlides() throws {
        for seed in 1...12 as ClosedRange<UInt64> {
            let (input, w, s) = randomCase(seed: seed)
            let reference = WindowReference(batches: input.map { $0 ?? [] }, window: w, slide: s)
            let out = try StreamTest.run(input: input) {
                $0.window(windowDuration: .seconds(w), slideDuration: .seconds(s))
            }
            #expect(out.map { $0.sorted() } == reference.everyWindow().map { $0.sorted() }, "window \(w), slide \(s)")

            let perKey = try StreamTest.run(input: input.map { $0?.map { ($0 % 4, $0) } }) {
                $0.reduceByKeyAndWindow(+, windowDuration: .seconds(w), slideDuration: .seconds(s))
            }
            let expectedSums = reference.everyWindow().map { window in
                Dictionary(window.map { ($0 % 4, $0) }, uniquingKeysWith: +)
            }
            #expect(perKey.map { Dictionary(uniqueKeysWithValues: $0) } == expectedSums, "seed \(seed)")

            let grouped = try StreamTest.run(input: input.map { $0?.map { ($0 % 3, $0) } }) {
                $0.groupByKeyAndWindow(windowDuration: .seconds(w), slideDuration: .seconds(s))
            }
            #expect(grouped.map { Dictionary(uniqueKeysWithValues: $0.map { ($0.0, $0.1.sorted()) }) }
                == reference.everyWindow().map { window in
                    Dictionary(grouping: window, by: { $0 % 3 }).mapValues { $0.sorted() }
                })

            let reduced = try StreamTest.run(input: input) {
                $0.reduceByWindow(+, windowDuration: .seconds(w), slideDuration: .seconds(s))
            }
            #expect(reduced == reference.everyWindow().map { $0.isEmpty ? [] : [$0.reduce(0, +)] })
        }
    }

    @Test func incrementalWindowsMatchARecomputation() throws {
        for seed in 20...31 as ClosedRange<UInt64> {
            let (input, w, s) = randomCase(seed: seed)
            let words = input.map { $0?.map { "k\(abs($0) % 6)" } }
            let reference = WindowReference(batches: words.map { $0 ?? [] }, window: w, slide: s)
            // With the inverse, a key stays once it entered (its count may fall to 0), as in Spark.
            let incremental = try StreamTest.run(input: words.map { $0?.map { ($0, 1) } }) {
                $0.reduceByKeyAndWindow(+, inverse: -, windowDuration: .seconds(w), slideDuration: .seconds(s))
            }
            let expected = reference.outputTimes.map { t -> [String: Int] in
                let seen = Set(reference.batches.prefix(t).joined())
                var window = counts(reference.contents(at: t))
                for key in seen where window[key] == nil { window[key] = 0 }
                return window
            }
            #expect(incremental.map { Dictionary(uniqueKeysWithValues: $0) } == expected, "window \(w), slide \(s)")

            let byValue = try StreamTest.run(input: words) {
                $0.countByValueAndWindow(windowDuration: .seconds(w), slideDuration: .seconds(s))
            }
            #expect(byValue.map { Dictionary(uniqueKeysWithValues: $0) } == reference.everyWindow().map(counts))

            let counted = try StreamTest.run(input: words) {
                $0.countByWindow(windowDuration: .seconds(w), slideDuration: .seconds(s))
            }
            let firstData = reference.batches.firstIndex { !$0.isEmpty }.map { $0 + 1 } ?? Int.max
            #expect(counted == reference.outputTimes.map { t in t >= firstData ? [reference.contents(at: t).count] : [] },
                "countByWindow emits once a key entered, then 0 for empty windows (Spark)")

            let sums = try StreamTest.run(input: input) {
                $0.reduceByWindow(+, inverse: -, windowDuration: .seconds(w), slideDuration: .seconds(s))
            }
            let numbers = WindowReference(batches: input.map { $0 ?? [] }, window: w, slide: s)
            let expectedSums: [[Int]] = numbers.outputTimes.map { t in
                t >= firstData ? [numbers.contents(at: t).reduce(0, +)] : []
            }
            #expect(sums == expectedSums)
        }
    }

    @Test func theGuidesWindowedWordCountAndWindowedJoin() throws {
        // reduceByKeyAndWindow((a, b) => a + b, Seconds(30), Seconds(10)), with 10 s batches.
        let lines: [[String]?] = [["a b"], ["b c"], ["c d"], ["d e"], ["e f"], ["f a"]]
        let counts = try StreamTest.run(input: lines, batchDuration: .seconds(10)) { stream in
            stream.flatMap { $0.split(ascii: " ") }.map { ($0, 1) }
                .reduceByKeyAndWindow(+, windowDuration: .seconds(30), slideDuration: .seconds(10))
        }
        #expect(counts.map { Dictionary(uniqueKeysWithValues: $0) } == [
            ["a": 1, "b": 1], ["a": 1, "b": 2, "c": 1], ["a": 1, "b": 2, "c": 2, "d": 1],
            ["b": 1, "c": 2, "d": 2, "e": 1], ["c": 1, "d": 2, "e": 2, "f": 1], ["d": 1, "e": 2, "f": 2, "a": 1],
        ])
        // windowedStream1 = stream1.window(Seconds(20)); windowedStream2 = stream2.window(Minutes(1))... scaled
        // to batches: a 2-batch window joined with a 3-batch window.
        let left: [[(String, Int)]?] = [[("k", 1)], [("k", 2)], [("j", 3)], []]
        let right: [[(String, String)]?] = [[("k", "x")], [], [("j", "y")], [("k", "z")]]
        let joined = try StreamTest.run(input: left, right) { a, b in
            a.window(windowDuration: .seconds(2)).join(b.window(windowDuration: .seconds(3)))
        }
        #expect(joined.map { $0.map { "\($0.0)\($0.1.0)\($0.1.1)" }.sorted() }
            == [["k1x"], ["k1x", "k2x"], ["j3y", "k2x"], ["j3y"]])
    }

    @Test func misalignedWindowsAreAClearErrorAtStart() throws {
        for (window, slide, expected) in [
            (Duration.milliseconds(2_500), Duration.seconds(1), "window duration"),
            (.seconds(2), .milliseconds(1_500), "slide duration"),
        ] {
            let error = #expect(throws: StreamingError.self) {
                _ = try StreamTest.run(input: [[1]]) { $0.window(windowDuration: window, slideDuration: slide) }
            }
            #expect(error?.message.contains(expected) == true && error?.message.contains("multiple of") == true,
                "\(String(describing: error))")
        }
        let incremental = #expect(throws: StreamingError.self) {
            _ = try StreamTest.run(input: [[("a", 1)]]) {
                $0.reduceByKeyAndWindow(+, inverse: -, windowDuration: .seconds(3), slideDuration: .milliseconds(700))
            }
        }
        #expect(incremental?.message.contains("700 ms") == true)
        let unionOfSlides = #expect(throws: StreamingError.self) {
            _ = try StreamTest.run(input: [[1]]) { $0.window(windowDuration: .seconds(2), slideDuration: .seconds(2)).union($0) }
        }
        #expect(unionOfSlides?.message.contains("different slide durations") == true)
    }

    @Test func aWindowLargerThanTheMemoryBudgetSpillsAndStaysExact() throws {
        // 12 batches of 60,000 Ints under a 1 MiB budget: the 8-batch window (about 4 MB of blocks) cannot stay
        // in memory, so its batches spill to disk and are read back for each window.
        let spillRoot = try TemporaryDirectory(prefix: "sluice-window-spill")
        defer { spillRoot.remove() }
        let batches: [[Int]] = (1...12).map { b in (0..<60_000).map { $0 &* 7919 &+ b } }
        let context = Mutex<StreamingContext?>(nil)
        let conf = StreamingConf().set("sluice.memory.limit", "1m").set("sluice.spill.dir", spillRoot.path)
        let out = try StreamTest.run(numBatches: 12, conf: conf, beforeBatch: nil) { ssc in
            context.withLock { $0 = ssc }
            let queue = RDDQueue<Int>()
            for batch in batches { queue.enqueue(ssc.parallelize(batch, numSlices: 2)) }
            return ssc.queueStream(queue).map { $0 &* 3 }.window(windowDuration: .seconds(8), slideDuration: .seconds(1))
                .transform { (rdd: RDD<Int>) -> RDD<Int> in
                    rdd.engine.parallelize([try rdd.reduce { $0 &+ $1 } ?? 0, try rdd.count()], numSlices: 1)
                }
        }
        let reference = WindowReference(batches: batches.map { $0.map { $0 &* 3 } }, window: 8, slide: 1)
        #expect(out == reference.everyWindow().map { [$0.reduce(0, &+), $0.count] })
        let spilled = try #require(context.withLock { $0 }).engine.spillStatistics
        #expect(spilled.bytesSpilled > 0 && spilled.bytesReadBack > 0, "\(spilled)")
    }

    @Test func aWindowEmitsOnlyAtMultiplesOfItsSlide() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: StreamingConf().setMaster("local[2]"), batchDuration: .seconds(1), clock: clock)
            let times = Collected<Int64>()
            ssc.sequenceStream((1...7).map { [$0] }).window(windowDuration: .seconds(3), slideDuration: .seconds(2))
                .foreachRDD { _, time in times.append(time.milliseconds) }
            try ssc.start()
            clock.set(to: Time(milliseconds: 7_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 7_000), timeout: .seconds(30)))
            ssc.stop()
            #expect(times.values == [2_000, 4_000, 6_000])
        }
    }
}
