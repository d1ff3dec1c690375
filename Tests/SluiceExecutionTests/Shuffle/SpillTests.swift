import Glibc
import Synchronization
import Testing
import SluiceColumnar
import SluiceTesting
@testable import SluiceExecution

/// A key with no block encoding.
struct Opaque: Hashable, Sendable {
    let id: Int
}

@Suite struct SpillTests {
    /// Pairs of (key, a 24-byte string): about 2.5 MB as Swift values per 60,000 pairs.
    static func records(_ n: Int, keys: Int) -> [(Int, String)] {
        var g = SeededGenerator(seed: UInt64(n))
        return (0..<n).map { i in (Int.random(in: 0..<keys, using: &g), "record-\(i)-padding-xxxxxxx") }
    }

    @Test func aJobWithFourTimesTheMemoryBudgetOfShuffledAndCachedDataGivesTheUnlimitedResult() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let input = Self.records(120_000, keys: 20_000)
        let pool = try WorkStealingPool(workers: 2)
        func run(_ engine: ExecutionEngine) throws -> [Int: [String]] {
            let cached = engine.parallelize(input, numSlices: 12).persist(.memoryAndDiskSer)
            _ = try cached.count()
            let grouped = try cached.groupByKey(numPartitions: 6).mapValues { $0.sorted() }.collectAsMap()
            let joined = try cached.join(cached.mapValues { $0.count }).count()
            #expect(joined == referenceGroups(input).values.reduce(0) { $0 + $1.count * $1.count })
            return grouped
        }
        let unlimited = try run(ExecutionEngine(pool: pool, spillDirectory: directory.path))
        #expect(unlimited == referenceGroups(input).mapValues { $0.sorted() })

        let budget = MemoryBudget(limit: 1 << 20)
        var engine: ExecutionEngine? = ExecutionEngine(pool: pool, memory: budget, spillDirectory: directory.path)
        let limited = try run(engine!)
        #expect(limited == unlimited)
        let stats = engine!.spillStatistics
        #expect(stats.bytesSpilled > 4 * budget.limit, "spilled \(stats.bytesSpilled) bytes")
        #expect(stats.bytesReadBack >= stats.bytesSpilled, "every spilled byte was read back")
        #expect(stats.liveFiles == 0, "the RDDs are gone, and so are their spill files")
        #expect(budget.reservedBytes == 0)
        engine = nil
        #expect(directory.files.isEmpty, "no spill file is left behind: \(directory.files)")
    }

    @Test func reduceSideRunsMergeExternally() throws {
        // Few map partitions, many distinct keys in one reduce partition: the reduce side must spill sorted runs.
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let pool = try WorkStealingPool(workers: 2)
        let words = (0..<150_000).map { "key-\($0 % 50_000)-with-some-length" }
        let unlimited = try ExecutionEngine(pool: pool).parallelize(words, numSlices: 3).map { ($0, 1) }
            .reduceByKey(+, numPartitions: 1).collectAsMap()
        let engine = ExecutionEngine(pool: pool, memory: MemoryBudget(limit: 600_000), spillDirectory: directory.path)
        let counts = engine.parallelize(words, numSlices: 3).map { ($0, 1) }.reduceByKey(+, numPartitions: 1)
        #expect(try counts.collectAsMap() == unlimited)
        #expect(unlimited.count == 50_000 && unlimited.values.allSatisfy { $0 == 3 })
        #expect(engine.spillStatistics.filesWritten > 2)
        #expect(engine.spillStatistics.liveFiles > 0, "the map output stays while its RDD does")
        _ = consume counts
        #expect(engine.spillStatistics.liveFiles == 0)
    }

    @Test func aShuffleThatCannotSpillSaysWhy() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = ExecutionEngine(
            pool: try WorkStealingPool(workers: 2), memory: MemoryBudget(limit: 64 << 10), spillDirectory: directory.path)
        let pairs = (0..<200_000).map { (Opaque(id: $0), $0) }
        let error = #expect(throws: StorageError.self) {
            try engine.parallelize(pairs, numSlices: 2).groupByKey().count()
        }
        #expect(error?.code == .notSerializable)
        #expect(error?.message.contains("Opaque") == true, "\(String(describing: error))")
        #expect(error?.message.contains("sluice.memory.limit") == true)
    }

    @Test func aFullDiskFailsTheJobWithAClearErrorAndKeepsWhatWasStored() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let faults = FaultySystemCalls()
        let engine = ExecutionEngine(
            pool: try WorkStealingPool(workers: 1), spillDirectory: directory.path, calls: faults.calls)
        let input = Self.records(40_000, keys: 100)
        let onDisk = engine.parallelize(input, numSlices: 8).persist(.diskOnly)
        _ = try onDisk.runJob(partitions: [0, 1, 2]) { _, drive in try drive { _ in } }
        #expect(Set(onDisk.cachedPlacement.keys) == [0, 1, 2])
        faults.diskFull(after: faults.bytesWritten + 10_000)
        let error = #expect(throws: StorageError.self) { try onDisk.count() }
        #expect(error?.isNoSpace == true)
        #expect(error?.code == .writeFailed)
        #expect(error.map { "\($0)".contains(directory.path) && "\($0)".contains("No space left") } == true,
            "\(String(describing: error))")
        // Partitions stored before the disk filled are still there and read back intact.
        let stored = try onDisk.runJob(partitions: [0, 1, 2]) { _, drive in
            var rows: [String] = []
            try drive { rows.append(contentsOf: $0.map(\.1)) }
            return rows
        }.flatMap { $0 }
        #expect(stored == Array(input[0..<15_000].map(\.1)))
        #expect(engine.spill.liveFiles.count == onDisk.cachedPlacement.filter { $0.value == .disk }.count,
            "no half-written file is left")
    }

    /// The same on a real filesystem that fills (a 256 KB tmpfs under the spill directory): the job fails
    /// naming the spill directory and the cause, leaves no half-written file, and the same job succeeds with the
    /// same result once space frees (the mount grown).
    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root (CI runs as root)"))
    func aSpillDirectoryOnAFilesystemThatFillsFailsTheJobAndTheJobRunsOnceSpaceFrees() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-spill-tmpfs")
        defer { directory.remove() }
        try mountTmpfs(at: directory.path, "size=256k")
        defer { unmountTmpfs(at: directory.path) }
        let engine = ExecutionEngine(
            pool: try WorkStealingPool(workers: 2), memory: MemoryBudget(limit: 64 << 10),
            spillDirectory: directory.path)
        let input = Self.records(60_000, keys: 20_000)
        let expected = Dictionary(grouping: input, by: \.0).mapValues(\.count)
        let grouped = engine.parallelize(input, numSlices: 4).groupByKey().mapValues(\.count)
        let error = #expect(throws: StorageError.self) { try grouped.collect() }
        #expect(error?.isNoSpace == true, "\(String(describing: error))")
        #expect(error.map { "\($0)".contains(directory.path) && "\($0)".contains("No space left") } == true,
            "\(String(describing: error))")
        #expect(engine.spill.liveFiles.isEmpty, "no half-written file is left")
        try mountTmpfs(at: directory.path, "remount,size=64m")
        let counts = try grouped.collect()
        #expect(Dictionary(uniqueKeysWithValues: counts) == expected)
        #expect(engine.spillStatistics.filesWritten > 0, "the second run spilled too")
    }

    @Test func anUnwritableSpillDirectoryIsAClearError() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = "\(directory.path)/plain-file"
        let fd = open(file, O_CREAT | O_WRONLY, 0o644)
        close(fd)
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 1), spillDirectory: "\(file)/spill")
        let error = #expect(throws: StorageError.self) {
            try engine.parallelize(Array(0..<100)).persist(.diskOnly).count()
        }
        #expect(error?.code == .writeFailed)
        #expect(error.map { "\($0)".contains("sluice.spill.dir") && "\($0)".contains("plain-file") } == true,
            "\(String(describing: error))")
    }

    @Test func aCorruptSpillFileIsAnErrorNamingTheFileAndOffset() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 1), spillDirectory: directory.path)
        let rdd = engine.parallelize((0..<20_000).map { "value \($0)" }, numSlices: 1).persist(.diskOnly)
        #expect(try rdd.count() == 20_000)
        let files = engine.spill.liveFiles
        #expect(files.count == 1)
        // Flip one byte in the middle of the file.
        let fd = open(files[0], O_RDWR)
        var byte: UInt8 = 0
        let middle = off_t(lseek(fd, 0, SEEK_END) / 2)
        pread(fd, &byte, 1, middle)
        byte ^= 0x40
        pwrite(fd, &byte, 1, middle)
        close(fd)
        let error = #expect(throws: StorageError.self) { try rdd.collect() }
        #expect(error?.code == .readFailed)
        #expect(error.map { "\($0)".contains(files[0]) && "\($0)".contains("byte") } == true, "\(String(describing: error))")
        #expect(error?.underlying is FormatError)
    }
}
