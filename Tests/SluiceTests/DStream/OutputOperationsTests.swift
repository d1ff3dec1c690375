import Glibc
import Synchronization
import Testing
@testable import Sluice
import SluiceColumnar
import SluiceTesting

struct Unencodable: Sendable {
    let value: Int
}

@Suite struct OutputOperationsTests {
    let conf = StreamingConf().setMaster("local[2]").set("spark.default.parallelism", "2")

    /// Runs `batches` through `program` on a manual clock and returns what `print` wrote.
    func printed(_ batches: [[(String, Int)]], _ program: (DStream<(String, Int)>) -> Void) throws -> [String] {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            let lines = Mutex<[String]>([])
            ssc.console.withLock { $0 = { batch in lines.withLock { $0.append(contentsOf: batch) } } }
            program(ssc.sequenceStream(batches))
            try ssc.start()
            let last = Time(milliseconds: Int64(batches.count) * 1_000)
            clock.set(to: last)
            #expect(ssc.waitUntilBatchHandled(last, timeout: .seconds(30)))
            ssc.stop()
            return lines.withLock { $0 }
        }
    }

    @Test func printWritesSparksFormat() throws {
        let lines = try printed([[("hello", 1), ("world", 2)], (0..<12).map { ("w\($0)", $0) }, []]) { $0.print() }
        let bar = "-------------------------------------------"
        #expect(lines == [
            bar, "Time: 1000 ms", bar, "(hello,1)", "(world,2)", "",
            bar, "Time: 2000 ms", bar] + (0..<10).map { "(w\($0),\($0))" } + ["...", "",
            bar, "Time: 3000 ms", bar, "",
        ])
        let three = try printed([(0..<3).map { ("k", $0) }]) { $0.map { ($0.0, Optional($0.1), [$0.1]) }.print(2) }
        #expect(three == [bar, "Time: 1000 ms", bar, "(k,Some(0),[0])", "(k,Some(1),[1])", "...", ""])
    }

    @Test func saveAsTextFilesWritesOneCompleteDirectoryPerBatch() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let prefix = "\(directory.path)/out/counts"
        _ = try StreamTest.run(input: [[("a", 1), ("b", 2), ("c", 3)], [], nil, [("d", 4)]]) { stream in
            stream.saveAsTextFiles(prefix: prefix)
            stream.saveAsTextFiles(prefix: prefix, suffix: "txt")
            return stream
        }
        #expect(directory.files == [
            "\(prefix)-1000.txt/_SUCCESS", "\(prefix)-1000.txt/part-00000", "\(prefix)-1000.txt/part-00001",
            "\(prefix)-1000/_SUCCESS", "\(prefix)-1000/part-00000", "\(prefix)-1000/part-00001",
            "\(prefix)-2000.txt/_SUCCESS", "\(prefix)-2000.txt/part-00000", "\(prefix)-2000.txt/part-00001",
            "\(prefix)-2000/_SUCCESS", "\(prefix)-2000/part-00000", "\(prefix)-2000/part-00001",
            "\(prefix)-4000.txt/_SUCCESS", "\(prefix)-4000.txt/part-00000", "\(prefix)-4000.txt/part-00001",
            "\(prefix)-4000/_SUCCESS", "\(prefix)-4000/part-00000", "\(prefix)-4000/part-00001",
        ], "no directory for the batch with no RDD, no temporary left")
        #expect(try contents("\(prefix)-1000/part-00000") == "(a,1)\n")
        #expect(try contents("\(prefix)-1000/part-00001") == "(b,2)\n(c,3)\n")
        #expect(try contents("\(prefix)-2000/part-00001") == "")
        #expect(try contents("\(prefix)-4000/_SUCCESS") == "")
    }

    @Test func savingTheSameBatchAgainLeavesExactlyOneCompleteCopy() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let engine = try ExecutionEngine(master: "local[2]")
        let path = "\(directory.path)/batch-1000"
        try engine.parallelize(["x", "y", "z"], numSlices: 3).saveAsTextFile(path)
        try engine.parallelize(["x2", "y2"], numSlices: 2).saveAsTextFile(path)
        #expect(directory.files == ["\(path)/_SUCCESS", "\(path)/part-00000", "\(path)/part-00001"])
        #expect(try contents("\(path)/part-00000") + contents("\(path)/part-00001") == "x2\ny2\n")

        // A program killed while writing the batch left its temporary and replaced directories behind; the
        // batch run again after recovery leaves only its own complete copy (and other batches alone).
        for leftover in ["\(path).sluice-temporary-1a2b", "\(path).sluice-replaced-3c4d", "\(directory.path)/batch-10000"] {
            mkdir(leftover, 0o755)
            close(open("\(leftover)/part-00000", O_WRONLY | O_CREAT, 0o644))
        }
        try engine.parallelize(["x3"], numSlices: 1).saveAsTextFile(path)
        #expect(directory.files == ["\(path)/_SUCCESS", "\(path)/part-00000", "\(directory.path)/batch-10000/part-00000"])
        #expect(try contents("\(path)/part-00000") == "x3\n")
    }

    @Test func aRestartedStreamRemovesTemporariesOfBatchesItNeverWritesAgain() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let prefix = "\(directory.path)/out"
        // What a killed earlier process left: the temporary of a batch that this run does not write again, and
        // a complete batch directory (kept).
        let stale = "\(prefix)-500000.sluice-temporary-77ab"
        for made in [stale, "\(prefix)-400000"] {
            mkdir(made, 0o755)
            close(open("\(made)/part-00000", O_WRONLY | O_CREAT, 0o644))
        }
        _ = try StreamTest.run(input: [["a"]]) { stream in
            stream.saveAsTextFiles(prefix: prefix)
            return stream
        }
        #expect(!directory.files.contains { $0.hasPrefix(stale) }, "the stale temporary is gone")
        #expect(directory.files.contains("\(prefix)-400000/part-00000"), "a complete batch directory stays")
        #expect(directory.files.contains("\(prefix)-1000/_SUCCESS"))
    }

    @Test func saveAsObjectFilesWritesBlocksThatReadBack() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let prefix = "\(directory.path)/objects"
        let batches: [[(String, Int)]?] = [(0..<5_000).map { ("k\($0 % 7)", $0) }, [("only", -1)]]
        _ = try StreamTest.run(input: batches) { stream in
            stream.saveAsObjectFiles(prefix: prefix, suffix: "slc")
            return stream
        }
        let engine = try ExecutionEngine(master: "local[2]")
        let codec = ElementCodecs.tuple(String.self, Int.self)
        let first = try engine.objectFile("\(prefix)-1000.slc", codec: codec).collect()
        #expect(first.map(\.0) == batches[0]!.map(\.0) && first.map(\.1) == batches[0]!.map(\.1))
        let second = try engine.objectFile("\(prefix)-2000.slc", codec: codec)
        #expect(second.numPartitions == 2)
        #expect(try second.collect().map(\.1) == [-1])
        let missing = #expect(throws: StorageError.self) { try engine.objectFile("\(prefix)-3000.slc", codec: codec) }
        #expect(missing?.code == .readFailed)
    }

    @Test func objectFilesOfATypeWithNoEncodingFailTheBatchClearly() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let error = #expect(throws: StreamingError.self) {
            _ = try StreamTest.run(input: [[1, 2]]) { stream in
                stream.map(Unencodable.init).saveAsObjectFiles(prefix: "\(directory.path)/objects")
                return stream
            }
        }
        let storage = error?.underlying as? StorageError
        #expect(storage?.code == .notSerializable)
        #expect(storage?.message.contains("Unencodable") == true)
        #expect(directory.files.isEmpty, "nothing half-written is left")
    }

    @Test func aFullDiskDuringSaveLeavesNoPartialDirectory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let faults = FaultySystemCalls()
        faults.diskFull(after: 100)
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 2), calls: faults.calls)
        let error = #expect(throws: StorageError.self) {
            try engine.parallelize((0..<1_000).map { "line \($0)" }, numSlices: 2).saveAsTextFile("\(directory.path)/out")
        }
        #expect(error?.isNoSpace == true)
        #expect(error.map { "\($0)".contains("\(directory.path)/out") } == true)
        #expect(directory.files.isEmpty)
    }

    private func contents(_ path: String) throws -> String {
        guard let text = fileText(path) else { throw StreamingError(.outputFailed, "cannot open \(path)") }
        return text
    }
}
