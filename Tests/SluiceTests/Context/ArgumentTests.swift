import SluiceTesting
import Testing

@testable import Sluice

/// A partition count below 1 is refused with one rule everywhere: a ``StreamingError`` (`invalidArgument`)
/// naming the operation and the value. Before, `updateStateByKey`, `mapWithState` and
/// `reduceByKeyAndWindow(..., inverse:)` trapped in `HashPartitioner`'s precondition, and the other keyed
/// operations clamped the value to 1 without a word.
@Suite struct ArgumentTests {
    let conf = StreamingConf().setMaster("local[2]").set("spark.default.parallelism", "2")

    typealias Pairs = DStream<(String, Int)>

    static let operations: [(String, @Sendable (Pairs, Int) -> DStream<String>)] = [
        ("reduceByKey", { s, n in s.reduceByKey(+, numPartitions: n).map(\.0) }),
        ("groupByKey", { s, n in s.groupByKey(numPartitions: n).map(\.0) }),
        ("combineByKey", { s, n in
            s.combineByKey(createCombiner: { $0 }, mergeValue: +, mergeCombiners: +, numPartitions: n).map(\.0)
        }),
        ("join", { s, n in s.join(s, numPartitions: n).map(\.0) }),
        ("leftOuterJoin", { s, n in s.leftOuterJoin(s, numPartitions: n).map(\.0) }),
        ("rightOuterJoin", { s, n in s.rightOuterJoin(s, numPartitions: n).map(\.0) }),
        ("fullOuterJoin", { s, n in s.fullOuterJoin(s, numPartitions: n).map(\.0) }),
        ("cogroup", { s, n in s.cogroup(s, numPartitions: n).map(\.0) }),
        ("updateStateByKey", { s, n in
            s.updateStateByKey(numPartitions: n) { (values: [Int], state: Int?) in (state ?? 0) + values.count }.map(\.0)
        }),
        ("mapWithState", { s, n in
            s.mapWithState(StateSpec<String, Int, Int, String>.function { key, _, _ in key }.numPartitions(n))
        }),
        ("reduceByKeyAndWindow", { s, n in
            s.reduceByKeyAndWindow(+, inverse: -, windowDuration: .seconds(2), slideDuration: .seconds(1), numPartitions: n)
                .map(\.0)
        }),
        ("reduceByKeyAndWindow", { s, n in
            s.reduceByKeyAndWindow(+, windowDuration: .seconds(2), numPartitions: n).map(\.0)
        }),
        ("countByValue", { s, n in s.map(\.0).countByValue(numPartitions: n).map(\.0) }),
        ("repartition", { s, n in s.repartition(n).map(\.0) }),
    ]

    /// Below 1, as Spark; over `Int32.max`, more than a hash code can spread keys over.
    @Test(arguments: [0, -3, Int(Int32.max) + 1, Int.max])
    func aPartitionCountOutOfRangeIsRefusedAtStartNamingTheOperation(numPartitions: Int) throws {
        let bound = numPartitions < 1 ? "at least 1" : "at most \(Int32.max)"
        for (name, operation) in Self.operations {
            try StreamTest.exclusively {
                let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: ManualClock())
                let checkpoints = try TemporaryDirectory(prefix: "sluice-args")
                defer { checkpoints.remove() }
                ssc.checkpoint(checkpoints.path)
                operation(ssc.sequenceStream([[("a", 1)]]), numPartitions).foreachRDD { _ in }
                do {
                    try ssc.start()
                    ssc.stop()
                    Issue.record("\(name) with numPartitions \(numPartitions) started")
                } catch let error as StreamingError {
                    #expect(error.code == .invalidArgument, "\(name): \(error)")
                    #expect("\(error)" == "\(name): numPartitions must be \(bound), got \(numPartitions)")
                }
                #expect(ssc.state == .stopped)
            }
        }
    }

    /// The RDD operations cannot throw where they are called: the refusal comes with the first action.
    @Test func rddOperationsRefuseAPartitionCountOutOfRangeAtTheirFirstAction() throws {
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 2), defaultParallelism: 2)
        let pairs = engine.parallelize([("a", 1), ("b", 2)])
        let refused: [(String, RDD<String>)] = [
            ("reduceByKey", pairs.reduceByKey(+, numPartitions: 0).map(\.0)),
            ("groupByKey", pairs.groupByKey(numPartitions: -1).map(\.0)),
            ("combineByKey", pairs.combineByKey(createCombiner: { $0 }, mergeValue: +, mergeCombiners: +, numPartitions: 0).map(\.0)),
            ("partitionBy", pairs.partitionBy(0).map(\.0)),
            ("cogroup", pairs.cogroup(pairs, numPartitions: 0).map(\.0)),
            ("join", pairs.join(pairs, numPartitions: 0).map(\.0)),
            ("repartition", pairs.repartition(0).map(\.0)),
            ("coalesce", pairs.coalesce(-2).map(\.0)),
            ("partitionBy", pairs.partitionBy(Int(Int32.max) + 1).map(\.0)),
            ("reduceByKey", pairs.reduceByKey(+, numPartitions: Int.max).map(\.0)),
            ("repartition", pairs.repartition(Int(Int32.max) + 1).map(\.0)),
        ]
        for (name, rdd) in refused {
            do {
                _ = try rdd.collect()
                Issue.record("\(name) ran with a partition count out of range")
            } catch let error as StreamingError {
                #expect(error.code == .invalidArgument, "\(error)")
                #expect("\(error)".hasPrefix("\(name): numPartitions must be at "), "\(error)")
            }
        }
        #expect(throws: StreamingError.self) { try engine.parallelize([1, 2], numSlices: 0).collect() }
        #expect(try pairs.reduceByKey(+, numPartitions: 1).collect().count == 2, "1 is a valid count")
    }
}
