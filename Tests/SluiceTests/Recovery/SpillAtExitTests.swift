import Glibc
import SluiceColumnar
import SluiceTesting
import Testing

@testable import Sluice

/// A program whose context lives until the process ends (a global, as in Examples/RecoverableWordCount) never
/// deinitializes its engine: its spill directory goes when the process ends, as Spark's shutdown hook deletes its
/// local directories, not left for the next engine to reclaim.
@Suite struct SpillAtExitTests {
    @Test func aGracefulStopOnSIGTERMRemovesTheSpillDirectory() throws {
        let program = try #require(
            ChildProcess.builtProduct("RecoverableWordCount"),
            "the RecoverableWordCount example is built with the tests (swift build --build-tests)")
        let directory = try TemporaryDirectory(prefix: "spill-at-exit")
        defer { directory.remove() }
        let (input, spill, output) = ("\(directory.path)/in", "\(directory.path)/spill", "\(directory.path)/out")
        for path in [input, spill, output] { mkdir(path, 0o755) }
        // 100,000 distinct words: a word count whose shuffle cannot stay within a 1 MiB budget.
        let words = (0..<100_000).map { "word\($0)" }.joined(separator: " ")
        try write(words, to: "\(input)/words")
        let conf = "\(directory.path)/conf.properties"
        try write("sluice.memory.limit=1m\nsluice.spill.dir=\(spill)\nspark.ui.enabled=false\n", to: conf)

        let child = try ChildProcess(
            program, ["counts", "\(directory.path)/ck", "\(output)/o", input, "200"],
            logPath: "\(directory.path)/child.log", environment: ["SLUICE_CONF": conf])
        defer { child.killAndWait() }
        func spillDirectories() -> [String] { (directoryNames(spill) ?? []).filter { $0.hasPrefix("sluice-spill-") } }
        func finishedBatches() -> Int {
            (directoryNames(output) ?? []).count { directoryNames("\(output)/\($0)")?.contains("_SUCCESS") == true }
        }
        #expect(eventually(seconds: 120) { !spillDirectories().isEmpty && finishedBatches() > 0 },
            "the word count spilled and finished a batch; log: \(log(of: child))")

        child.signal(SIGTERM)
        let status = try #require(child.wait(timeout: .seconds(90)), "the program ends after a graceful stop")
        // Ended by the signal raised again after the stop, or by the main thread's return from
        // `awaitTermination` first (exit status 0, through the exit handler): the directory goes either way.
        #expect(status & 0x7f == SIGTERM || status == 0, "status \(status); log: \(log(of: child))")
        #expect(spillDirectories().isEmpty, "left behind: \(spillDirectories())")
    }

    func write(_ text: String, to path: String) throws {
        guard let file = fopen(path, "w") else { throw StreamingError(.internalFailure, "cannot write \(path)") }
        defer { fclose(file) }
        let bytes = Array(text.utf8)
        guard fwrite(bytes, 1, bytes.count, file) == bytes.count else {
            throw StreamingError(.internalFailure, "cannot write \(path)")
        }
    }

    func log(of child: ChildProcess) -> String {
        (try? SystemCalls.live.readFile(child.logPath)).map { String(decoding: $0.suffix(2_000), as: UTF8.self) } ?? ""
    }
}
