import Foundation
import SluiceColumnar
import Testing
import SluiceTesting
@testable import SluiceExecution

@Suite struct StringSplitTests {
    @Test func splitOnAnASCIICharacterMatchesTheStandardSplit() {
        var g = SeededGenerator(seed: 3)
        let alphabet: [Character] = ["a", "b", " ", " ", ",", "é", "日", "🙂", "\t"]
        for _ in 0..<2_000 {
            let s = String((0..<Int.random(in: 0...40, using: &g)).map { _ in alphabet.randomElement(using: &g)! })
            for separator: Unicode.Scalar in [" ", ",", "\t", "é"] {
                let expected = s.split(separator: Character(separator)).map(String.init)
                #expect(s.split(ascii: separator).map(\.string) == expected, "\(s)")
                var viaForEach: [String] = []
                s.split(ascii: separator).forEachWord { viaForEach.append($0.string) }
                #expect(viaForEach == expected, "\(s)")
            }
        }
        #expect(Array("  a  b ".split(ascii: " ")) == ["a", "b"])
        #expect(Array("".split(ascii: " ")).isEmpty)
        #expect(Array("   ".split(ascii: " ")).isEmpty, "no empty words")
    }
}

extension StringSplitTests {
    /// The engine's own pass over a line (`flatMap` of `split(ascii:)`, which finds word ends eight bytes at a
    /// time) against the standard split: words of every length around 8 and 16 bytes, runs of separators at
    /// either end, multi-byte text, lines of one long word.
    @Test func flatMapOfSplitMatchesTheStandardSplit() throws {
        var g = SeededGenerator(seed: 11)
        let pieces = ["a", "bb", "ccccccc", "dddddddd", "eeeeeeeee", String(repeating: "f", count: 15),
                      String(repeating: "g", count: 16), String(repeating: "h", count: 23), "é", "日本語", "🙂x"]
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 2))
        for separator: Unicode.Scalar in [" ", ",", "\t", "é"] {
            let gap = String(separator)
            let lines = (0..<500).map { _ in
                (0..<Int.random(in: 0...12, using: &g)).map { _ in
                    String(repeating: gap, count: Int.random(in: 0...9, using: &g)) + pieces.randomElement(using: &g)!
                }.joined() + String(repeating: gap, count: Int.random(in: 0...9, using: &g))
            }
            let words = try engine.parallelize(lines, numSlices: 3).flatMap { $0.split(ascii: separator) }.collect()
            let expected = lines.flatMap { $0.split(separator: Character(separator)).map(String.init) }
            #expect(words.map(\.string) == expected, "separator \(separator.escaped(asASCII: true))")
            #expect(words.map(\.utf8Count) == expected.map(\.utf8.count))
        }
    }
}

@Suite struct WordTests {
    /// Words of every length around the inline limit, ASCII and multi-byte.
    static func sampleStrings() -> [String] {
        var strings = [""]
        for n in 1...40 { strings.append(String((0..<n).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })) }
        strings += ["é", "日本語", "🙂🙂🙂🙂", "ab🙂cdefghijklm", "ab🙂cdefghijklmn", "naïve-café-résumé"]
        return strings
    }

    @Test func aWordGivesBackItsTextAtEveryLength() {
        for s in Self.sampleStrings() {
            let word = Word(s)
            #expect(word.string == s)
            #expect(word.utf8Count == s.utf8.count)
            #expect(word.description == s)
            #expect(word.withUTF8 { Array($0) } == Array(s.utf8))
            #expect(word.javaHashCode == SparkHashCode.string(s), "a word partitions as its string does")
        }
    }

    @Test func wordsWriteAsTheirTextInSparksFormat() {
        #expect(SparkText.line(Word("naïve")) == "naïve")
        #expect(SparkText.line((Word("be"), 2)) == "(be,2)")
        #expect(SparkText.line((Word("a-word-longer-than-fifteen"), Optional(1))) == "(a-word-longer-than-fifteen,Some(1))")
    }

    @Test func equalityHashingAndOrderFollowTheBytes() {
        let strings = Self.sampleStrings()
        for a in strings {
            for b in strings {
                let (x, y) = (Word(a), Word(b))
                #expect((x == y) == (a == b), "\(a) vs \(b)")
                if a == b { #expect(x.hashValue == y.hashValue) }
                #expect((x < y) == Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8)), "\(a) < \(b)")
            }
        }
        // The same text made by splitting, by a literal and from bytes is one word.
        let split = Array("x lengthier-than-fifteen-bytes y".split(ascii: " "))
        #expect(split == ["x", "lengthier-than-fifteen-bytes", "y"])
        #expect(Set(split + split).count == 3)
    }

    /// The combine table takes a word's slot from the low bits of its hash and a tag from the high 32: both must
    /// spread keys that differ in a byte or two (the generator's "w0" ... "w9999", words sharing their first eight
    /// bytes, words differing only in length), as random numbers would.
    @Test func wordHashesSpreadOverSlotsAndTags() {
        var words = (0..<10_000).map { Word("w\($0)") }
        words += (0..<4_000).map { Word("prefix-\($0 % 10)-\($0)") }  // 11-15 bytes: the first eight shared
        words += (1...15).map { Word(String(repeating: "a", count: $0)) }
        let hashes = words.map(\.hash)
        #expect(Set(hashes).count == words.count, "distinct words, distinct hashes")
        #expect(Set(hashes.map { $0 >> 32 }).count >= words.count - 2, "tags")
        let slots = 1 << 15  // 14,015 keys in 32,768 slots: as the table grows for them
        var load = [Int](repeating: 0, count: slots)
        for h in hashes { load[Int(truncatingIfNeeded: h) & (slots - 1)] += 1 }
        // Random slots for 14,015 keys: about 11,400 slots used, none with more than 6 or 7 keys.
        #expect(load.filter { $0 > 0 }.count >= 11_000)
        #expect(load.max() ?? 0 <= 8)
    }

    @Test func wordsRoundTripThroughBlocksRowsAndCodable() throws {
        let words = Self.sampleStrings().map { Word($0) }
        let codec = ElementCodecs.standard(Word.self)
        let block = try codec.encode(words)
        #expect(block.schema == [ColumnType(.string)], "a word column is a string column")
        #expect(try codec.decode(block) == words)
        // Pairs keyed by words, as shuffles and checkpoints store them.
        let pairs: [(Word, Int)] = words.enumerated().map { ($1, $0) }
        let pairCodec = try #require(ElementCodecs.lookup((Word, Int).self, sample: pairs[0]))
        let back = try pairCodec.decode(try pairCodec.encode(pairs))
        #expect(back.map { $0.0 } == words)
        #expect(back.map { $0.1 } == Array(0..<words.count))
        for word in words {
            var writer = try BinaryWriter()
            word.encode(to: &writer)
            let decoded = try writer.buffer.withUnsafeBytes { bytes in
                try BinaryReader.withReader(bytes) { try Word.decode(from: &$0) }
            }
            #expect(decoded == word)
        }
        let json = try JSONEncoder().encode(words)
        #expect(try JSONDecoder().decode([Word].self, from: json) == words)
        #expect(String(decoding: try JSONEncoder().encode([Word("a b")]), as: UTF8.self) == #"["a b"]"#)
    }
}
