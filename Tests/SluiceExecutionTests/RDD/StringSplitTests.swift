import Testing
import SluiceTesting
@testable import SluiceExecution

@Suite struct StringSplitTests {
    @Test func splitOnAnASCIICharacterMatchesTheStandardSplit() {
        var g = SeededGenerator(seed: 3)
        let alphabet: [Character] = ["a", "b", " ", " ", ",", "é", "日", "🙂", "\t"]
        for _ in 0..<2_000 {
            let s = String((0..<Int.random(in: 0...30, using: &g)).map { _ in alphabet.randomElement(using: &g)! })
            for separator: Unicode.Scalar in [" ", ",", "\t", "é"] {
                #expect(s.split(ascii: separator) == s.split(separator: Character(separator)).map(String.init), "\(s)")
            }
        }
        #expect("  a  b ".split(ascii: " ") == ["a", "b"])
        #expect("".split(ascii: " ").isEmpty)
    }
}
