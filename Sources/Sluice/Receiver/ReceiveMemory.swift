import SluiceColumnar
import SluiceExecution

/// One receiver stream's blocks under the memory budget (`sluice.memory.limit`, category `receive`): each block
/// reserves its bytes when it is cut, before it is queued, and gives them back when the last batch holding it
/// is dropped. When the budget is short, a columnar block of a stream whose storage level uses disk
/// (`MEMORY_AND_DISK_SER`, the receivers' default) is spilled, zstd-compressed, and read back when its batch
/// runs; any other block waits for memory, and the receiver stops taking records meanwhile (a socket is not
/// read, so its sender waits on TCP). Spark has no such bound: its received blocks live in the block manager's
/// storage memory, which drops or spills them, or fails, without pausing a receiver.
///
/// A block that can never fit (larger than the whole limit), and blocks cut while the receiver stops, are
/// kept over the budget (the report shows it) rather than lost or waited for forever.
final class ReceiveMemory: Sendable {
    let reservation: MemoryReservation
    /// Where blocks spill; nil when the storage level keeps them in memory only.
    private let spill: SpillDirectory?
    private let compressionLevel: Int32
    private let streamId: Int
    /// Signalled when a block's bytes are given back.
    private let released = PthreadCondition()

    init(engine: ExecutionEngine, streamId: Int, storageLevel: StorageLevel) {
        reservation = engine.memory.reservation(for: "receiver \(streamId)", category: .receive)
        spill = storageLevel.useDisk ? engine.spill : nil
        compressionLevel = engine.compressionLevel
        self.streamId = streamId
    }

    /// `block` kept in memory with its bytes reserved; nil when the budget is short, unless `force` (or the block
    /// is larger than the whole limit), which keeps it over the budget.
    func reserve<Element>(_ block: ReceivedBlock<Element>, force: Bool) -> ReceivedBlock<Element>? {
        guard block.hold == nil else { return block }
        let bytes = block.memoryBytes
        if !reservation.tryGrow(by: bytes) {
            guard force || bytes > reservation.budget.limit else { return nil }
            reservation.overcommit(by: bytes)
        }
        var kept = block
        kept.hold = MemoryHold(reservation: reservation, bytes: bytes, released: released)
        return kept
    }

    /// `block` moved to a spill file; nil when the storage level keeps blocks in memory only or the block is not
    /// columnar.
    /// - Throws: ``StorageError`` when the write failed (a full disk); no file is left then.
    func spill<Element>(_ block: ReceivedBlock<Element>) throws -> ReceivedBlock<Element>? {
        guard let spill, case .columnar(let columns) = block.data else { return nil }
        var kept = block
        kept.data = .spilled(
            try SpilledBlock.write(
                columns, what: "received block \(block.id)", purpose: "input-\(streamId)", to: spill,
                level: compressionLevel))
        return kept
    }

    /// Sleeps until some block's bytes are given back or `nanoseconds` pass (memory other consumers free is
    /// seen at the next try).
    func waitForRelease(nanoseconds: Int) {
        released.locked { released.wait(nanoseconds: nanoseconds) }
    }

    /// Wakes every wait (the receiver is stopping).
    func wakeAll() {
        released.locked { released.broadcast() }
    }
}

/// A received block's bytes reserved from the budget, given back when the last copy of the block goes.
final class MemoryHold: Sendable {
    private let reservation: MemoryReservation
    let bytes: Int
    private let released: PthreadCondition

    init(reservation: MemoryReservation, bytes: Int, released: PthreadCondition) {
        self.reservation = reservation
        self.bytes = bytes
        self.released = released
    }

    deinit {
        reservation.shrink(by: bytes)
        released.locked { released.broadcast() }
    }
}
