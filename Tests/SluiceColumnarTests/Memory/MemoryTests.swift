import Testing
@testable import SluiceColumnar
import SluiceTesting

@Suite struct ArenaBufferTests {
    @Test func appendsGrowAndKeepAlignment() throws {
        var b = try ArenaBuffer()
        for i in 0..<10_000 { b.append(littleEndian: UInt32(i)) }
        #expect(b.count == 40_000)
        b.withUnsafeBytes { bytes in
            #expect(Int(bitPattern: bytes.baseAddress) % BufferAllocator.alignment == 0)
            #expect(bytes.loadUnaligned(fromByteOffset: 4 * 9_999, as: UInt32.self) == 9_999)
        }
    }

    @Test func copiesAreIndependent() throws {
        var a = try ArenaBuffer(copying: [1, 2, 3])
        var b = a
        b.append(littleEndian: UInt8(4))
        a.set(littleEndian: UInt8(9), at: 0)
        #expect(a.bytes == [9, 2, 3])
        #expect(b.bytes == [1, 2, 3, 4])
    }

    @Test func exhaustionIsAnErrorOnPlannedAllocations() throws {
        let counting = CountingAllocator()
        let pool = BufferPool(allocator: counting.allocator, maxRetainedBytes: 0)
        counting.failAfter(0)
        #expect(throws: MemoryError(.allocationFailed(bytes: 1 << 20))) {
            _ = try ArenaBuffer(minimumCapacity: 1 << 20, pool: pool)
        }
        counting.failAfter(nil)
        var b = try ArenaBuffer(minimumCapacity: 64, pool: pool)
        counting.failAfter(0)
        #expect(throws: MemoryError.self) { try b.reserveCapacity(1 << 20) }
        #expect(b.count == 0)
    }

    /// A growth the allocator refuses is recorded, not a trap: that write and later ones are left out and the
    /// owner throws before the bytes are used. (Trapped before: fatalError while growing.)
    @Test func exhaustionWhileGrowingIsRecordedAndThrownByTheOwner() throws {
        let counting = CountingAllocator()
        let pool = BufferPool(allocator: counting.allocator, maxRetainedBytes: 0)
        var b = try ArenaBuffer(minimumCapacity: 64, pool: pool)
        counting.failAfter(0)
        for i in 0..<1_000 { b.append(littleEndian: UInt64(i)) }
        #expect(b.count == 64, "the writes that fit went in; the rest were left out")
        #expect(b.allocationFailure != nil)
        #expect(throws: MemoryError.self) { try b.checkAllocation() }
        counting.failAfter(nil)
        b.removeAll()
        b.append(littleEndian: UInt64(7))
        #expect(b.allocationFailure == nil && b.count == 8, "removeAll starts over")

        // Through the owners: a block builder's seal, a binary writer's bytes, row and column appenders.
        var builder = try BlockBuilder(schema: [ColumnType(.int64), ColumnType(.string)], pool: pool)
        counting.failAfter(0)
        for i in 0..<20_000 {
            builder.appendRow {
                $0.write(Int64(i))
                $0.write(string: "word number \(i)")
            }
        }
        builder.withColumn(1) { c in c.withBytesAppender { for _ in 0..<1_000 { $0.append("more words") } } }
        builder.withColumn(0) { c in c.withAppender(of: Int64.self) { for i in 0..<1_000 { $0.append(Int64(i)) } } }
        #expect(throws: MemoryError.self) { _ = try builder.seal() }
        #expect(throws: MemoryError.self) { _ = try builder.withColumn(1) { try $0.finish() } }

        counting.failAfter(nil)
        var writer = try BinaryWriter(pool: pool)
        counting.failAfter(0)
        for i in 0..<10_000 { writer.writeString("value \(i)") }
        #expect(throws: MemoryError.self) { try writer.withWrittenBytes { _ in } }
        counting.failAfter(nil)
        builder.reset()
        builder.appendRow {
            $0.write(Int64(1))
            $0.write(string: "after")
        }
        #expect(try builder.seal().rowCount == 1, "a reset builder works again")
    }
}

@Suite struct BufferPoolTests {
    @Test func sizeClassesArePowersOfTwoFrom64Bytes() {
        #expect(BufferPool.sizeClass(for: 0) == 0)
        #expect(BufferPool.sizeClass(for: 64) == 0)
        #expect(BufferPool.sizeClass(for: 65) == 1)
        #expect(BufferPool.sizeClass(for: 1 << 30) == 24)
        #expect(BufferPool.sizeClass(for: (1 << 30) + 1) == nil)
    }

    @Test func steadyStateOfRecycledBlocksCallsNoAllocator() throws {
        let counting = CountingAllocator()
        let pool = BufferPool(allocator: counting.allocator, maxRetainedBytes: 64 << 20)
        var builder = try BlockBuilder(schema: [ColumnType(.int64), ColumnType(.string, nullable: true)], pool: pool)
        func oneBatch() throws {
            builder.reset()
            for i in 0..<5_000 {
                builder.write(Int64(i))
                if i % 7 == 0 { builder.writeNulls() } else { builder.write(string: "word\(i % 100)") }
                builder.endRow()
            }
            var block = try builder.seal()
            #expect(block.rowCount == 5_000)
            block.recycle()
        }
        for _ in 0..<3 { try oneBatch() }
        let before = counting.allocations
        for _ in 0..<50 { try oneBatch() }
        #expect(counting.allocations == before, "steady state must reuse pooled buffers")
        #expect(pool.statistics.reuses > 50)
    }

    @Test func retentionIsBoundedAndTrimReturnsMemory() throws {
        let counting = CountingAllocator()
        let pool = BufferPool(allocator: counting.allocator, maxRetainedBytes: 1 << 20)
        do {
            let buffers = try (0..<8).map { _ in try ArenaBuffer(minimumCapacity: 512 << 10, pool: pool) }
            #expect(buffers.count == 8)
        }
        #expect(pool.statistics.bytesRetained <= 1 << 20)
        #expect(counting.liveBytes == pool.statistics.bytesRetained)
        pool.trim()
        #expect(counting.liveBytes == 0)
        #expect(pool.statistics.bytesInUse == 0)
    }

    @Test func loweringTheRetentionGivesBackWhatIsOver() throws {
        let counting = CountingAllocator()
        let pool = BufferPool(allocator: counting.allocator, maxRetainedBytes: 8 << 20)
        do {
            let buffers = try (0..<8).map { _ in try ArenaBuffer(minimumCapacity: 512 << 10, pool: pool) }
            #expect(buffers.count == 8)
        }
        #expect(pool.statistics.bytesRetained == 4 << 20)
        pool.retainAtMost(1 << 20)
        #expect(pool.maxRetainedBytes == 1 << 20)
        #expect(pool.statistics.bytesRetained <= 1 << 20)
        #expect(counting.liveBytes == pool.statistics.bytesRetained, "what is over went back to the allocator")
        _ = try ArenaBuffer(minimumCapacity: 4 << 20, pool: pool)
        #expect(pool.statistics.bytesRetained <= 1 << 20, "the lower limit holds from then on")
    }

    @Test func concurrentUseKeepsCountsConsistent() async throws {
        let counting = CountingAllocator()
        let pool = BufferPool(allocator: counting.allocator, maxRetainedBytes: 8 << 20)
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    for i in 0..<2_000 {
                        guard var b = try? ArenaBuffer(minimumCapacity: 64 << ((i + t) % 10), pool: pool) else { return }
                        b.append(littleEndian: UInt64(i))
                    }
                }
            }
        }
        #expect(pool.statistics.bytesInUse == 0)
        pool.trim()
        #expect(counting.liveBytes == 0)
    }
}

@Suite struct MemoryBudgetTests {
    @Test func reservationsFailPastTheLimitAndNameTheConsumer() throws {
        let budget = MemoryBudget(limit: 1_000)
        let store = budget.reservation(for: "block store")
        try store.grow(by: 600)
        let shuffle = budget.reservation(for: "shuffle 3")
        let error = #expect(throws: MemoryError.self) { try shuffle.grow(by: 500) }
        #expect(error?.description.contains("'shuffle 3' asked for 500 bytes, 600 of 1000") == true)
        #expect(shuffle.size == 0)
        #expect(shuffle.tryGrow(by: 400))
        #expect(budget.availableBytes == 0)
        store.shrink(by: 100)
        #expect(budget.reservedBytes == 900)
        #expect(budget.report().byConsumer == ["block store": 500, "shuffle 3": 400])
    }

    @Test func categoriesAddUpAndAnOvercommitIsShown() throws {
        let budget = MemoryBudget(limit: 1_000)
        let receive = budget.reservation(for: "receiver 0", category: .receive)
        let state = budget.reservation(for: "state of mapWithState", category: .state)
        try receive.grow(by: 700)
        #expect(!state.tryGrow(by: 400))
        state.overcommit(by: 400)  // held whatever the budget says
        #expect(budget.reservedBytes == 1_100)
        #expect(budget.availableBytes == 0)
        #expect(budget.reservedByCategory == [.receive: 700, .state: 400])
        #expect(budget.report().byCategory == [.receive: 700, .state: 400])
        receive.free()
        #expect(budget.reservedByCategory == [.state: 400])
        #expect(receive.tryGrow(by: 600))
        #expect(!receive.tryGrow(by: 1))
    }

    @Test func releasedWhenFreedOrDropped() throws {
        let budget = MemoryBudget(limit: 100)
        do {
            let r = budget.reservation(for: "window")
            try r.resize(to: 80)
            #expect(budget.reservedBytes == 80)
        }
        #expect(budget.reservedBytes == 0)
        let r = budget.reservation(for: "state")
        try r.grow(by: 100)
        r.free()
        #expect(budget.reservedBytes == 0)
    }

    @Test func concurrentReservationsNeverPassTheLimit() async {
        let budget = MemoryBudget(limit: 10_000)
        let reservations = (0..<8).map { budget.reservation(for: "task \($0)") }
        await withTaskGroup(of: Void.self) { group in
            for r in reservations {
                group.addTask {
                    for _ in 0..<1_000 { _ = r.tryGrow(by: 7) }
                }
            }
        }
        // 56,000 bytes were asked for: the budget fills to within one request of its limit and no further.
        let granted = reservations.reduce(0) { $0 + $1.size }
        #expect(granted <= 10_000 && granted > 10_000 - 7)
        #expect(budget.reservedBytes == granted)
        for r in reservations { r.free() }
        #expect(budget.reservedBytes == 0)
    }

    /// (Not in a build with the system allocator, made for the sanitizers.)
    @Test(.enabled(if: AllocatorStatistics.current() != nil))
    func jemallocIsTheProcessAllocatorAndReportsStatistics() throws {
        let before = try #require(AllocatorStatistics.current())
        var buffer = try ArenaBuffer(minimumCapacity: 64 << 20, pool: BufferPool(allocator: .standard, maxRetainedBytes: 0))
        buffer.appendZeros(64 << 20)
        let after = try #require(AllocatorStatistics.current())
        // Other tests allocate and free in the same arena meanwhile: the 64 MiB shows, give or take their churn.
        #expect(after.bufferArena - before.bufferArena >= (64 << 20) - (8 << 20))
        #expect(after.allocated > before.allocated)
        #expect(after.resident > 0)
        withExtendedLifetime(buffer) {}
    }
}

@Suite struct RecycleTests {
    @Test func aRecycledBlockGivesItsStorageObjectToTheNextSeal() throws {
        let pool = BufferPool(allocator: .standard, maxRetainedBytes: 1 << 20)
        var builder = try BlockBuilder(schema: [ColumnType(.int64)], pool: pool)
        builder.write(Int64(1))
        builder.endRow()
        var first = try builder.seal()
        let id = ObjectIdentifier(first.storage)
        first.recycle()
        #expect(first.rowCount == 0 && first.columnCount == 0 && first.byteCount == 0)
        let second = try builder.seal()
        #expect(ObjectIdentifier(second.storage) == id, "the storage object itself is reused: no malloc")
    }

    @Test func aBlockStillReadIsNotRecycled() throws {
        let pool = BufferPool(allocator: .standard, maxRetainedBytes: 1 << 20)
        var block = try ElementCodecs.standard(String.self).encode(["kept", "alive"], pool: pool)
        let column = block.column(0)
        let id = ObjectIdentifier(block.storage)
        block.recycle()
        var other = try ElementCodecs.standard(String.self).encode(["x", "y"], pool: pool)
        #expect(ObjectIdentifier(other.storage) != id)
        #expect(column.string(at: 1) == "alive", "a column read from a recycled block stays valid")
        other.recycle()
    }
}

@Suite struct PoolEvictionTests {
    @Test func aFullPoolEvictsOtherClassesForTheBufferJustReleased() throws {
        let counting = CountingAllocator()
        let pool = BufferPool(allocator: counting.allocator, maxRetainedBytes: 1 << 20)
        do {  // fill the pool with free 64 KiB buffers
            let small = try (0..<16).map { _ in try ArenaBuffer(minimumCapacity: 64 << 10, pool: pool) }
            #expect(small.count == 16)
        }
        #expect(pool.statistics.bytesRetained == 1 << 20)
        var builder = try BlockBuilder(schema: [ColumnType(.int64)], pool: pool)
        builder.withColumn(0) { $0.withAppender(of: Int64.self) { a in for _ in 0..<60_000 { a.append(7) } } }
        var block = try builder.seal()  // a 512 KiB class
        let id = ObjectIdentifier(block.storage)
        block.recycle()
        #expect(pool.statistics.bytesRetained <= 1 << 20)
        let again = try builder.seal()
        #expect(ObjectIdentifier(again.storage) == id, "the recycled block was kept, older small buffers evicted")
        pool.trim()
        withExtendedLifetime(again) {}
    }
}

@Suite struct LargerClassReuseTests {
    /// A request whose class has no free buffer takes one of the next two classes before calling the allocator;
    /// a free buffer more than 4x larger is left alone.
    @Test func aFreeBufferUpToTwoClassesLargerServesARequest() throws {
        let counting = CountingAllocator()
        let pool = BufferPool(allocator: counting.allocator, maxRetainedBytes: 64 << 20)
        do { _ = try ArenaBuffer(minimumCapacity: 64 << 10, pool: pool) }  // one free 64 KiB buffer
        let calls = counting.allocations
        var buffer = try ArenaBuffer(minimumCapacity: 20 << 10, pool: pool)  // a 32 KiB class
        #expect(counting.allocations == calls, "served from the free 64 KiB buffer")
        #expect(buffer.capacity == 64 << 10)
        buffer.appendZeros(64 << 10)  // the whole capacity is the buffer's
        #expect(pool.statistics.reuses == 1)
        withExtendedLifetime(buffer) {}
        do { _ = try ArenaBuffer(minimumCapacity: 1 << 20, pool: pool) }  // a free 1 MiB buffer
        let before = counting.allocations
        do { _ = try ArenaBuffer(minimumCapacity: 200 << 10, pool: pool) }  // 256 KiB: 1 MiB is 4x, taken
        #expect(counting.allocations == before)
        do { _ = try ArenaBuffer(minimumCapacity: 100 << 10, pool: pool) }  // 128 KiB: 1 MiB is 8x, not taken
        #expect(counting.allocations == before + 1)
    }

    #if !SLUICE_SYSTEM_ALLOCATOR
    /// The buffer arena leaves large freed extents to its decay: jemalloc would otherwise purge each one of 8 MiB
    /// or more at once, and the pool's next large buffer would be fresh pages.
    @Test func theBufferArenaDoesNotPurgeLargeExtentsAtOnce() {
        #expect(JemallocArena.oversizeThreshold == Int.max)
    }
    #endif
}

@Suite struct ReuseTests {
    @Test func writingEnvelopesIntoAClearedBufferKeepsItsStorage() throws {
        let block = try ElementCodecs.standard(String.self).encode((0..<20_000).map { "w\($0 % 300)" })
        let compressor = try ZstdCompressor()
        var out = try ArenaBuffer(minimumCapacity: block.byteCount)
        let id = ObjectIdentifier(out.storage)
        for _ in 0..<3 {
            out.removeAll()
            try block.withUnsafeBytes { try Envelope.write($0, compressor: compressor, to: &out) }
            #expect(ObjectIdentifier(out.storage) == id)
        }
    }
}

@Suite struct PlannedAllocationTests {
    @Test func reservingRowsAheadThrowsInsteadOfTrappingWhenMemoryRunsOut() throws {
        let counting = CountingAllocator()
        let pool = BufferPool(allocator: counting.allocator, maxRetainedBytes: 0)
        var builder = try BlockBuilder(schema: [ColumnType(.int64), ColumnType(.string, nullable: true)], pool: pool)
        try builder.reserveCapacity(rows: 1_000, bytesPerVariableColumn: 8_000)
        counting.failAfter(0)
        let error = #expect(throws: MemoryError.self) { try builder.reserveCapacity(rows: 1 << 20) }
        #expect(error?.description.contains("out of memory") == true)
        for i in 0..<1_000 {  // what was reserved before still works without the allocator
            builder.write(Int64(i))
            builder.write(string: "w\(i % 10)")
            builder.endRow()
        }
        #expect(builder.rowCount == 1_000)
    }
}

