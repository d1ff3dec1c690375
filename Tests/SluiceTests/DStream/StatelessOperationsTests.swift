import Synchronization
import Testing
import Sluice
import SluiceTesting

@Suite struct StatelessOperationsTests {
    @Test func narrowOperationsMatchAPlainComputationOnRandomBatches() throws {
        for seed in 1...8 as ClosedRange<UInt64> {
            let input = randomBatches(12, seed: seed)
            let present = input.compactMap { $0 }
            #expect(try StreamTest.run(input: input) { $0.map { $0 * 3 } } == present.map { $0.map { $0 * 3 } })
            #expect(try StreamTest.run(input: input) { $0.filter { $0 % 2 == 0 } } == present.map { $0.filter { $0 % 2 == 0 } })
            #expect(try StreamTest.run(input: input) { $0.flatMap { x in x > 0 ? [x, x] : [] } }
                == present.map { $0.flatMap { x in x > 0 ? [x, x] : [] } })
            #expect(try StreamTest.run(input: input) { $0.mapPartitions { [$0.reduce(0, +)] } }
                == present.map { referenceSlices($0, 2).map { $0.reduce(0, +) } })
            #expect(try StreamTest.run(input: input) { $0.glom() } == present.map { referenceSlices($0, 2) })
            let full = randomBatches(12, seed: seed + 100, allowMissing: false)  // count needs every batch's RDD
            #expect(try StreamTest.run(input: full) { $0.count() } == full.map { [$0?.count ?? -1] })
            #expect(try StreamTest.run(input: input) { $0.reduce(+) }
                == present.map { $0.isEmpty ? [] : [$0.reduce(0, +)] })
            let counted = try StreamTest.run(input: input) { $0.countByValue() }
            #expect(counted.map { Dictionary(uniqueKeysWithValues: $0) }
                == present.map { Dictionary($0.map { ($0, 1) }, uniquingKeysWith: +) })
        }
    }

    @Test func operationsThatNeedAnRDDFailTheBatchWhenTheInputHasNone() throws {
        let input: [[Int]?] = [[1, 2, 3], nil, [4]]
        for operation in ["count", "repartition", "transform", "union"] {
            let error = #expect(throws: StreamingError.self) {
                _ = try StreamTest.run(input: input) { (stream: DStream<Int>) -> DStream<Int> in
                    switch operation {
                    case "count": return stream.count()
                    case "repartition": return stream.repartition(3)
                    case "transform": return stream.transform { $0 }
                    default: return stream.union(stream.map { $0 })
                    }
                }
            }
            let text = error.map { "\($0)" } ?? ""
            #expect(text.contains("Couldn't generate RDD from parent") && text.contains("2000 ms"), "\(operation): \(text)")
        }
    }

    @Test func countEmitsZeroForAnEmptyBatchAndRepartitionKeepsElements() throws {
        let input: [[Int]?] = [[1, 2, 3], [], (0..<100).map { $0 }]
        #expect(try StreamTest.run(input: input) { $0.count() } == [[3], [0], [100]])
        let spread = try StreamTest.run(input: input) { $0.repartition(4).glom().map(\.count) }
        #expect(spread.map { $0.count } == [4, 4, 4])
        #expect(spread.map { $0.reduce(0, +) } == [3, 0, 100])
        #expect(spread[2].allSatisfy { (20...30).contains($0) }, "\(spread[2])")
    }

    @Test func unionAndTransformWithCombineTwoStreamsBatchByBatch() throws {
        let a = randomBatches(10, seed: 40, allowMissing: false)
        let b = randomBatches(10, seed: 41, allowMissing: false)
        let expected = zip(a, b).map { $0! + $1! }
        #expect(try StreamTest.run(input: a, b) { $0.union($1) } == expected)
        let sums = try StreamTest.run(input: a, b) { x, y in
            x.transformWith(y) { r1, r2 in r1.union(r2).map { $0 * 10 } }
        }
        #expect(sums == expected.map { $0.map { $0 * 10 } })
        let contextUnion = try StreamTest.run(numBatches: 3) { context in
            let queues = (0..<3).map { _ in RDDQueue<Int>() }
            for i in 0..<3 {
                for (q, queue) in queues.enumerated() { queue.enqueue(context.parallelize([10 * q + i])) }
            }
            return context.union(queues.map { context.queueStream($0) })
        }
        #expect(contextUnion == [[0, 10, 20], [1, 11, 21], [2, 12, 22]])
    }

    @Test func transformSeesTheBatchTimeAndRunsAnyRDDOperation() throws {
        let input: [[Int]?] = [[5, 1, 3], [2, 2]]
        let out = try StreamTest.run(input: input, batchDuration: .milliseconds(500)) { stream in
            stream.transform { rdd, time in
                rdd.map { ($0, 1) }.reduceByKey(+).map { "\(time.milliseconds):\($0.0)x\($0.1)" }
            }
        }
        #expect(out.map { $0.sorted() } == [["500:1x1", "500:3x1", "500:5x1"], ["1000:2x2"]])
        let contextTransform = try StreamTest.run(input: [[1, 2], [3]], [[10], [20, 30]]) { a, b in
            a.context.transform([a, b]) { rdds, _ in rdds[0].union(rdds[1]).filter { $0 > 1 } }
        }
        #expect(contextTransform == [[2, 10], [3, 20, 30]])
    }

    @Test func pairOperationsMatchAPlainComputationOnRandomBatches() throws {
        func groups(_ batch: [(Int, Int)]) -> [Int: [Int]] {
            var g: [Int: [Int]] = [:]
            for (k, v) in batch { g[k, default: []].append(v) }
            return g
        }
        for seed in 10...15 as ClosedRange<UInt64> {
            let input = randomBatches(8, seed: seed).map { $0?.map { ($0 % 5, $0) } }
            let present = input.compactMap { $0 }
            let sums = try StreamTest.run(input: input) { $0.reduceByKey(+) }
            #expect(sums.map(sortedPairs) == present.map { sortedPairs(groups($0).mapValues { $0.reduce(0, +) }.map { ($0.key, $0.value) }) })
            let grouped = try StreamTest.run(input: input) { $0.groupByKey(numPartitions: 3) }
            #expect(grouped.map { Dictionary(uniqueKeysWithValues: $0.map { ($0.0, $0.1.sorted()) }) }
                == present.map { groups($0).mapValues { $0.sorted() } })
            let maxima = try StreamTest.run(input: input) {
                $0.combineByKey(createCombiner: { $0 }, mergeValue: { max($0, $1) }, mergeCombiners: { max($0, $1) })
            }
            #expect(maxima.map(sortedPairs) == present.map { sortedPairs(groups($0).mapValues { $0.max()! }.map { ($0.key, $0.value) }) })
            #expect(try StreamTest.run(input: input) { $0.mapValues { $0 + 1 } }.map(sortedPairs)
                == present.map { sortedPairs($0.map { ($0.0, $0.1 + 1) }) })
            #expect(try StreamTest.run(input: input) { $0.flatMapValues { [$0, -$0] } }.map(sortedPairs)
                == present.map { sortedPairs($0.flatMap { [($0.0, $0.1), ($0.0, -$0.1)] }) })
        }
    }

    @Test func perBatchJoinsMatchAPlainComputation() throws {
        let left: [[(String, Int)]?] = [[("a", 1), ("b", 2), ("a", 3)], [("c", 4)], []]
        let right: [[(String, String)]?] = [[("a", "x"), ("d", "y")], [("c", "z"), ("c", "w")], [("e", "v")]]
        let inner = try StreamTest.run(input: left, right) { $0.join($1) }
        #expect(inner.map { $0.map { "\($0.0)\($0.1.0)\($0.1.1)" }.sorted() } == [["a1x", "a3x"], ["c4w", "c4z"], []])
        let leftOuter = try StreamTest.run(input: left, right) { $0.leftOuterJoin($1) }
        #expect(leftOuter.map { $0.map { "\($0.0)\($0.1.0)\($0.1.1 ?? "-")" }.sorted() }
            == [["a1x", "a3x", "b2-"], ["c4w", "c4z"], []])
        let rightOuter = try StreamTest.run(input: left, right) { $0.rightOuterJoin($1) }
        #expect(rightOuter.map { $0.map { "\($0.0)\($0.1.0.map(String.init) ?? "-")\($0.1.1)" }.sorted() }
            == [["a1x", "a3x", "d-y"], ["c4w", "c4z"], ["e-v"]])
        let fullOuter = try StreamTest.run(input: left, right) { $0.fullOuterJoin($1) }
        #expect(fullOuter.map { $0.map { "\($0.0)\($0.1.0.map(String.init) ?? "-")\($0.1.1 ?? "-")" }.sorted() }
            == [["a1x", "a3x", "b2-", "d-y"], ["c4w", "c4z"], ["e-v"]])
        let cogrouped = try StreamTest.run(input: left, right) { $0.cogroup($1) }
        #expect(cogrouped.map { $0.map { "\($0.0):\($0.1.0.sorted()):\($0.1.1.sorted())" }.sorted() }
            == [["a:[1, 3]:[\"x\"]", "b:[2]:[]", "d:[]:[\"y\"]"], ["c:[4]:[\"w\", \"z\"]"], ["e:[]:[\"v\"]"]])
    }

    @Test func theGuidesQuickExampleOverAQueueStream() throws {
        // NetworkWordCount, with a queue of RDDs in place of the socket.
        let batches = [["hello world", "hello"], ["sluice is spark streaming in swift"], []]
        let queue = RDDQueue<String>()
        let out = try StreamTest.run(numBatches: 3, beforeBatch: { i, ssc in
            queue.enqueue(ssc.parallelize(batches[i]))
        }) { ssc in
            let lines = ssc.queueStream(queue)
            let words = lines.flatMap { $0.split(separator: " ").map(String.init) }
            let wordCounts = words.map { ($0, 1) }.reduceByKey(+)
            return wordCounts
        }
        #expect(out.map { Dictionary(uniqueKeysWithValues: $0) }
            == [["hello": 2, "world": 1], ["sluice": 1, "is": 1, "spark": 1, "streaming": 1, "in": 1, "swift": 1], [:]])
    }

    @Test func theGuidesTransformJoinWithAStaticDataset() throws {
        // The guide's data cleaning example: join every batch with spam information, then filter.
        let queue = RDDQueue<(String, Int)>()
        let batches = [[("ads.example", 3), ("news.example", 1)], [("news.example", 2), ("blog.example", 5)]]
        let out = try StreamTest.run(numBatches: 2, beforeBatch: { i, ssc in
            queue.enqueue(ssc.parallelize(batches[i]))
        }) { ssc in
            let spamInfoRDD = ssc.parallelize([("ads.example", true)])
            let wordCounts = ssc.queueStream(queue)
            return wordCounts.transform { rdd in
                rdd.leftOuterJoin(spamInfoRDD).filter { !($0.1.1 ?? false) }.mapValues { $0.0 }
            }
        }
        #expect(out.map(sortedPairs) == [[Pair("news.example", 1)], [Pair("blog.example", 5), Pair("news.example", 2)]])
    }

    @Test func queueStreamTakesOneRDDPerBatchOrAllAndFallsBackToTheDefault() throws {
        let oneAtATime = try StreamTest.run(numBatches: 4) { ssc in
            let queue = RDDQueue<Int>()
            for i in 0..<2 { queue.enqueue(ssc.parallelize([i])) }
            return ssc.queueStream(queue, defaultRDD: ssc.parallelize([-1]))
        }
        #expect(oneAtATime == [[0], [1], [-1], [-1]])
        let all = try StreamTest.run(numBatches: 2) { ssc in
            let queue = RDDQueue<Int>()
            for i in 0..<3 { queue.enqueue(ssc.parallelize([i])) }
            return ssc.queueStream(queue, oneAtATime: false)
        }
        #expect(all == [[0, 1, 2], []])
    }

    @Test func aThrowingClosureFailsTheRunWithItsError() throws {
        let error = #expect(throws: StreamingError.self) {
            _ = try StreamTest.run(input: [[1], [2], [3]]) { s in
                s.map { x -> Int in
                    if x == 2 { throw Boom(value: x) }
                    return x
                }
            }
        }
        #expect(error?.underlying as? Boom == Boom(value: 2))
        #expect(error.map { "\($0)".contains("2000 ms") } == true)
    }
}
