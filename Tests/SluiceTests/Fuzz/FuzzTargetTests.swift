import SluiceColumnar
import SluiceTesting
import Testing

/// The fuzz targets without the fuzzer (`scripts/fuzz.sh` runs them under libFuzzer and AddressSanitizer):
/// every seed decodes; seeds cut short or with bytes flipped end in a value or a thrown error, never a crash;
/// and every input a fuzzing run found (Tests/SluiceTests/Fuzz/Regressions/<target>/) replays without one.
@Suite struct FuzzTargetTests {
    static func scratch() throws -> TemporaryDirectory { try TemporaryDirectory(prefix: "sluice-fuzz-test") }

    @Test(arguments: FuzzTarget.allCases)
    func seedsDecodeAndDamagedSeedsAreRefusedWithoutACrash(target: FuzzTarget) throws {
        let dir = try Self.scratch()
        defer { dir.remove() }
        let seeds = try target.seeds(scratch: dir.path)
        #expect(!seeds.isEmpty)
        var g = SeededGenerator(seed: 17)
        for seed in seeds {
            #expect(seed.withUnsafeBytes { target.run($0, scratch: dir.path) }, "a seed of \(target) decodes")
            for cut in stride(from: 0, to: seed.count, by: max(1, seed.count / 40)) {
                _ = seed.prefix(cut).withUnsafeBytes { target.run(UnsafeRawBufferPointer($0), scratch: dir.path) }
            }
            for _ in 0..<300 {
                var damaged = seed
                for _ in 0..<Int.random(in: 1...4, using: &g) {
                    damaged[Int.random(in: 0..<damaged.count, using: &g)] = UInt8.random(in: 0...255, using: &g)
                }
                _ = damaged.withUnsafeBytes { target.run($0, scratch: dir.path) }
            }
        }
    }

    @Test func inputsFuzzingFoundReplayWithoutACrash() throws {
        let dir = try Self.scratch()
        defer { dir.remove() }
        let root = String(#filePath.dropLast("FuzzTargetTests.swift".count)) + "Regressions"
        for target in FuzzTarget.allCases {
            for name in (directoryNames("\(root)/\(target.rawValue)") ?? []).sorted() {
                let bytes = try SystemCalls.live.readFile("\(root)/\(target.rawValue)/\(name)")
                _ = bytes.withUnsafeBytes { target.run($0, scratch: dir.path) }
            }
        }
    }
}
