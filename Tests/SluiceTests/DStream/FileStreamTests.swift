import Glibc
import Synchronization
import Testing
@testable import Sluice
import SluiceTesting

/// Writes `contents` to `directory/name` atomically (a hidden temporary file, renamed), modified at `at`.
func dropFile(_ directory: String, _ name: String, _ contents: [UInt8], modifiedAt at: Time) throws {
    let temporary = "\(directory)/.\(name).tmp"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    try #require(fd >= 0)
    _ = contents.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    let seconds = Int(at.milliseconds / 1_000), nanos = Int(at.milliseconds % 1_000) * 1_000_000
    var times = [timespec(tv_sec: seconds, tv_nsec: nanos), timespec(tv_sec: seconds, tv_nsec: nanos)]
    try #require(utimensat(AT_FDCWD, temporary, &times, 0) == 0)
    try #require(rename(temporary, "\(directory)/\(name)") == 0)
}

@Suite struct FileStreamTests {
    @Test func eachNewFileIsTakenOnceByTheBatchAtOrAfterItsModificationTime() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-files")
        defer { directory.remove() }
        mkdir("\(directory.path)/sub", 0o755)
        let out = try StreamTest.run(numBatches: 5, beforeBatch: { i, _ in
            let at = Time(milliseconds: Int64(i) * 1_000 + 500)  // before batch i+1's time
            try dropFile(directory.path, "f\(i).txt", Array("line \(i)a\r\nline \(i)b".utf8), modifiedAt: at)
            try dropFile("\(directory.path)/sub", "ignored\(i).txt", Array("no".utf8), modifiedAt: at)
            if i == 2 {
                try dropFile(directory.path, ".hidden", Array("no".utf8), modifiedAt: at)
                try dropFile(directory.path, "future.txt", Array("later".utf8), modifiedAt: Time(milliseconds: 4_000))
            }
        }) { ssc in ssc.textFileStream(directory.path) }
        #expect(out.map { $0.sorted() } == [
            ["line 0a", "line 0b"], ["line 1a", "line 1b"], ["line 2a", "line 2b"], ["later", "line 3a", "line 3b"],
            ["line 4a", "line 4b"],
        ])
    }

    @Test func filesOlderThanTheRememberWindowOrTheStartAreIgnored() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-files")
        defer { directory.remove() }
        let conf = StreamingConf().set("spark.streaming.fileStream.minRememberDuration", "2s")
        let out = try StreamTest.run(numBatches: 6, conf: conf, beforeBatch: { i, _ in
            if i == 4 {
                // Appears at batch 5 (time 5 s) with a modification time of 1.5 s: outside the 2 s window.
                try dropFile(directory.path, "late.txt", Array("late".utf8), modifiedAt: Time(milliseconds: 1_500))
                try dropFile(directory.path, "recent.txt", Array("recent".utf8), modifiedAt: Time(milliseconds: 3_500))
            }
        }) { ssc in ssc.textFileStream(directory.path) }
        #expect(out == [[], [], [], [], ["recent"], []])
    }

    @Test func anUnreadableFileIsSkippedAndNamedInTheInputInfo() throws {
        try StreamTest.exclusively {
            let directory = try TemporaryDirectory(prefix: "sluice-files")
            defer { directory.remove() }
            let faults = FaultySystemCalls()
            faults.failOpen { $0.hasSuffix("bad.txt") }
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: StreamingConf().setMaster("local[2]"), batchDuration: .seconds(1), clock: clock,
                systemCalls: faults.calls)
            let events = ReceiverEvents()
            ssc.addStreamingListener(events)
            let lines = Collected<String>()
            let stream = ssc.textFileStream(directory.path)
            stream.foreachRDD { rdd in for line in try rdd.collect() { lines.append(line) } }
            try dropFile(directory.path, "good.txt", Array("good\n".utf8), modifiedAt: Time(milliseconds: 500))
            try dropFile(directory.path, "bad.txt", Array("bad\n".utf8), modifiedAt: Time(milliseconds: 500))
            try ssc.start()
            for t in 1...3 {
                clock.set(to: Time(milliseconds: Int64(t) * 1_000))
                #expect(ssc.waitUntilBatchHandled(clock.time, timeout: .seconds(30)))
            }
            ssc.stop()
            #expect(ssc.error == nil)
            #expect(lines.values == ["good"])
            ssc.waitForListeners()
            let first = events.completed.first { $0.batchTime == Time(milliseconds: 1_000) }
            let info = first?.streamIdToInputInfo[(stream as? InputDStream<String>)?.streamId ?? -1]
            #expect(info?.metadata["skipped"] == "\(directory.path)/bad.txt", "\(String(describing: info))")
            #expect(info?.metadata["files"] == "\(directory.path)/good.txt")
        }
    }

    @Test func binaryRecordsAndAFileOfTheWrongSize() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-files")
        defer { directory.remove() }
        let out = try StreamTest.run(numBatches: 1, beforeBatch: { _, _ in
            try dropFile(directory.path, "r.bin", [1, 2, 3, 4, 5, 6, 7, 8], modifiedAt: Time(milliseconds: 500))
        }) { ssc in ssc.binaryRecordsStream(directory.path, recordLength: 4) }
        #expect(out == [[[1, 2, 3, 4], [5, 6, 7, 8]]])
        let error = #expect(throws: (any Error).self) {
            _ = try StreamTest.run(numBatches: 1, beforeBatch: { _, _ in
                try dropFile(directory.path, "odd.bin", [1, 2, 3, 4, 5], modifiedAt: Time(milliseconds: 500))
            }) { ssc in ssc.binaryRecordsStream(directory.path, recordLength: 4) }
        }
        #expect("\(String(describing: error))".contains("odd.bin has 5 bytes"))
    }

    @Test func aMissingDirectoryFailsTheBatchWithItsPath() throws {
        let error = #expect(throws: (any Error).self) {
            _ = try StreamTest.run(numBatches: 1) { ssc in ssc.textFileStream("/nonexistent/sluice-dir") }
        }
        #expect("\(String(describing: error))".contains("cannot list /nonexistent/sluice-dir"))
    }
}
