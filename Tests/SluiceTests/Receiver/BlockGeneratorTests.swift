import Glibc
import Synchronization
import Testing
@testable import Sluice
@testable import SluiceExecution
import SluiceColumnar
import SluiceTesting

/// Blocks a generator pushed.
final class PushedBlocks: Sendable {
    private let blocks = Mutex<[(StreamBlockId, [Int])]>([])
    private let delay: UInt32
    init(delayMicroseconds: UInt32 = 0) { delay = delayMicroseconds }
    /// Keeps the block's id and its elements (decoded: blocks of Ints are columnar).
    func push(_ block: ReceivedBlock<Int>) throws {
        if delay > 0 { usleep(delay) }
        let elements: [Int]
        if let columns = try block.columns() {
            elements = try #require(ElementCodecs.lookup(Int.self)).decode(columns)
        } else if case .elements(let list) = block.data {
            elements = list
        } else {
            elements = []
        }
        #expect(elements.count == block.count)
        blocks.withLock { $0.append((block.id, elements)) }
    }
    var all: [(StreamBlockId, [Int])] { blocks.withLock { $0 } }
    var elements: [Int] { all.flatMap(\.1) }
}

/// Waits (really) until `condition` holds, up to `seconds` (10 s).
@discardableResult
func eventually(seconds: Int = 10, _ condition: () -> Bool) -> Bool {
    for _ in 0..<(seconds * 200) {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

@Suite struct BlockGeneratorTests {
    func generator(
        clock: ManualClock, pushed: PushedBlocks, queue: Int = 10, pool: BufferPool = .shared,
        interval: Duration = .milliseconds(200), splitBytes: Int = BlockGenerator<Int>.defaultSplitBytes
    ) -> BlockGenerator<Int> {
        BlockGenerator(
            streamId: 3, interval: interval, queueCapacity: queue,
            limiter: RateLimiter(maxRate: nil, initialRate: nil), clock: clock, pool: pool, splitBytes: splitBytes,
            push: { try pushed.push($0) }, onError: { _, _ in })
    }

    @Test func eachIntervalsRecordsBecomeOneBlockNamedAfterItsStart() throws {
        let clock = ManualClock(startTime: Time(milliseconds: 1_000))
        let pushed = PushedBlocks()
        let generator = generator(clock: clock, pushed: pushed)
        try generator.start()
        for i in 0..<5 { try generator.add(i) }
        clock.set(to: Time(milliseconds: 1_200))
        #expect(eventually { pushed.all.count == 1 })
        try generator.add(contentsOf: [5, 6, 7])
        try generator.add(8)
        clock.set(to: Time(milliseconds: 1_400))
        #expect(eventually { pushed.all.count == 2 })
        clock.set(to: Time(milliseconds: 1_600))  // nothing added: no block
        usleep(50_000)
        #expect(pushed.all.map(\.0.description) == ["input-3-1000", "input-3-1200"])
        #expect(pushed.all.map(\.1) == [[0, 1, 2, 3, 4], [5, 6, 7, 8]])
        generator.stop()
    }

    /// The two builders a generator alternates between keep their memory: after the first blocks, making a
    /// block takes one buffer from the pool (the block's own), not a growth of the builder from nothing.
    @Test func theBuildersKeepTheirMemoryFromBlockToBlock() throws {
        let clock = ManualClock()
        let pushed = PushedBlocks()
        let pool = BufferPool(allocator: .standard, maxRetainedBytes: 64 << 20)
        let generator = generator(clock: clock, pushed: pushed, pool: pool)
        try generator.start()
        let rows = 50_000
        var takes: [Int] = []
        for block in 0..<8 {
            let before = pool.statistics
            let stored = try generator.addEncoded(rows: rows) { builder in
                builder.withColumn(0) { column in
                    column.withAppender(of: Int64.self) { for i in 0..<rows { $0.append(Int64(block * rows + i)) } }
                }
            }
            #expect(stored)
            clock.advance(by: .milliseconds(200))
            #expect(eventually { pushed.all.count == block + 1 })
            let after = pool.statistics
            takes.append(after.allocatorCalls + after.reuses - before.allocatorCalls - before.reuses)
        }
        generator.stop()
        #expect(pushed.elements == Array(0..<8 * rows))
        // A 400 KB column grown from nothing takes about 13 buffers; a block's own buffer is one.
        #expect(takes.dropFirst(2).allSatisfy { $0 <= 2 }, "buffers taken per block: \(takes)")
    }

    @Test func stopPushesEverythingAddedBeforeItAndRefusesMore() throws {
        let clock = ManualClock()
        let pushed = PushedBlocks(delayMicroseconds: 2_000)
        let generator = generator(clock: clock, pushed: pushed, queue: 2)
        try generator.start()
        var expected: [Int] = []
        for round in 0..<6 {
            let batch = Array(round * 100..<(round * 100 + 100))
            try generator.add(contentsOf: batch)
            expected += batch
            clock.advance(by: .milliseconds(200))
        }
        try generator.add(contentsOf: [9_999])  // buffered, no tick yet
        expected.append(9_999)
        generator.stop()
        #expect(generator.phase == .stoppedAll)
        #expect(pushed.elements == expected)
        #expect(generator.queuedBlocks == 0)
        let error = #expect(throws: StreamingError.self) { try generator.add(1) }
        #expect(error?.message.contains("stopped") == true)
        generator.stop()  // a second stop does nothing
    }

    @Test func theBlockQueueStaysWithinItsCapacityWhenPushingIsSlow() throws {
        let clock = ManualClock()
        let pushed = PushedBlocks(delayMicroseconds: 20_000)
        let generator = generator(clock: clock, pushed: pushed, queue: 3)
        try generator.start()
        var most = 0
        for i in 0..<20 {
            try generator.add(i)
            clock.advance(by: .milliseconds(200))
            most = max(most, generator.queuedBlocks)
        }
        generator.stop()
        #expect(most <= 3)
        #expect(pushed.elements == Array(0..<20))
    }

    @Test func addingBeforeStartIsAClearError() {
        let generator = generator(clock: ManualClock(), pushed: PushedBlocks())
        let error = #expect(throws: StreamingError.self) { try generator.add(1) }
        #expect(error?.message.contains("not been started") == true)
    }

    /// A block that reaches the split size is cut before its tick: every record arrives once and in order, each
    /// early block holds the split size and at most one add's records more, the ids are the interval's start
    /// plus 1, 2, ... for the early blocks and the start for the tick's own, and a batch at the tick waits for
    /// all of them.
    @Test func aBlockReachingTheSplitSizeIsCutBeforeItsTick() throws {
        let clock = ManualClock(startTime: Time(milliseconds: 1_000))
        let pushed = PushedBlocks()
        let split = 4_096  // bytes: 512 Ints
        let generator = generator(clock: clock, pushed: pushed, splitBytes: split)
        try generator.start()
        var random = SystemRandomNumberGenerator()
        var expected: [Int] = []
        var largestAdd = 0
        while expected.count < 5_000 {  // encoded adds, element adds and single records, of random sizes
            let n = Int.random(in: 1...300, using: &random)
            let values = (0..<n).map { _ in Int.random(in: -1_000...1_000, using: &random) }
            switch Int.random(in: 0..<3, using: &random) {
            case 0:
                let stored = try generator.addEncoded(rows: n) { builder in
                    builder.withColumn(0) { $0.withAppender(of: Int64.self) { a in for v in values { a.append(Int64(v)) } } }
                }
                #expect(stored)
                largestAdd = max(largestAdd, n)
            case 1:
                try generator.add(contentsOf: values)
                largestAdd = max(largestAdd, n)
            default:
                for v in values { try generator.add(v) }
            }
            expected += values
        }
        #expect(eventually { pushed.all.count >= expected.count * 8 / (split + largestAdd * 8) })
        #expect(!generator.waitUntilPushed(through: Time(milliseconds: 1_200), timeoutMilliseconds: 50))
        try generator.add(contentsOf: [42, 43])
        expected += [42, 43]
        clock.set(to: Time(milliseconds: 1_200))
        #expect(generator.waitUntilPushed(through: Time(milliseconds: 1_200), timeoutMilliseconds: 10_000))
        let blocks = pushed.all
        #expect(pushed.elements == expected)
        // The tick's own block comes last, unless the last add filled an early block and left nothing for it.
        let ids = blocks.map(\.0.uniqueId)
        let early = blocks.prefix(ids.last == 1_000 ? blocks.count - 1 : blocks.count)
        #expect(early.count >= 2)
        #expect(early.allSatisfy { $0.1.count * 8 >= split && $0.1.count * 8 < split + largestAdd * 8 })
        #expect(early.map(\.0.uniqueId) == early.indices.map { 1_000 + Int64($0) + 1 })
        #expect(blocks.last?.1.suffix(2) == [42, 43])
        // The next interval starts from 1: its ids are its own.
        try generator.add(contentsOf: Array(0..<600))
        try generator.add(7)
        clock.set(to: Time(milliseconds: 1_400))
        #expect(generator.waitUntilPushed(through: Time(milliseconds: 1_400), timeoutMilliseconds: 10_000))
        #expect(pushed.all.dropFirst(blocks.count).map(\.0.uniqueId) == [1_201, 1_200])
        generator.stop()
    }

    /// Early blocks keep their ids within their interval: with a 4 ms interval at most 3 are cut early, and the
    /// tick's own block holds the rest.
    @Test func earlyBlocksStayWithinTheirIntervalsIds() throws {
        let clock = ManualClock(startTime: Time(milliseconds: 1_000))
        let pushed = PushedBlocks()
        let generator = generator(clock: clock, pushed: pushed, interval: .milliseconds(4), splitBytes: 8)
        try generator.start()
        for i in 0..<10 { try generator.add(contentsOf: [i]) }
        #expect(eventually { pushed.all.count == 3 })
        clock.set(to: Time(milliseconds: 1_004))
        #expect(generator.waitUntilPushed(through: Time(milliseconds: 1_004), timeoutMilliseconds: 10_000))
        generator.stop()
        #expect(pushed.all.map(\.0.uniqueId) == [1_001, 1_002, 1_003, 1_000])
        #expect(pushed.all.map(\.1) == [[0], [1], [2], Array(3..<10)])
    }
}
