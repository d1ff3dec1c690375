import Testing
@testable import Sluice
import SluiceTesting

/// The word path: `flatMap { $0.split(ascii: " ") }` makes ``Word`` values, and every keyed operation over them
/// gives what the same program over `String`s gives.
@Suite struct WordPathTests {
    /// Random lines: short and long words (past the 15 inline bytes), multi-byte text, runs of separators (empty
    /// words, which are dropped), empty lines.
    static func randomLines(_ batches: Int, seed: UInt64) -> [[String]?] {
        var g = SeededGenerator(seed: seed)
        let vocabulary = [
            "a", "bb", "w12", "fifteen-bytes!!", "sixteen-bytes!!!", "a-much-longer-word-than-any-inline-one",
            "é", "日本語", "naïve", "🙂", "mañana-por-la-mañana", "",
        ]
        return (0..<batches).map { _ in
            if Int.random(in: 0..<6, using: &g) == 0 { return nil }
            return (0..<Int.random(in: 0...40, using: &g)).map { _ in
                (0..<Int.random(in: 0...12, using: &g)).map { _ in vocabulary.randomElement(using: &g)! }
                    .joined(separator: Int.random(in: 0..<5, using: &g) == 0 ? "  " : " ")
            }
        }
    }

    /// The plain computation: each batch's lines split with the standard library and counted.
    static func referenceCounts(_ lines: [String]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in lines { for word in line.split(separator: " ") { counts[String(word), default: 0] += 1 } }
        return counts
    }

    static func strings(_ pairs: [(Word, Int)]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: pairs.map { ($0.0.string, $0.1) })
    }

    @Test func wordCountMatchesAPlainComputationOnRandomLines() throws {
        for seed in 1...5 as ClosedRange<UInt64> {
            let input = Self.randomLines(8, seed: seed)
            let conf = StreamingConf().set("spark.default.parallelism", String(1 + Int(seed) % 4))
            let out = try StreamTest.run(input: input, conf: conf) { lines in
                lines.flatMap { $0.split(ascii: " ") }.map { ($0, 1) }.reduceByKey(+)
            }
            // A batch with no RDD (nil) has no output.
            let expected = input.compactMap { $0 }.map(Self.referenceCounts)
            #expect(out.map(Self.strings) == expected, "seed \(seed)")
            let byValue = try StreamTest.run(input: input, conf: conf) { lines in
                lines.flatMap { $0.split(ascii: " ") }.countByValue()
            }
            #expect(byValue.map(Self.strings) == expected, "seed \(seed)")
            // Closures that read the words they are handed (inline ones are handed over rebuilt from their
            // integers, long ones as they are).
            let filtered = try StreamTest.run(input: input, conf: conf) { lines in
                lines.flatMap { $0.split(ascii: " ") }.filter { $0.utf8Count.isMultiple(of: 2) }
                    .map { ($0, $0.string.unicodeScalars.count) }.reduceByKey(+)
            }
            let expectedFiltered = expected.map { counts in
                Dictionary(uniqueKeysWithValues: counts.filter { $0.key.utf8.count.isMultiple(of: 2) }
                    .map { ($0.key, $0.value * $0.key.unicodeScalars.count) })
            }
            #expect(filtered.map(Self.strings) == expectedFiltered, "seed \(seed)")
        }
    }

    /// `map` over words takes its closure as a function of a `Word` (two forms: any result, and a pair keyed by a
    /// word); both give what the same closure gives over the words one by one, for inline and long words.
    @Test func theWordFormsOfMapMatchAPlainComputation() throws {
        for seed in 6...8 as ClosedRange<UInt64> {
            let input = Self.randomLines(6, seed: seed)
            let lines = input.compactMap { $0 }
            let conf = StreamingConf().set("spark.default.parallelism", String(1 + Int(seed) % 3))
            let sizes = try StreamTest.run(input: input, conf: conf) { lines in
                lines.flatMap { $0.split(ascii: " ") }.map { "\($0.utf8Count):\($0.string)" }
            }
            let expectedSizes = lines.map { batch in
                batch.flatMap { $0.split(separator: " ") }.map { "\($0.utf8.count):\($0)" }
            }
            #expect(sizes.map { $0.sorted() } == expectedSizes.map { $0.sorted() }, "seed \(seed)")
            // A pair keyed by a word other than the one handed in: the first half of its text.
            let halves = try StreamTest.run(input: input, conf: conf) { lines in
                lines.flatMap { $0.split(ascii: " ") }.map { word -> (Word, Int) in
                    let text = word.string
                    return (Word(String(text.prefix(text.count / 2 + 1))), text.count)
                }.reduceByKey(+)
            }
            let expectedHalves = lines.map { batch in
                var sums: [String: Int] = [:]
                for word in batch.flatMap({ $0.split(separator: " ") }) {
                    sums[String(word.prefix(word.count / 2 + 1)), default: 0] += word.count
                }
                return sums
            }
            #expect(halves.map(Self.strings) == expectedHalves, "seed \(seed)")
            // A pair of another key (the word's text).
            let texts = try StreamTest.run(input: input, conf: conf) { lines in
                lines.flatMap { $0.split(ascii: " ") }.map { ($0.string, $0.utf8Count) }.reduceByKey(+)
            }
            let expectedTexts = lines.map { batch in
                var sums: [String: Int] = [:]
                for word in batch.flatMap({ $0.split(separator: " ") }) { sums[String(word), default: 0] += word.utf8.count }
                return sums
            }
            #expect(texts.map { Dictionary(uniqueKeysWithValues: $0) } == expectedTexts, "seed \(seed)")
        }
    }

    static func failOnLongWords(_ word: Word) throws {
        if word.utf8Count > 15 { throw Boom(value: word.utf8Count) }
    }

    @Test func aThrowingWordClosureFailsTheRunWithItsError() throws {
        for form in 0..<3 {
            let error = #expect(throws: StreamingError.self) {
                _ = try StreamTest.run(input: [["a b"], ["c a-much-longer-word-than-any-inline-one d"]]) { lines in
                    let words = lines.flatMap { $0.split(ascii: " ") }
                    switch form {
                    case 0: return words.map { word -> Int in try Self.failOnLongWords(word); return 1 }
                    case 1:
                        return words.map { word -> (Word, Int) in try Self.failOnLongWords(word); return (word, 1) }
                            .map { $0.1 }
                    default:
                        return words.map { word -> (Int, Int) in try Self.failOnLongWords(word); return (1, 1) }
                            .map { $0.1 }
                    }
                }
            }
            #expect(error?.underlying as? Boom == Boom(value: 38), "form \(form)")
        }
    }

    @Test func windowedWordCountsMatchAPlainComputation() throws {
        let input = Self.randomLines(9, seed: 11)
        let out = try StreamTest.run(input: input) { lines in
            lines.flatMap { $0.split(ascii: " ") }.map { ($0, 1) }
                .reduceByKeyAndWindow(+, inverse: -, windowDuration: .seconds(3), slideDuration: .seconds(1))
        }
        for (t, batch) in out.enumerated() {
            let window = input[max(0, t - 2)...t].flatMap { $0 ?? [] }
            let nonZero = Self.strings(batch).filter { $0.value != 0 }
            #expect(nonZero == Self.referenceCounts(window), "batch \(t)")
        }
    }

    @Test func wordKeysEscapeIntoStateAndOutputAndOutliveTheirBatches() throws {
        let input = Self.randomLines(10, seed: 21)
        let running = try StreamTest.run(input: input) { lines in
            lines.flatMap { $0.split(ascii: " ") }.map { ($0, 1) }
                .updateStateByKey { (values: [Int], count: Int?) -> Int? in values.reduce(count ?? 0, +) }
        }
        let spec = StateSpec<Word, Int, Int, (Word, Int)>.function { word, value, state in
            let count = (state.getOption() ?? 0) + (value ?? 0)
            try state.update(count)
            return (word, count)
        }
        let snapshots = try StreamTest.run(input: input) { lines in
            lines.flatMap { $0.split(ascii: " ") }.map { ($0, 1) }.mapWithState(spec).stateSnapshots()
        }
        var total: [String: Int] = [:]
        for (t, batch) in input.enumerated() {
            total.merge(Self.referenceCounts(batch ?? [])) { $0 + $1 }
            // Keys made from batches long gone (their blocks released) still read back whole.
            #expect(Self.strings(running[t]) == total, "updateStateByKey, batch \(t)")
            #expect(Self.strings(snapshots[t]) == total, "mapWithState, batch \(t)")
        }
    }

    @Test func theGuidesProgramPrintsWordsAsText() throws {
        let out = try StreamTest.run(input: [["to be or not to be"]]) { lines in
            lines.flatMap { $0.split(ascii: " ") }.map { ($0, 1) }.reduceByKey(+)
                .map { "(\($0.0),\($0.1))" }
        }
        #expect(out[0].sorted() == ["(be,2)", "(not,1)", "(or,1)", "(to,2)"])
    }
}
