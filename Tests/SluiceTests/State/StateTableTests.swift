import Testing
@testable import Sluice
import SluiceTesting

/// A key whose hash is its value divided by 4, so that keys collide and probe runs wrap around the table's end.
private struct Crowded: Hashable {
    let value: Int
    func hash(into hasher: inout Hasher) { hasher.combine(value / 4) }
}

@Suite struct StateTableTests {
    @Test func matchesADictionaryThroughRandomSetsAndRemovals() {
        for seed in 1...4 as ClosedRange<UInt64> {
            var rng = SeededGenerator(seed: seed)
            var table = StateTable<Int, Int>()
            var reference: [Int: Int] = [:]
            for step in 0..<20_000 {
                let key = Int.random(in: 0..<(seed.isMultiple(of: 2) ? 64 : 5_000), using: &rng)
                if Bool.random(using: &rng) || reference[key] == nil {
                    table.set(key, step)
                    reference[key] = step
                } else {
                    let (found, slot) = table.find(key)
                    #expect(found)
                    table.remove(at: slot)
                    reference[key] = nil
                }
            }
            #expect(table.count == reference.count)
            var seen: [Int: Int] = [:]
            table.forEach { seen[$0] = $1 }
            #expect(seen == reference)
            for key in 0..<5_000 { #expect(table[key] == reference[key]) }
        }
    }

    @Test func removalShiftsBackCollidingKeysAcrossTheTablesEnd() {
        var rng = SeededGenerator(seed: 9)
        var table = StateTable<Crowded, Int>()
        var reference: [Crowded: Int] = [:]
        for step in 0..<5_000 {
            let key = Crowded(value: Int.random(in: 0..<40, using: &rng))
            if reference[key] != nil, Int.random(in: 0..<3, using: &rng) == 0 {
                table.remove(at: table.find(key).slot)
                reference[key] = nil
            } else {
                table.set(key, step)
                reference[key] = step
            }
            if step % 50 == 0 {
                for k in 0..<40 { #expect(table[Crowded(value: k)] == reference[Crowded(value: k)]) }
            }
        }
        #expect(table.count == reference.count)
    }

    @Test func copiesAreIndependentAndLargeTablesWork() {
        // 300,000 keys: slots past the size that is mapped with huge pages requested.
        var table = StateTable<Int, Int>()
        for key in 0..<300_000 { table.set(key, key * 2) }
        #expect(table.storage.capacity * MemoryLayout<StateSlot<Int, Int>?>.stride >= StateSlots<Int, Int>.hugePageThreshold)
        let snapshot = table
        for key in stride(from: 0, to: 300_000, by: 3) { table.remove(at: table.find(key).slot) }
        table.set(1, -1)
        table.modifyValue(at: table.find(2).slot) { $0 += 1 }
        #expect(snapshot.count == 300_000 && table.count == 200_000)
        #expect(snapshot[0] == 0 && snapshot[1] == 2 && snapshot[2] == 4)
        #expect(table[0] == nil && table[1] == -1 && table[2] == 5 && table[299_997] == nil && table[299_999] == 599_998)
        var sum = 0
        snapshot.forEach { _, value in sum += value }
        #expect(sum == (0..<300_000).reduce(0) { $0 + $1 * 2 })
    }

    @Test func aSmallTableStaysAQuarterFullALargeOneThreeQuarters() {
        var table = StateTable<Int, Int>()
        var largestSparse = 0
        var slotsAtAThousand = 0
        for key in 0..<150_000 {
            table.set(key, key)
            let (count, capacity) = (table.count, table.storage.capacity)
            if count == 1_000 { slotsAtAThousand = capacity }
            if capacity <= StateTable<Int, Int>.sparseSlots {
                #expect(count * 4 <= capacity, "\(count) keys in \(capacity) slots")
                largestSparse = max(largestSparse, count)
            } else {
                #expect(count * 4 <= capacity * 3, "\(count) keys in \(capacity) slots")
            }
        }
        #expect(slotsAtAThousand == 4_096, "1,000 keys (a small state) a quarter full")
        #expect(largestSparse == StateTable<Int, Int>.sparseSlots / 4)
        #expect(table.storage.capacity == 262_144, "150,000 keys at most 3/4 full, not 1/4")
        #expect((0..<150_000).allSatisfy { table[$0] == $0 })
    }
}
