import Synchronization
import Testing
import SluiceColumnar
import SluiceTesting
@testable import SluiceExecution

/// A key type with no fast path (neither Int nor String), to exercise the generic `Hashable` table.
struct Coordinate: Hashable, Comparable, Sendable {
    let x: Int
    let y: Int
    static func < (a: Coordinate, b: Coordinate) -> Bool { (a.x, a.y) < (b.x, b.y) }
}

@Suite struct PairRDDTests {
    let engine: ExecutionEngine

    init() throws {
        engine = ExecutionEngine(pool: try WorkStealingPool(workers: 2))
    }

    @Test func reduceGroupAndCombineMatchAPlainComputationOnRandomInputs() throws {
        var g = SeededGenerator(seed: 7)
        for trial in 0..<40 {
            let n = Int.random(in: 0...3_000, using: &g)
            let pairs = randomPairs(n, keys: Int.random(in: 1...400, using: &g), using: &g)
            let slices = Int.random(in: 1...9, using: &g)
            let reducers = Int.random(in: 1...7, using: &g)
            let rdd = engine.parallelize(pairs, numSlices: slices)
            let groups = referenceGroups(pairs)

            let sums = try rdd.reduceByKey(+, numPartitions: reducers).collect()
            #expect(sortedPairs(sums) == sortedPairs(groups.map { ($0.key, $0.value.reduce(0, +)) }), "trial \(trial)")
            // Int values take reduceByKey's form for Ints; others its generic form.
            let realSums = try rdd.mapValues { Double($0) }.reduceByKey(+, numPartitions: reducers).collect()
            #expect(sortedPairs(realSums.map { ($0.0, Int($0.1)) }) == sortedPairs(sums), "trial \(trial)")

            let grouped = try rdd.groupByKey(numPartitions: reducers).collect()
            #expect(grouped.count == groups.count)
            for (k, vs) in grouped { #expect(vs.sorted() == groups[k]?.sorted(), "trial \(trial), key \(k)") }

            // combineByKey into (sum, count): an average, as in Spark's documentation.
            let averages = try rdd.combineByKey(
                createCombiner: { (v: Int) in (v, 1) }, mergeValue: { (c: (Int, Int), v: Int) in (c.0 + v, c.1 + 1) },
                mergeCombiners: { (a: (Int, Int), b: (Int, Int)) in (a.0 + b.0, a.1 + b.1) }, numPartitions: reducers
            ).mapValues { Double($0.0) / Double($0.1) }.collectAsMap()
            #expect(averages == groups.mapValues { Double($0.reduce(0, +)) / Double($0.count) })

            #expect(try rdd.countByKey() == groups.mapValues(\.count))
            #expect(try rdd.keys().collect() == pairs.map(\.0))
            #expect(try rdd.values().collect() == pairs.map(\.1))
            #expect(try rdd.values().fold(0, +) == pairs.reduce(0) { $0 + $1.1 })
            #expect(try rdd.mapValues { $0 * 2 }.collect().map(\.1) == pairs.map { $0.1 * 2 })
            let spread = try rdd.flatMapValues { v in (0..<(abs(v) % 3)).map { v + $0 } }.collect()
            #expect(spread.map(\.0) == pairs.flatMap { p in Array(repeating: p.0, count: abs(p.1) % 3) })
            #expect(spread.map(\.1) == pairs.flatMap { p in (0..<(abs(p.1) % 3)).map { p.1 + $0 } })
        }
    }

    @Test func stringAndGenericKeysTakeTheirOwnPathsToTheSameResults() throws {
        var g = SeededGenerator(seed: 11)
        let words = (0..<20_000).map { _ in "w\(Int.random(in: 0..<700, using: &g))" } + ["", "é", "日本", "a longer key than sixteen bytes"]
        let counts = try engine.parallelize(words, numSlices: 6).map { ($0, 1) }.reduceByKey(+, numPartitions: 4).collect()
        #expect(sortedPairs(counts) == sortedPairs(referenceGroups(words.map { ($0, 1) }).map { ($0.key, $0.value.count) }))

        let points = (0..<5_000).map { i in (Coordinate(x: i % 13, y: i % 7), i) }
        let grouped = try engine.parallelize(points, numSlices: 5).groupByKey(numPartitions: 3).collect()
        let expected = referenceGroups(points)
        #expect(grouped.count == expected.count)
        for (k, vs) in grouped { #expect(vs.sorted() == expected[k]) }

        let longs = try engine.parallelize((0..<1_000).map { (Int64($0 % 10), 1) }, numSlices: 3).reduceByKey(+).collect()
        #expect(sortedPairs(longs) == (0..<10).map { Pair(Int64($0), 100) })
    }

    /// Word keys in tables large enough to prefetch (past 4,096 slots), inline and long words mixed (long ones
    /// kept beside the packed keys), merged across map tasks and reduce partitions: the same counts as a
    /// dictionary of Strings, unlimited and with the shuffle spilling its tables under a small budget.
    @Test func manyWordKeysInLargeTablesCountAsStringsDo() throws {
        let lines = mixedLines(seed: 19)
        var expected: [String: Int] = [:]
        for line in lines { for word in line.split(separator: " ") { expected[String(word), default: 0] += 1 } }
        func counts(_ engine: ExecutionEngine, reducers: Int) throws -> [String: Int] {
            let pairs = try engine.parallelize(lines, numSlices: 3).flatMap { $0.split(ascii: " ") }.map { ($0, 1) }
                .reduceByKey(+, numPartitions: reducers).collect()
            let byString = Dictionary(pairs.map { ($0.0.string, $0.1) }, uniquingKeysWith: +)
            #expect(byString.count == pairs.count, "each word comes out once")
            return byString
        }
        try expectCounts(expected, spilledReducers: 1, counts)
    }

    /// The user's own `String` keys, as the Word test above has them (inline and long in the table's packing:
    /// up to 15 bytes and past it, multi-byte ones on either side, the empty key, keys alike in their first 15
    /// bytes), in tables past 4,096 slots, merged across map tasks and reduce partitions and spilled under a small
    /// budget: the same counts as a dictionary, and each key in the reduce partition of its Java hash code.
    @Test func manyStringKeysInLargeTablesCountAsADictionaryDoes() throws {
        let lines = mixedLines(seed: 29)
        let alike = ["", "é", "exactly15bytesX", "exactly15bytesXY", "exactly15bytesXYZ", "exactly15bytes"]
        var g = SeededGenerator(seed: 31)
        let words = lines.flatMap { $0.split(separator: " ").map(String.init) }
            + (0..<3_000).map { _ in alike.randomElement(using: &g)! }
        let expected = Dictionary(words.map { ($0, 1) }, uniquingKeysWith: +)
        func counts(_ engine: ExecutionEngine, reducers: Int) throws -> [String: Int] {
            let reduced = engine.parallelize(words, numSlices: 3).map { ($0, 1) }.reduceByKey(+, numPartitions: reducers)
            let partitions = try reduced.glom().collect()
            for (p, part) in partitions.enumerated() {
                let misplaced = part.filter { HashPartitioner(numPartitions: reducers).partition(for: $0.0) != p }
                #expect(misplaced.isEmpty, "keys in partition \(p) of \(reducers) that hash elsewhere")
            }
            let pairs = partitions.flatMap { $0 }
            let byKey = Dictionary(pairs, uniquingKeysWith: +)
            #expect(byKey.count == pairs.count, "each key comes out once")
            return byKey
        }
        try expectCounts(expected, spilledReducers: 2, counts)
    }

    /// Expects `counts` to give `expected` with 1 and 3 reducers, and with `spilledReducers` on an engine whose
    /// small budget makes the shuffle spill its tables.
    func expectCounts(
        _ expected: [String: Int], spilledReducers: Int,
        _ counts: (ExecutionEngine, _ reducers: Int) throws -> [String: Int]
    ) throws {
        for reducers in [1, 3] { #expect(try counts(engine, reducers) == expected, "\(reducers) reducers") }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let limited = ExecutionEngine(
            pool: try WorkStealingPool(workers: 2), memory: MemoryBudget(limit: 256 << 10), spillDirectory: directory.path)
        #expect(try counts(limited, spilledReducers) == expected, "spilled, \(spilledReducers) reducers")
        #expect(limited.spillStatistics.filesWritten > 0, "the tables went past the budget and spilled")
    }

    /// Lines of 1-12 words from a 12,000-word vocabulary of short and long, one- and multi-byte words.
    func mixedLines(seed: UInt64) -> [String] {
        var g = SeededGenerator(seed: seed)
        let vocabulary = (0..<12_000).map { i in
            switch i % 4 {
            case 0: "w\(i)"
            case 1: "a-word-longer-than-fifteen-bytes-\(i)"
            case 2: "fünfzehn-\(i)"  // multi-byte, inline or long by its number's length
            default: "exactly15bytes\(i % 10)"  // 15 bytes: the longest inline word
            }
        }
        return (0..<6_000).map { _ in
            (0..<Int.random(in: 1...12, using: &g)).map { _ in vocabulary.randomElement(using: &g)! }
                .joined(separator: " ")
        }
    }

    /// Int keys on both sides of the direct-mapped range (0..<4096): negative ones, its edges, large and extreme
    /// ones, counted through map tables and reduce tables as a dictionary counts them.
    @Test func intKeysAroundTheDirectMappedRangeCountAsADictionaryDoes() throws {
        var g = SeededGenerator(seed: 23)
        let edges = [Int.min, -1, 0, 1, 4_095, 4_096, 4_097, Int.max]
        let keys = (0..<50_000).map { _ in
            Int.random(in: 0..<3, using: &g) == 0
                ? edges.randomElement(using: &g)! : Int.random(in: -6_000...6_000, using: &g)
        }
        let expected = Dictionary(keys.map { ($0, 1) }, uniquingKeysWith: +)
        for reducers in [1, 4] {
            let counts = try engine.parallelize(keys, numSlices: 5).map { ($0, 1) }
                .reduceByKey(+, numPartitions: reducers).collect()
            #expect(counts.count == expected.count, "each key comes out once")
            #expect(Dictionary(counts, uniquingKeysWith: +) == expected, "\(reducers) reducers")
        }
    }

    @Test func keysLandInTheirSparkHashPartition() throws {
        // Java's hash codes: Long.hashCode(k) == k for small non-negative k; "a" is 97, "hello" is 99162322.
        #expect(SparkHashCode.of("a") == 97)
        #expect(SparkHashCode.of("hello") == 99_162_322)
        #expect(SparkHashCode.of("") == 0)
        #expect(SparkHashCode.of("日本") == 26_085 &* 31 &+ 26_412)
        #expect(SparkHashCode.of(Int(-1)) == 0)  // (int)(-1 ^ (-1 >>> 32)) == 0
        #expect(SparkHashCode.of(Int(1) << 32) == 1)
        #expect(HashPartitioner(numPartitions: 7).partition(forHashCode: -3) == 4)

        // In Spark, a small non-negative Long key k lands in partition k % n.
        let pairs = (0..<200).map { ($0, "v\($0)") }
        let partitioned = engine.parallelize(pairs, numSlices: 4).partitionBy(5)
        #expect(partitioned.numPartitions == 5)
        #expect(partitioned.partitioner == HashPartitioner(numPartitions: 5))
        for (p, part) in try partitioned.glom().collect().enumerated() {
            #expect(part.map(\.0).sorted() == Array(stride(from: p, to: 200, by: 5)))
        }
        // Strings by Java's hashCode, made non-negative mod n: "a" 97 -> 1, "b" 98 -> 2, "hello" -> 1.
        let words = ["a", "b", "hello"].map { ($0, 1) }
        let placed = try engine.parallelize(words, numSlices: 2).partitionBy(3).glom().collect()
        #expect(placed.map { $0.map(\.0).sorted() } == [[], ["a", "hello"], ["b"]])
        #expect(try sortedPairs(partitioned.collect()) == sortedPairs(pairs))
    }

    /// A hash code's partition against Spark's `nonNegativeMod` written plainly (a division), over the edges of
    /// the hash codes and random ones, for small, large and the largest partition counts.
    @Test func aHashCodesPartitionIsSparksNonNegativeMod() {
        var g = SeededGenerator(seed: 23)
        let largest = HashPartitioner.validCounts.upperBound
        let counts = [1, 2, 3, 7, 8, 1_000, 65_537, largest - 1, largest]
            + (0..<50).map { _ in Int.random(in: HashPartitioner.validCounts, using: &g) }
        let edges: [Int32] = [0, 1, -1, 2, -2, 7, -7, .max, .min, .max - 1, .min + 1]
        for n in counts {
            let partitioner = HashPartitioner(numPartitions: n)
            for h in edges + (0..<200).map({ _ in Int32.random(in: .min ... .max, using: &g) }) {
                let r = Int(h) % n
                #expect(partitioner.partition(forHashCode: h) == (r < 0 ? r + n : r), "hash code \(h), \(n) partitions")
            }
        }
    }

    /// partitionBy on random inputs, against a plain computation: every pair lands in the partition its key's
    /// Java hash code names, none is lost or repeated, and within a partition the pairs of each input partition
    /// keep their input order; the same when the map side spills (a budget far below the data).
    @Test func partitionByPlacesEveryPairAndKeepsEachInputPartitionsOrder() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let spilling = ExecutionEngine(
            pool: engine.pool, memory: MemoryBudget(limit: 64 << 10), spillDirectory: directory.path)
        var g = SeededGenerator(seed: 19)
        for trial in 0..<24 {
            let count = Int.random(in: 0...20_000, using: &g)
            // Keys with negative and large hash codes; values name their position in the input.
            let keys = (0..<count).map { _ in Int.random(in: Int.min...Int.max, using: &g) >> Int.random(in: 0...62, using: &g) }
            let pairs = keys.enumerated().map { ($0.element, "v\($0.offset)") }
            let slices = Int.random(in: 1...6, using: &g)
            let n = Int.random(in: 1...9, using: &g)
            let target = HashPartitioner(numPartitions: n)
            // Each pair as (key, its position in the input).
            func check(_ parts: [[(Int, Int)]], _ what: String) {
                #expect(parts.count == n)
                for (p, part) in parts.enumerated() {
                    #expect(part.allSatisfy { target.partition(for: $0.0) == p }, "trial \(trial), \(what), partition \(p)")
                    // Positions of one input partition's pairs (parallelize cuts contiguous ranges) only increase.
                    let bySlice = Dictionary(grouping: part.map(\.1)) { i in (0..<slices).last { $0 * count / slices <= i } }
                    #expect(bySlice.values.allSatisfy { $0 == $0.sorted() }, "trial \(trial), \(what), partition \(p)")
                }
                #expect(parts.flatMap { $0 }.map(\.1).sorted() == Array(0..<count), "trial \(trial), \(what): every pair once")
            }
            for current in [engine, spilling] {
                let strings = try current.parallelize(pairs, numSlices: slices).partitionBy(n).glom().collect()
                check(strings.map { $0.map { ($0.0, Int($0.1.dropFirst())!) } }, "strings")
                // Plain values (no reference to count) take another path through the map side.
                let plain = keys.enumerated().map { ($0.element, $0.offset) }
                check(try current.parallelize(plain, numSlices: slices).partitionBy(n).glom().collect(), "plain values")
            }
        }
        #expect(spilling.spillStatistics.filesWritten > 0, "the map side spilled")
    }

    /// A routing shuffle's list in pieces, against a plain array on random runs of appends: the pieces hold the
    /// elements in order, none over the piece capacity, every piece but the last full.
    @Test func routedPiecesKeepEveryElementInOrderInFullPieces() {
        var g = SeededGenerator(seed: 23)
        for trial in 0..<200 {
            let capacity = Int.random(in: 1...9, using: &g)
            var pieces: [[Int]] = []
            var plain: [Int] = []
            for _ in 0..<Int.random(in: 1...12, using: &g) {
                let run = (0..<Int.random(in: 0...30, using: &g)).map { _ in Int.random(in: 0..<1000, using: &g) }
                run.withUnsafeBufferPointer { run in
                    if plain.isEmpty && pieces.isEmpty {
                        pieces = RoutedPieces.make(run, pieceCapacity: capacity)
                    } else {
                        RoutedPieces.append(run, to: &pieces, pieceCapacity: capacity)
                    }
                }
                plain += run
            }
            #expect(pieces.flatMap { $0 } == plain, "trial \(trial)")
            #expect(pieces.allSatisfy { !$0.isEmpty && $0.count <= capacity }, "trial \(trial): \(pieces.map(\.count))")
            #expect(pieces.dropLast().allSatisfy { $0.count == capacity }, "trial \(trial): \(pieces.map(\.count))")
        }
        // A piece holds pieceBytes of small elements, and a whole chunk of large ones (512-byte elements).
        #expect(RoutedPieces.pieceCapacity(of: (Int, Int).self) * MemoryLayout<(Int, Int)>.stride == RoutedPieces.pieceBytes)
        #expect(RoutedPieces.pieceCapacity(of: SIMD64<UInt64>.self) == chunkCapacity)
    }

    @Test func numPartitionsFollowsSparksDefaultPartitioner() throws {
        let a = engine.parallelize((0..<100).map { ($0 % 10, $0) }, numSlices: 6)
        let b = engine.parallelize((0..<100).map { ($0 % 10, $0) }, numSlices: 3)
        #expect(a.reduceByKey(+).numPartitions == 6, "largest parent when spark.default.parallelism is unset")
        #expect(a.reduceByKey(+, numPartitions: 4).numPartitions == 4)
        #expect(b.cogroup(a).numPartitions == 6)
        let partitioned = b.partitionBy(2)
        #expect(a.join(partitioned).numPartitions == 2, "an existing partitioner is reused")
        #expect(partitioned.mapValues { $0 + 1 }.partitioner == HashPartitioner(numPartitions: 2))
        #expect(partitioned.map { $0 }.partitioner == nil)
        #expect(partitioned.partitionBy(2).numPartitions == 2)

        let configured = ExecutionEngine(pool: engine.pool, defaultParallelism: 5)
        #expect(configured.parallelize([(1, 1)], numSlices: 9).reduceByKey(+).numPartitions == 5)
        #expect(configured.parallelize([1, 2, 3]).numPartitions == 5)
    }

    @Test func aShuffleOfAnAlreadyPartitionedRDDRunsNoMapStage() throws {
        let runs = Mutex(0)
        let partitioned = engine.parallelize((0..<1_000).map { ($0 % 17, 1) }, numSlices: 4).partitionBy(3)
            .mapValues { v -> Int in
                runs.withLock { $0 += 1 }
                return v
            }
        let sums = partitioned.reduceByKey(+)
        #expect(sums.numPartitions == 3)
        #expect(sums.partitioner == partitioned.partitioner)
        #expect(try sortedPairs(sums.collect()) == (0..<17).map { Pair($0, 1_000 / 17 + ($0 < 1_000 % 17 ? 1 : 0)) })
        #expect(runs.withLock { $0 } == 1_000, "each element passed the map once, in the reduce stage's own tasks")
    }

    @Test func joinsAndCogroupMatchAReferenceOnRandomInputs() throws {
        var g = SeededGenerator(seed: 99)
        for trial in 0..<25 {
            let left = randomPairs(Int.random(in: 0...400, using: &g), keys: 40, using: &g)
            let right = randomPairs(Int.random(in: 0...400, using: &g), keys: 40, using: &g).map { ($0.0, "r\($0.1)") }
            let a = engine.parallelize(left, numSlices: Int.random(in: 1...5, using: &g))
            let b = engine.parallelize(right, numSlices: Int.random(in: 1...5, using: &g))
            let (lg, rg) = (referenceGroups(left), referenceGroups(right))
            let keys = Set(lg.keys).union(rg.keys)

            let cogrouped = try a.cogroup(b, numPartitions: 3).collect()
            #expect(Set(cogrouped.map(\.0)) == keys, "trial \(trial)")
            for (k, (vs, ws)) in cogrouped {
                #expect(vs.sorted() == (lg[k] ?? []).sorted())
                #expect(ws.sorted() == (rg[k] ?? []).sorted())
            }

            var inner: [(Int, String)] = [], leftOuter: [(Int, String)] = []
            var rightOuter: [(Int, String)] = [], fullOuter: [(Int, String)] = []
            for k in keys {
                let (vs, ws) = (lg[k] ?? [], rg[k] ?? [])
                for v in vs { for w in ws { inner.append((k, "\(v)|\(w)")) } }
                for v in vs { for w in ws.isEmpty ? [nil] : ws.map(Optional.some) { leftOuter.append((k, "\(v)|\(w ?? "-")")) } }
                for w in ws { for v in vs.isEmpty ? [nil] : vs.map(Optional.some) { rightOuter.append((k, "\(v.map(String.init) ?? "-")|\(w)")) } }
                if vs.isEmpty { for w in ws { fullOuter.append((k, "-|\(w)")) } }
                else if ws.isEmpty { for v in vs { fullOuter.append((k, "\(v)|-")) } }
                else { for v in vs { for w in ws { fullOuter.append((k, "\(v)|\(w)")) } } }
            }
            #expect(sortedPairs(try a.join(b).mapValues { "\($0.0)|\($0.1)" }.collect()) == sortedPairs(inner))
            #expect(sortedPairs(try a.leftOuterJoin(b).mapValues { "\($0.0)|\($0.1 ?? "-")" }.collect()) == sortedPairs(leftOuter))
            #expect(sortedPairs(try a.rightOuterJoin(b).mapValues { "\($0.0.map(String.init) ?? "-")|\($0.1)" }.collect()) == sortedPairs(rightOuter))
            #expect(sortedPairs(try a.fullOuterJoin(b).mapValues { "\($0.0.map(String.init) ?? "-")|\($0.1 ?? "-")" }.collect()) == sortedPairs(fullOuter))
        }
    }

    @Test func theGuidesJoinExample() throws {
        // The guide's "transform with a static RDD" example: join a batch against a dataset.
        let spam = engine.parallelize([("spam.example", true), ("ok.example", false)])
        let batch = engine.parallelize([("spam.example", 1), ("ok.example", 2), ("unknown.example", 3)])
        let cleaned = try batch.leftOuterJoin(spam).filter { !($0.1.1 ?? false) }.map { "\($0.0)=\($0.1.0)" }.collect()
        #expect(cleaned.sorted() == ["ok.example=2", "unknown.example=3"])
    }

    @Test func narrowPairOperationsAndActions() throws {
        let rdd = engine.parallelize([("a", 1), ("b", 2), ("a", 3)], numSlices: 2)
        #expect(try rdd.mapValues { $0 * 10 }.collect().map(\.1) == [10, 20, 30])
        #expect(try rdd.flatMapValues { Array(repeating: $0, count: $0) }.collect().map(\.1) == [1, 2, 2, 3, 3, 3])
        #expect(try rdd.collectAsMap() == ["a": 3, "b": 2], "the last pair for a key wins, as in Spark")
        #expect(try rdd.countByKey() == ["a": 2, "b": 1])
        #expect(try engine.parallelize(["x", "y", "x", "x"]).countByValue() == ["x": 3, "y": 1])
        let empty = engine.parallelize([(Int, Int)](), numSlices: 3)
        #expect(try empty.reduceByKey(+).collect().isEmpty)
        #expect(try empty.groupByKey().count() == 0)
        #expect(try empty.join(empty).count() == 0)
        #expect(try engine.emptyRDD(of: (Int, Int).self).reduceByKey(+).collect().isEmpty)
    }

    @Test func repartitionSpreadsElementsEvenlyAndCoalesceMergesNeighbours() throws {
        var g = SeededGenerator(seed: 5)
        for _ in 0..<15 {
            let xs = (0..<Int.random(in: 0...5_000, using: &g)).map { _ in Int.random(in: 0...1_000_000, using: &g) }
            let slices = Int.random(in: 1...8, using: &g)
            let n = Int.random(in: 1...10, using: &g)
            // A skewed input: every element in the first partition.
            let skewed = engine.parallelize(xs, numSlices: slices).filter { _ in TaskContext.partitionId == 0 }
            let expected = try skewed.collect()
            let spread = skewed.repartition(n)
            #expect(spread.numPartitions == n)
            let sizes = try spread.glom().collect().map(\.count)
            #expect(sizes.reduce(0, +) == expected.count)
            #expect((sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1, "round-robin from one partition: sizes \(sizes)")
            #expect(try spread.collect().sorted() == expected.sorted())
        }
        let rdd = engine.parallelize(Array(0..<10), numSlices: 5)
        #expect(try rdd.coalesce(2).glom().collect() == [[0, 1, 2, 3], [4, 5, 6, 7, 8, 9]])
        #expect(rdd.coalesce(9).numPartitions == 5)
    }

    @Test func aThrowingClosureInAMapStageFailsTheJobAndALaterJobRetries() throws {
        let fail = Mutex(true)
        let rdd = engine.parallelize(Array(0..<1_000), numSlices: 4).map { x -> (Int, Int) in
            if x == 777, fail.withLock({ $0 }) { throw Boom(value: x) }
            return (x % 3, 1)
        }.reduceByKey(+)
        #expect(throws: Boom(value: 777)) { try rdd.collect() }
        fail.withLock { $0 = false }
        #expect(try sortedPairs(rdd.collect()) == [Pair(0, 334), Pair(1, 333), Pair(2, 333)])
        #expect(throws: Boom(value: 1)) {
            try engine.parallelize([(1, 1), (1, 2)]).reduceByKey { _, _ in throw Boom(value: 1) }.collect()
        }
    }

    @Test func theMapSideRunsOnceForEveryActionOnTheShuffledRDD() throws {
        let calls = Mutex(0)
        let sums = engine.parallelize(Array(0..<100), numSlices: 4).map { x -> (Int, Int) in
            calls.withLock { $0 += 1 }
            return (x % 5, x)
        }.reduceByKey(+)
        #expect(try sums.count() == 5)
        #expect(try sortedPairs(sums.collect()).map(\.value) == [950, 970, 990, 1010, 1030])
        #expect(try sums.take(2).count == 2)
        #expect(calls.withLock { $0 } == 100, "the shuffle output is reused, as Spark reuses its shuffle files")
    }

    @Test(arguments: [1, 2])
    func shufflesInsideTasksRunAsNestedJobs(workers: Int) throws {
        // The guide's foreachRDD/foreachPartition pattern, with a shuffle inside each task (local[1] included).
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: workers))
        let data = engine.parallelize((0..<300).map { ($0 % 7, 1) }, numSlices: 3)
        let totals = Mutex<[Int: Int]>([:])
        try engine.parallelize(Array(0..<4), numSlices: 4).foreachPartition { part in
            let counts = try data.reduceByKey(+).collectAsMap()
            totals.withLock { $0[TaskContext.partitionId] = counts.values.reduce(0, +) }
            #expect(part.count == 1)
        }
        #expect(totals.withLock { $0 } == [0: 300, 1: 300, 2: 300, 3: 300])
    }

    @Test func aFewLargePartitionsAreSplitOverEveryWorkerWithTheSameResult() throws {
        // Slices cover a partition exactly once, in order.
        for count in 1...9 {
            for n in [0, 1, 7, 1_000] {
                let ranges = (0..<count).map { PartitionSlice(index: $0, count: count).range(of: n) }
                #expect(ranges.flatMap { Array($0) } == Array(0..<n), "\(count) slices of \(n)")
            }
        }
        // Three partitions on two workers: the map side runs 18 slices (every worker busy till the end), and the
        // result is the plain computation's; a map-side chain after the source (filter, flatMap) is sliced too.
        let pairs = (0..<30_001).map { ($0 % 97, $0) }
        let reference = referenceGroups(pairs.filter { $0.1 % 3 != 0 }).mapValues { $0.reduce(0, +) }
        let rdd = engine.parallelize(pairs, numSlices: 3).filter { $0.1 % 3 != 0 }.flatMap { [$0] }
        #expect(rdd.isSliceable)
        let stage = ShuffleStage<IntKeys, Int>(
            engine: engine, partitioner: HashPartitioner(numPartitions: 2), inputs: [], mergeCombiners: { $0 += $1 },
            traits: CombinerTraits(codec: { _ in nil }))
        #expect(stage.slicesPerPartition(3) == 6 && stage.slicesPerPartition(1) == 16)
        #expect(stage.slicesPerPartition(8) == 2 && stage.slicesPerPartition(16) == 1)
        let seen = Mutex<Set<Int>>([])
        let sums = try rdd.map { pair in
            seen.withLock { _ = $0.insert(TaskContext.partitionId) }
            return pair
        }.reduceByKey(+, numPartitions: 4).collectAsMap()
        #expect(sums == reference)
        #expect(seen.withLock { $0 } == [0, 1, 2], "slices report their partition's id")
        // What cannot take a slice (a whole-partition operator) is not split.
        #expect(!engine.parallelize(pairs, numSlices: 3).mapPartitions { $0.elements }.isSliceable)
    }
}
