import Synchronization
import Testing
import SluiceColumnar
@testable import SluiceExecution
import SluiceTesting

struct Boom: Error, Equatable { let value: Int }

/// An element that counts how many of its kind are alive (made and not yet dropped).
final class Tracked: Sendable {
    static let live = Atomic(0)
    static let made = Atomic(0)
    let value: Int
    init(_ value: Int) {
        self.value = value
        Tracked.live.add(1, ordering: .relaxed)
        Tracked.made.add(1, ordering: .relaxed)
    }
    deinit { Tracked.live.subtract(1, ordering: .relaxed) }
}

/// Spark's slicing rule, written plainly: partition i of p holds elements [i*n/p, (i+1)*n/p).
func referenceSlices<T>(_ xs: [T], _ p: Int) -> [[T]] {
    (0..<p).map { i in Array(xs[(i * xs.count / p)..<((i + 1) * xs.count / p)]) }
}

@Suite struct RDDTests {
    let engine: ExecutionEngine

    init() throws {
        engine = ExecutionEngine(pool: try WorkStealingPool(workers: 2))
    }

    @Test func parallelizeSlicesAsSparkDoes() throws {
        for (n, p) in [(0, 3), (1, 4), (10, 3), (7, 7), (5, 8), (1_000, 16)] {
            let xs = Array(0..<n)
            let rdd = engine.parallelize(xs, numSlices: p)
            #expect(rdd.numPartitions == p)
            #expect(try rdd.glom().collect() == referenceSlices(xs, p), "n \(n), p \(p)")
        }
    }

    @Test func narrowChainsMatchAPlainComputationOnRandomInputs() throws {
        var g = SeededGenerator(seed: 21)
        for trial in 0..<60 {
            let n = Int.random(in: 0...2_000, using: &g)
            let p = Int.random(in: 1...12, using: &g)
            let xs = (0..<n).map { _ in Int.random(in: -1_000...1_000, using: &g) }
            let k = Int.random(in: 1...7, using: &g)
            @Sendable func triple(_ x: Int) -> Int { x * 3 }
            @Sendable func keep(_ x: Int) -> Bool { x % k != 0 }
            @Sendable func mirror(_ x: Int) -> [Int] { x > 0 ? [x, -x] : [x] }
            @Sendable func bump(_ part: Partition<Int>) -> [Int] { part.map { $0 + 1 } }
            let rdd: RDD<Int> = engine.parallelize(xs, numSlices: p).map(triple).filter(keep).flatMap(mirror)
                .mapPartitions(bump)
            let tripled: [Int] = xs.map(triple)
            let expected: [Int] = tripled.filter(keep).flatMap(mirror).map { $0 + 1 }
            #expect(try rdd.collect() == expected, "trial \(trial)")
            #expect(try rdd.count() == expected.count)
            #expect(try rdd.reduce(+) == expected.reduce(nil) { ($0 ?? 0) + $1 })
            let t = Int.random(in: 0...50, using: &g)
            #expect(try rdd.take(t) == Array(expected.prefix(t)))
            #expect(try rdd.first() == expected.first)
            #expect(try rdd.isEmpty() == expected.isEmpty)
        }
    }

    /// `map` to pairs has a form of its own (each half of the pair comes back in its own memory): it gives what
    /// the same closure gives element by element, for keys and values of several sizes, odd counts (the loop
    /// takes four at a time) and a closure that throws.
    @Test func mapToPairsMatchesAPlainComputation() throws {
        var g = SeededGenerator(seed: 22)
        for trial in 0..<20 {
            let xs = (0..<Int.random(in: 0...3_000, using: &g)).map { _ in Int.random(in: -1_000...1_000, using: &g) }
            let p = Int.random(in: 1...6, using: &g)
            let ints = try engine.parallelize(xs, numSlices: p).map { ($0 % 7, $0 &* 3) }.collect()
            #expect(ints.map(Pair.init) == xs.map { Pair($0 % 7, $0 &* 3) }, "trial \(trial)")
            let mixed = try engine.parallelize(xs, numSlices: p).map { (String($0), [$0, -$0]) }.collect()
            #expect(mixed.map(\.0) == xs.map(String.init) && mixed.map(\.1) == xs.map { [$0, -$0] }, "trial \(trial)")
            let bytes = try engine.parallelize(xs, numSlices: p).map { (UInt8(truncatingIfNeeded: $0), $0 > 0) }.collect()
            #expect(bytes.map(\.0) == xs.map { UInt8(truncatingIfNeeded: $0) } && bytes.map(\.1) == xs.map { $0 > 0 })
        }
        let failing = engine.parallelize(Array(0..<100), numSlices: 4).map { x -> (Int, Int) in
            if x == 42 { throw Boom(value: x) }
            return (x, x)
        }
        #expect(throws: Boom(value: 42)) { try failing.collect() }
    }

    @Test func unionKeepsBothSidesPartitions() throws {
        let a = engine.parallelize([1, 2, 3], numSlices: 2)
        let b = engine.parallelize([4, 5], numSlices: 3)
        let u = a.union(b)
        #expect(u.numPartitions == 5)
        #expect(try u.glom().collect() == [[1], [2, 3], [], [4], [5]])
    }

    @Test func emptyAndSkewedPartitions() throws {
        let skewed = engine.parallelize(Array(0..<10_000), numSlices: 4).filter { $0 < 10 || $0 > 9_990 }
        #expect(try skewed.glom().collect().map(\.count) == [10, 0, 0, 9])
        #expect(try skewed.take(12) == Array(0..<10) + [9_991, 9_992])
        let empty = engine.parallelize([Int](), numSlices: 5)
        #expect(try empty.collect().isEmpty)
        #expect(try empty.reduce(+) == nil)
        #expect(try empty.first() == nil)
        #expect(try empty.isEmpty())
    }

    @Test func takeReadsOnlyThePartitionsItNeeds() throws {
        let touched = Mutex<Set<Int>>([])
        let rdd = engine.parallelize(Array(0..<1_000), numSlices: 100).map { x -> Int in
            touched.withLock { _ = $0.insert(TaskContext.partitionId) }
            return x
        }
        #expect(try rdd.take(5) == [0, 1, 2, 3, 4])
        #expect(touched.withLock { $0 } == [0])
        #expect(try rdd.take(25) == Array(0..<25))  // partition 0 (10 rows), then 1...4 cover the rest
        #expect(touched.withLock { $0 } == Set(0...4))
    }

    @Test func foreachPartitionSeesItsPartitionId() throws {
        let seen = Mutex<[Int: [String]]>([:])
        try engine.parallelize(["a", "b", "c", "d", "e"], numSlices: 3).foreachPartition { part in
            #expect(part.index == TaskContext.partitionId)
            seen.withLock { $0[TaskContext.partitionId] = Array(part) }
        }
        #expect(seen.withLock { $0 } == [0: ["a"], 1: ["b", "c"], 2: ["d", "e"]])
        #expect(TaskContext.partitionId == -1, "outside a task")
        let sum = Mutex(0)
        try engine.parallelize(Array(1...100), numSlices: 7).foreach { x in sum.withLock { $0 += x } }
        #expect(sum.withLock { $0 } == 5_050)
    }

    /// `flatMap`'s elements that hold references are handed over to the pair-making `map`, which takes each (no
    /// copy): the pairs are what the closures give element by element, in order, short and long `String`s alike,
    /// reduced as a dictionary counts them.
    @Test func pairsOfHandedOverElementsMatchAPlainComputation() throws {
        var g = SeededGenerator(seed: 23)
        for trial in 0..<20 {
            let xs = (0..<Int.random(in: 0...3_000, using: &g)).map { _ in Int.random(in: 0...1_000, using: &g) }
            let p = Int.random(in: 1...6, using: &g)
            @Sendable func words(_ x: Int) -> [String] {
                (0..<(x % 5)).map { x % 3 == 0 ? "a-string-longer-than-fifteen-bytes-\(x)-\($0)" : "s\(x % 50)" }
            }
            let expected = xs.flatMap(words).map { ($0, $0.utf8.count) }
            let rdd = engine.parallelize(xs, numSlices: p).flatMap(words).map { ($0, $0.utf8.count) }
            #expect(try rdd.collect().map(Pair.init) == expected.map(Pair.init), "trial \(trial)")
            let t = Int.random(in: 0...2_000, using: &g)
            #expect(try rdd.take(t).map(Pair.init) == expected.prefix(t).map(Pair.init), "trial \(trial)")
            #expect(try rdd.reduceByKey(+).collectAsMap() == Dictionary(expected, uniquingKeysWith: +), "trial \(trial)")
        }
    }

    /// Each element handed over is dropped exactly once: after a job that keeps them in pairs, one whose `map`
    /// throws part-way through a chunk, and a `take` that stops its partition early.
    @Test func handedOverElementsAreDroppedOnceWhateverTheJobDoes() throws {
        let xs = Array(0..<5_000)
        let pairs = engine.parallelize(xs, numSlices: 3).flatMap { x in [Tracked(x), Tracked(-x)] }.map { ($0.value, $0) }
        #expect(try pairs.count() == 10_000)
        #expect(try pairs.collect().map(\.0) == xs.flatMap { [$0, -$0] })
        #expect(try pairs.take(3).map(\.1.value) == [0, 0, 1])
        let failing = engine.parallelize(xs, numSlices: 3).flatMap { x in [Tracked(x), Tracked(-x)] }
            .map { tracked -> (Int, Tracked) in
                if tracked.value == 2_001 { throw Boom(value: tracked.value) }
                return (tracked.value, tracked)
            }
        #expect(throws: Boom(value: 2_001)) { try failing.collect() }
        #expect(Tracked.live.load(ordering: .relaxed) == 0, "every element made was dropped once")
        #expect(Tracked.made.load(ordering: .relaxed) >= 20_000, "the jobs made their elements")
    }

    @Test func aThrowingClosureFailsTheActionWithItsError() throws {
        let rdd = engine.parallelize(Array(0..<100), numSlices: 4).map { x -> Int in
            if x == 42 { throw Boom(value: x) }
            return x
        }
        #expect(throws: Boom(value: 42)) { try rdd.collect() }
        #expect(throws: Boom(value: 42)) { try rdd.count() }
        #expect(try rdd.take(10) == Array(0..<10), "partition 0 never reaches 42")
    }

    @Test func actionsInsideTasksRunAsNestedJobs() throws {
        let inner = engine.parallelize(Array(0..<10), numSlices: 3)
        let totals = try engine.parallelize(Array(0..<4), numSlices: 4).map { k in
            try inner.map { $0 * k }.reduce(+) ?? 0
        }.collect()
        #expect(totals == [0, 45, 90, 135])
    }
}

@Suite struct BlockRDDTests {
    @Test func blocksArePartitionsDecodedInChunks() throws {
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 2))
        let ints = [Array(0..<3_000), [], [-5]]
        let intRDD = engine.blockRDD(try ints.map { try ElementCodecs.standard(Int.self).encode($0) },
            codec: ElementCodecs.standard(Int.self))
        #expect(intRDD.numPartitions == 3)
        #expect(try intRDD.glom().collect() == ints)

        let words = [["a", "bb", "日本"], (0..<2_500).map { "w\($0)" }]
        let wordRDD = engine.blockRDD(try words.map { try ElementCodecs.standard(String.self).encode($0) },
            codec: ElementCodecs.standard(String.self))
        #expect(try wordRDD.glom().collect() == words)

        let pairCodec = ElementCodecs.tuple(String.self, Int.self)
        let pairs = engine.blockRDD([try pairCodec.encode([("a", 1), ("b", 2), ("a", 3)])], codec: pairCodec)
        #expect(try pairs.reduceByKey(+).collectAsMap() == ["a": 4, "b": 2])
    }

    /// A reading in a block of one Int column, decoded row by row (no Int fast path), each decode counted.
    struct Reading: Sendable, Equatable { let value: Int }

    /// `count()` of blocks reads their row counts and decodes no record (directly, and as a stream's per-batch
    /// count); an operator before the count still runs on every element, and its error still fails the count.
    @Test func countReadsRowCountsAndOperatorsBeforeItStillRun() throws {
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 2))
        let decoded = Atomic(0)
        let int = ElementCodecs.standard(Int.self)
        let codec = ElementCodec<Reading>(
            columnTypes: int.columnTypes, writeColumns: { try int.write($0.value, to: &$1) },
            readColumns: { row in
                decoded.add(1, ordering: .relaxed)
                return Reading(value: try int.read(from: &row))
            },
            encode: { try int.encode($0.value, to: &$1) }, decode: { Reading(value: try int.decode(from: &$0)) })
        let sizes = [3_000, 0, 1, 70_000]
        let total = sizes.reduce(0, +)
        let values = sizes.enumerated().map { i, n in (0..<n).map { $0 * 10 + i } }
        let blocks = try values.map { try codec.encode($0.map(Reading.init)) }
        let rdd = engine.blockRDD(blocks, codec: codec)
        #expect(try rdd.count() == total)
        #expect(try rdd.countAsRDD().collect() == [total])
        #expect(decoded.load(ordering: .relaxed) == 0, "no record decoded to count")

        #expect(try rdd.filter { $0.value % 3 == 0 }.count() == values.joined().count { $0 % 3 == 0 })
        #expect(decoded.load(ordering: .relaxed) == total, "every record decoded for the filter")
        #expect(try rdd.map { $0.value }.countAsRDD().collect() == [total])
        let error = #expect(throws: Boom.self) {
            try rdd.map { r -> Int in if r.value == 699_993 { throw Boom(value: r.value) }; return r.value }.count()
        }
        #expect(error == Boom(value: 699_993))
        #expect(try engine.parallelize(Array(0..<1_001), numSlices: 7).count() == 1_001)
        #expect(try engine.parallelize([Int](), numSlices: 3).countAsRDD().collect() == [0])
    }

    @Test func aBlockOfTheWrongSchemaFailsTheJobClearly() throws {
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 1))
        let rdd = engine.blockRDD([try ElementCodecs.standard(String.self).encode(["x"])],
            codec: ElementCodecs.standard(Int.self))
        let error = #expect(throws: FormatError.self) { try rdd.count() }
        #expect(error?.code == .schemaMismatch)
        #expect(error?.message.contains("string") == true && error?.message.contains("int64") == true)
    }
}
