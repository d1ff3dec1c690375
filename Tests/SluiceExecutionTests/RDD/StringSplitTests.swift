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
