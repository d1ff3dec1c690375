import Testing
@testable import SluiceExecution

/// The combine table's slot array: sparse while small, denser once large, and every key found whatever its size.
@Suite struct CombineTableTests {
    @Test func aSmallTableStaysUnder40PercentFullALargeOneUnder70() {
        var table = CombineTable<WordKeys, Int>()
        var slotsAtTenThousand = 0
        for round in 0..<2 {
            for start in stride(from: 0, to: 100_000, by: 1_000) {
                // Each chunk of words once per round: the second round finds every key and adds 1 to it.
                let pairs = (start..<start + 1_000).map { (Word("w\($0)"), 1) }
                pairs.withUnsafeBufferPointer { table.upsert($0, create: { $0 }, merge: { $0 += $1 }) }
                let (count, slots) = (table.count, table.slots.count)
                if count == 10_000 && round == 0 { slotsAtTenThousand = slots }
                let share = slots <= CombineTable<WordKeys, Int>.sparseSlots ? 4 : 7
                #expect(count * 10 <= slots * share, "\(count) keys in \(slots) slots")
            }
        }
        #expect(slotsAtTenThousand == 32_768, "a word count's vocabulary of 10,000 words")
        #expect(table.slots.count == 262_144, "100,000 keys at most 70% full, not 40%")
        #expect(table.count == 100_000)
        #expect((0..<table.count).allSatisfy { table.combiners[$0] == 2 }, "every key found in the second round")
    }

    /// A table's estimate (what the memory budget is charged) counts what its keys hold besides their packed
    /// entries: nothing for short keys; a long `String` key's bytes (copied into the table), a long word's bytes
    /// and its `String`'s heap object (kept, shared).
    @Test func longKeysAreChargedWhatTheyHold() {
        func charged<Keys: KeyColumn>(_ keys: Keys.Type, _ make: (String) -> Keys.Key) -> (short: Int, long: Int) {
            var table = CombineTable<Keys, Int>()
            let short = (0..<1_000).map { (make("k\($0)"), 1) }
            short.withUnsafeBufferPointer { table.upsert($0, create: { $0 }, merge: { $0 += $1 }) }
            let withShort = table.keys.extraBytes
            let long = (0..<1_000).map { (make(String(repeating: "x", count: 100) + "\($0)"), 1) }
            long.withUnsafeBufferPointer { table.upsert($0, create: { $0 }, merge: { $0 += $1 }) }
            #expect(table.count == 2_000)
            #expect(table.estimatedBytes(bytesPerValue: 0) >= table.keys.extraBytes + 2_000 * 16)
            return (withShort, table.keys.extraBytes)
        }
        let longBytes = (0..<1_000).reduce(0) { $0 + 100 + "\($1)".utf8.count }
        let strings = charged(StringKeys.self) { $0 }
        #expect(strings.short == 0, "short String keys are packed: nothing besides the entries")
        #expect(strings.long >= longBytes, "long String keys' bytes, copied")
        let words = charged(WordKeys.self) { Word($0) }
        #expect(words.short == 0)
        #expect(words.long == longBytes + 1_000 * WordKeys.stringObjectBytes, "long words' bytes and objects")
    }
}
