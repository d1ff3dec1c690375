import Testing
@testable import SluiceColumnar
import SluiceTesting

/// Opens damaged bytes and, when the decoder accepts them, reads every value: it must never crash, only
/// refuse with a ``FormatError`` that names an offset inside (or at the end of) the bytes.
func openAndReadEverything(_ bytes: [UInt8]) -> Result<Block, FormatError> {
    do {
        let block = try Block(validating: try ArenaBuffer(copying: bytes))
        _ = readAll(block)
        return .success(block)
    } catch let error as FormatError {
        return .failure(error)
    } catch {
        Issue.record("unexpected error type \(error)")
        return .failure(FormatError(.invalidValue, at: 0, "\(error)"))
    }
}

@Suite struct CorruptionTests {
    static let allTypes: [ColumnType] = BlockRoundTripTests.allTypes

    /// 10,000 damaged blocks per column type (16 types), half of them with a forged checksum so that the
    /// structural checks behind the checksum are exercised.
    @Test(arguments: allTypes)
    func tenThousandMutationsPerColumnKind(type: ColumnType) throws {
        var g = SeededGenerator(seed: 1_000 + UInt64(type.kind.rawValue) * 2 + (type.nullable ? 1 : 0))
        let schema = [type, ColumnType(.int32)]
        var originals: [[UInt8]] = []
        for rows in [0, 3, 17, 64] {
            let cells = (0..<rows).map { _ in schema.map { Cell.random($0, &g) } }
            originals.append(try buildBlock(schema, rows: cells).withUnsafeBytes { Array($0) })
        }
        var corruptor = ByteCorruptor(seed: UInt64(type.kind.rawValue) << 8 | (type.nullable ? 1 : 0))
        var refused = 0
        var refusedForged = 0
        for i in 0..<10_000 {
            let original = originals[i % originals.count]
            let forged = i % 2 == 1
            let (bytes, mutation) = corruptor.corrupt(original, resealBlock: forged)
            switch openAndReadEverything(bytes) {
            case .failure(let error):
                refused += 1
                if forged { refusedForged += 1 }
                #expect(error.offset >= 0 && error.offset <= max(bytes.count, original.count))
                #expect(!error.message.isEmpty)
            case .success:
                // Accepted: only possible when the bytes are unchanged, or (forged) still a well-formed block.
                if !forged && bytes != original {
                    Issue.record("\(mutation) of a \(type) block was accepted without a forged checksum")
                }
            }
        }
        #expect(refused > 5_000)
        #expect(refusedForged > 1_000, "structural checks must refuse many forged blocks")
    }

    @Test func errorsNameTheProblemAndOffset() throws {
        let block = try ElementCodecs.tuple(String.self, Int.self).encode([("a", 1), ("b", 2)])
        let good = block.withUnsafeBytes { Array($0) }

        func error(_ bytes: [UInt8]) -> FormatError? {
            if case .failure(let e) = openAndReadEverything(bytes) { return e }
            return nil
        }
        #expect(error(Array(good.prefix(10)))?.code == .truncated)
        #expect(error(Array(good.prefix(good.count - 1)))?.code == .truncated)
        var badMagic = good
        badMagic[0] = 0
        #expect(error(badMagic)?.code == .badMagic)
        #expect(error(badMagic)?.offset == 0)
        var version = good
        version[4] = 9
        #expect(error(version)?.code == .unsupportedVersion)
        var flipped = good
        flipped[good.count - 70] ^= 0x10
        let e = try #require(error(flipped))
        #expect(e.code == .checksumMismatch)
        #expect(e.description.contains("checksum mismatch"))
        #expect(e.description.contains("at byte offset 24"))
    }

    @Test func forgedLyingOffsetsAreCaughtBehindTheChecksum() throws {
        let block = try ElementCodecs.standard(String.self).encode(["hello", "world"])
        var bytes = block.withUnsafeBytes { Array($0) }
        // Column 0's last string offset (2 rows: offsets at values + 8) claims far more data than exists.
        let valuesOffset = Int(bytes[32 + 16]) | Int(bytes[32 + 17]) << 8
        bytes[valuesOffset + 8] = 0xFF
        let sealed = reseal(bytes)
        guard case .failure(let error) = openAndReadEverything(sealed) else {
            Issue.record("a lying offset was accepted")
            return
        }
        #expect(error.code == .inconsistent)
        #expect(error.message.contains("column 0 (string)"))
    }

    func reseal(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        let crc = out.withUnsafeBytes { BlockLayout.checksum($0) }
        withUnsafeBytes(of: crc.littleEndian) { for k in 0..<4 { out[24 + k] = $0[k] } }
        return out
    }

    @Test func corruptEnvelopesAreRefusedBeforeDecompression() throws {
        let block = try ElementCodecs.standard(Int.self).encode(Array(0..<5_000))
        let packed = try block.compressed(with: try ZstdCompressor()).bytes
        let decompressor = try ZstdDecompressor()
        var corruptor = ByteCorruptor(seed: 99)
        for _ in 0..<3_000 {
            let (bytes, mutation) = corruptor.corrupt(packed)
            do {
                let back = try bytes.withUnsafeBytes { try Block(decompressing: $0, decompressor: decompressor) }
                // Every byte is under a checksum: only an unchanged envelope (a swap of equal bytes) opens.
                #expect(bytes == packed, "\(mutation) was accepted")
                #expect(try ElementCodecs.standard(Int.self).decode(back) == Array(0..<5_000))
            } catch is FormatError {
            } catch is CompressionError {
            }
        }
    }

    /// Row decoders given damaged or random bytes refuse them with a `FormatError` or `DecodingError`, or
    /// decode a value that is consistent (it re-encodes to bytes that decode to itself); every strict prefix of
    /// a good encoding is refused; and random garbage is refused nearly always. (Before, every result went to
    /// `try?` and nothing was checked.)
    @Test func rowEncodingDecodersRefuseGarbage() throws {
        struct Event: Codable, BlockSerializable, Equatable {
            var id: Int
            var name: String
            var tags: [String: Int]
            var score: Double?
        }
        enum Outcome { case refused, decoded }
        func attempt<T: BlockSerializable & Equatable>(_ type: T.Type, _ bytes: [UInt8]) -> Outcome {
            do {
                let value = try bytes.withUnsafeBytes { raw in
                    try BinaryReader.withReader(raw) { reader in try T.decode(from: &reader) }
                }
                var writer = try BinaryWriter()
                try value.encode(to: &writer)
                let again = try writer.buffer.bytes.withUnsafeBytes { raw in
                    try BinaryReader.withReader(raw) { reader in try T.decode(from: &reader) }
                }
                #expect(again == value, "a value decoded from damaged bytes does not round-trip: \(value)")
                return .decoded
            } catch is FormatError {
                return .refused
            } catch is DecodingError {
                return .refused
            } catch {
                Issue.record("\(T.self): not a FormatError or DecodingError: \(error)")
                return .refused
            }
        }
        var writer = try BinaryWriter()
        try Event(id: 7, name: "x", tags: ["a": 1, "b": 2], score: 0.5).encode(to: &writer)
        let event = writer.buffer.bytes
        writer = try BinaryWriter()
        try ["alpha", "beta"].encode(to: &writer)
        let strings = writer.buffer.bytes
        for n in 0..<event.count { #expect(attempt(Event.self, Array(event.prefix(n))) == .refused, "\(n) bytes of an Event") }
        for n in 0..<strings.count { #expect(attempt([String].self, Array(strings.prefix(n))) == .refused, "\(n) bytes of [String]") }

        var g = SeededGenerator(seed: 5)
        var corruptor = ByteCorruptor(seed: 6)
        var refused = 0
        let trials = 5_000
        for _ in 0..<trials {
            let damaged = corruptor.corrupt(event).bytes
            _ = attempt(Event.self, damaged)
            let random = (0..<Int.random(in: 8...40, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            if attempt(Event.self, random) == .refused { refused += 1 }
            _ = attempt([String].self, random)
            _ = attempt([Int?].self, random)
        }
        #expect(refused >= trials * 99 / 100, "only \(refused) of \(trials) random byte strings were refused as an Event")
    }
}
