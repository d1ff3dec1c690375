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

    /// A table's estimate (what the memory budget is charged) counts what its keys hold: a short `String` key
    /// nothing past its packed entry, a long one its bytes and its `String`'s heap object.
    @Test func longStringKeysAreChargedTheirBytesAndTheirObjects() {
        var table = CombineTable<StringKeys, Int>()
        let short = (0..<1_000).map { ("k\($0)", 1) }
        short.withUnsafeBufferPointer { table.upsert($0, create: { $0 }, merge: { $0 += $1 }) }
        let withShort = table.estimatedBytes(bytesPerValue: 0)
        #expect(table.keys.extraBytes == 0, "short keys are packed: nothing besides the entries")
        let long = (0..<1_000).map { (String(repeating: "x", count: 100) + "\($0)", 1) }
        long.withUnsafeBufferPointer { table.upsert($0, create: { $0 }, merge: { $0 += $1 }) }
        let longBytes = long.reduce(0) { $0 + $1.0.utf8.count + WordKeys.stringObjectBytes }
        #expect(table.keys.extraBytes == longBytes)
        #expect(table.estimatedBytes(bytesPerValue: 0) >= withShort + longBytes)
        #expect(table.count == 2_000)
    }
}
