import Synchronization
import Testing
import SluiceColumnar
import SluiceTesting
@testable import SluiceExecution

struct Unstorable: Sendable, Equatable {
    let value: Int
}

/// A value whose decoding (its `Decodable` initializer) is counted: what tells a cache read from a cache counted.
/// Only `countOfACachedRDDReadsNoElementItHoldsInMemory` uses it.
struct DecodeCounted: Codable, Sendable, Equatable {
    static let decoded = Atomic(0)
    let value: Int

    init(_ value: Int) { self.value = value }

    init(from decoder: any Decoder) throws {
        DecodeCounted.decoded.add(1, ordering: .relaxed)
        value = try decoder.singleValueContainer().decode(Int.self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

@Suite struct PersistTests {
    static let levels: [StorageLevel] = [
        .memoryOnly, .memoryOnly2, .memoryOnlySer, .memoryOnlySer2, .memoryAndDisk, .memoryAndDisk2,
        .memoryAndDiskSer, .memoryAndDiskSer2, .diskOnly, .diskOnly2,
    ]

    @Test(arguments: levels)
    func everyLevelCachesAndAvoidsRecomputation(level: StorageLevel) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 2), spillDirectory: directory.path)
        let computed = Mutex(0)
        let pairs = engine.parallelize(Array(0..<5_000), numSlices: 4).map { x -> (String, Int) in
            computed.withLock { $0 += 1 }
            return ("k\(x % 37)", x)
        }.persist(level)
        #expect(pairs.storageLevel == level)
        let first = try pairs.collect()
        let second = try pairs.collect()
        #expect(first.map(\.1) == Array(0..<5_000))
        #expect(second.map(\.0) == first.map(\.0) && second.map(\.1) == first.map(\.1))
        #expect(try pairs.reduceByKey(+).count() == 37)
        #expect(computed.withLock { $0 } == 5_000, "computed once, then read from the cache")
        let expected: CachedPlacement = !level.useMemory ? .disk : (level.deserialized ? .memory : .memorySerialized)
        #expect(pairs.cachedPlacement == [0: expected, 1: expected, 2: expected, 3: expected])
        pairs.unpersist()
        #expect(pairs.cachedPlacement.isEmpty)
        #expect(engine.spill.liveFiles.isEmpty)
        #expect(engine.memory.reservedBytes == 0, "\(engine.memory.report().byConsumer)")
        _ = try pairs.count()
        #expect(computed.withLock { $0 } == 10_000, "after unpersist it is computed again")
    }

    /// `count()` of a persisted RDD takes the sizes of the partitions cached in memory (values, or blocks' row
    /// counts) without reading an element; a partition on disk is read back, an operator after the cache runs on
    /// every element, and after `unpersist()` the count computes again.
    @Test func countOfACachedRDDReadsNoElementItHoldsInMemory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 2), spillDirectory: directory.path)
        let n = 6_001
        // One level after another: the decode counter is one for the whole test.
        for level in [StorageLevel.memoryOnly, .memoryOnlySer, .memoryAndDiskSer, .diskOnly] {
            let computed = Mutex(0)
            let rdd = engine.parallelize(Array(0..<n), numSlices: 4).map { x -> DecodeCounted in
                computed.withLock { $0 += 1 }
                return DecodeCounted(x)
            }.persist(level)
            #expect(try rdd.count() == n, "\(level)")
            #expect(computed.withLock { $0 } == n, "\(level): computed once, by the first count")
            DecodeCounted.decoded.store(0, ordering: .relaxed)

            #expect(try rdd.count() == n, "\(level)")
            #expect(try rdd.countAsRDD().collect() == [n], "\(level)")
            let read = level.useMemory ? 0 : 2 * n
            #expect(DecodeCounted.decoded.load(ordering: .relaxed) == read, "\(level): on disk it is read back")
            #expect(try rdd.filter { $0.value % 3 == 0 }.count() == (n + 2) / 3, "\(level)")
            #expect(try rdd.collect() == (0..<n).map(DecodeCounted.init), "\(level)")
            let serialized = !level.deserialized
            #expect(
                DecodeCounted.decoded.load(ordering: .relaxed) == read + (serialized ? 2 * n : 0),
                "\(level): the filter and the collect read every element")
            #expect(computed.withLock { $0 } == n, "\(level): every count read the cache")

            rdd.unpersist()
            #expect(try rdd.count() == n, "\(level)")
            #expect(computed.withLock { $0 } == 2 * n, "\(level): after unpersist the count computes again")
            rdd.unpersist()
        }
    }

    @Test func memoryOnlyPartitionsThatDoNotFitAreRecomputed() throws {
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 1), memory: MemoryBudget(limit: 100_000))
        let computed = Mutex(0)
        let rdd = engine.parallelize(Array(0..<40_000), numSlices: 8).map { x -> Int in
            computed.withLock { $0 += 1 }
            return x
        }.persist(.memoryOnly)
        #expect(try rdd.count() == 40_000)
        let cached = rdd.cachedPlacement.count
        #expect(cached > 0 && cached < 8, "some partitions fit the budget (each is 40 kB), not all")
        #expect(try rdd.count() == 40_000)
        #expect(computed.withLock { $0 } == 40_000 + (8 - cached) * 5_000, "counted again: the rest recomputed")
        #expect(try rdd.collect() == Array(0..<40_000))
        #expect(computed.withLock { $0 } == 40_000 + 2 * (8 - cached) * 5_000)
        #expect(engine.memory.reservedBytes <= 100_000)
    }

    @Test func memoryAndDiskSendsWhatDoesNotFitToDisk() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = ExecutionEngine(
            pool: try WorkStealingPool(workers: 2), memory: MemoryBudget(limit: 100_000), spillDirectory: directory.path)
        let rdd = engine.parallelize(Array(0..<40_000), numSlices: 8).persist(.memoryAndDisk)
        #expect(try rdd.count() == 40_000)
        let placement = rdd.cachedPlacement
        #expect(placement.count == 8)
        #expect(placement.values.contains(.memory) && placement.values.contains(.disk))
        #expect(try rdd.collect() == Array(0..<40_000))
        #expect(engine.spill.liveFiles.count == placement.values.filter { $0 == .disk }.count)
    }

    @Test func leastRecentlyUsedPartitionsOfAnotherRDDAreEvicted() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Room for one such RDD, not two. Its size is measured first: an array's capacity, and so the estimate,
        // depends on the allocator (jemalloc, or the system's in sanitizer builds).
        let probe = ExecutionEngine(pool: try WorkStealingPool(workers: 1))
        let measured = probe.parallelize(Array(0..<20_000), numSlices: 4).persist(.memoryAndDisk)
        _ = try measured.count()
        let oneRDD = withExtendedLifetime(measured) { probe.memory.reservedBytes }
        #expect(oneRDD > 0)
        let engine = ExecutionEngine(
            pool: try WorkStealingPool(workers: 1), memory: MemoryBudget(limit: oneRDD * 3 / 2),
            spillDirectory: directory.path)
        let first = engine.parallelize(Array(0..<20_000), numSlices: 4).persist(.memoryAndDisk)
        #expect(try first.count() == 20_000)
        #expect(first.cachedPlacement.values.allSatisfy { $0 == .memory })
        let second = engine.parallelize(Array(0..<20_000), numSlices: 4).persist(.memoryOnly)
        #expect(try second.count() == 20_000)
        #expect(second.cachedPlacement.values.allSatisfy { $0 == .memory }, "room was made for it")
        #expect(first.cachedPlacement.values.contains(.disk), "the older RDD went to disk, not lost")
        #expect(try first.collect() == Array(0..<20_000))
    }

    @Test func tuplesAreStoredSerializedThroughTheirComponents() throws {
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 2))
        let rows = (0..<1_000).map { (key: "k\($0)", count: $0, ratio: Double($0) / 7, flag: $0 % 2 == 0 ? Int?.none : $0) }
        let cached = engine.parallelize(rows, numSlices: 3).persist(.memoryOnlySer)
        _ = try cached.count()
        #expect(cached.cachedPlacement.values.allSatisfy { $0 == .memorySerialized })
        let back = try cached.collect()
        #expect(back.map(\.key) == rows.map(\.key))
        #expect(back.map(\.count) == rows.map(\.count))
        #expect(back.map(\.ratio) == rows.map(\.ratio))
        #expect(back.map(\.flag) == rows.map(\.flag))
    }

    @Test func elementsWithNoEncodingStayValuesInMemoryAndCannotGoToDisk() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 1), spillDirectory: directory.path)
        let values = engine.parallelize((0..<10).map(Unstorable.init), numSlices: 2)
        let ser = values.persist(.memoryOnlySer)
        #expect(try ser.collect() == (0..<10).map(Unstorable.init))
        #expect(ser.cachedPlacement.values.allSatisfy { $0 == .memory }, "kept as values: it has no encoding")
        let error = #expect(throws: StorageError.self) { try values.persist(.diskOnly).count() }
        #expect(error?.code == .notSerializable)
        #expect(error?.message.contains("Unstorable") == true)
        #expect(error?.message.contains("DISK_ONLY") == true)
    }

    @Test func storageLevelsHaveSparksNames() {
        #expect("\(StorageLevel.memoryAndDiskSer2)" == "MEMORY_AND_DISK_SER_2")
        #expect("\(StorageLevel.memoryOnly)" == "MEMORY_ONLY")
        #expect("\(StorageLevel.diskOnly)" == "DISK_ONLY")
        #expect("\(StorageLevel.none)" == "NONE")
        #expect(StorageLevel.memoryOnlySer2.replication == 2)
    }

    @Test func persistingNoneChangesNothing() throws {
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 1))
        let rdd = engine.parallelize([1, 2, 3]).persist(.none)
        #expect(rdd.storageLevel == .none)
        #expect(try rdd.collect() == [1, 2, 3])
        #expect(rdd.cachedPlacement.isEmpty)
    }
}
