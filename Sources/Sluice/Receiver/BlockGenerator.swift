import DequeModule
import SluiceColumnar
import SluiceExecution
import Synchronization

/// Names a received block (Spark's `StreamBlockId`): "input-<streamId>-<uniqueId>".
public struct StreamBlockId: Hashable, Sendable, CustomStringConvertible {
    public let streamId: Int
    public let uniqueId: Int64

    public init(streamId: Int, uniqueId: Int64) {
        self.streamId = streamId
        self.uniqueId = uniqueId
    }

    public var description: String { "input-\(streamId)-\(uniqueId)" }
}

/// A queue of finished blocks with a fixed capacity: `put` waits while it is full (Spark's
/// `ArrayBlockingQueue` of `spark.streaming.blockQueueSize`), so a receiver cannot outrun storage without
/// bound.
final class BoundedQueue<Element>: @unchecked Sendable {
    // @unchecked: `items` is only touched with `condition` held.
    private var items = Deque<Element>()
    private let condition = PthreadCondition()
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    var count: Int { condition.locked { items.count } }

    /// Appends `item`, waiting while the queue is full.
    func put(_ item: Element) {
        condition.locked {
            while items.count >= capacity { condition.wait(nanoseconds: 100_000_000) }
            items.append(item)
            condition.broadcast()
        }
    }

    /// Takes the oldest item, waiting up to `nanoseconds` for one.
    func poll(nanoseconds: Int) -> Element? {
        condition.locked {
            if items.isEmpty { condition.wait(nanoseconds: nanoseconds) }
            guard let item = items.popFirst() else { return nil }
            condition.broadcast()
            return item
        }
    }
}

/// Records waiting for the next block: written straight into a columnar builder when the element type has a
/// block encoding (no per-record allocation; the builder's buffers are reused block after block), else kept
/// as elements.
struct PendingRecords<Element: Sendable>: Sendable {
    var builder: BlockBuilder?
    var elements: [Element] = []
    var count = 0

    mutating func append(_ element: Element, codec: ElementCodec<Element>?) throws {
        try withUnsafePointer(to: element) { try append(UnsafeBufferPointer(start: $0, count: 1), codec: codec) }
    }

    mutating func append(contentsOf elements: [Element], codec: ElementCodec<Element>?) throws {
        try elements.withUnsafeBufferPointer { try append($0, codec: codec) }
    }

    /// Appends `records`: `Int` and `String` records straight into their column, others through the codec.
    mutating func append(_ records: UnsafeBufferPointer<Element>, codec: ElementCodec<Element>?) throws {
        guard let codec, var builder = builder.take() else {
            elements.append(contentsOf: records)
            count += records.count
            return
        }
        defer {
            self.builder = builder
            count = builder.schema.count == 1 ? builder.withColumn(0) { $0.count } : builder.rowCount
        }
        let raw = UnsafeRawBufferPointer(records)
        if Element.self == Int.self, builder.schema == [ColumnType(.int64)] {
            // Safe: the records are Ints (checked just above).
            let ints = raw.assumingMemoryBound(to: Int.self)
            builder.withColumn(0) { $0.withAppender(of: Int64.self) { a in for i in ints { a.append(Int64(i)) } } }
        } else if Element.self == String.self, builder.schema == [ColumnType(.string)] {
            // Safe: the records are Strings (checked just above).
            let strings = raw.assumingMemoryBound(to: String.self)
            builder.withColumn(0) { $0.withBytesAppender { a in for s in strings { a.append(s) } } }
        } else {
            for record in records { try codec.append(record, to: &builder) }
        }
    }

    /// Appends `rows` records written straight into the columnar builder by `write`; false (nothing written)
    /// when records are kept as elements.
    mutating func appendEncoded(rows: Int, _ write: (inout BlockBuilder) throws -> Void) rethrows -> Bool {
        guard elements.isEmpty, var builder = builder.take() else { return false }
        defer { self.builder = builder }
        try write(&builder)
        count += rows
        return true
    }

    /// Bytes of the records written into the columnar builder (0 when records are kept as elements).
    var byteCount: Int { builder?.byteCount ?? 0 }

    /// The block of these records (the builder is left empty, for reuse). A one-column block is sealed where
    /// its records were written, without copying them (see `BlockBuilder.sealTakingBuffers()`).
    mutating func seal(id: StreamBlockId) throws -> ReceivedBlock<Element> {
        if var builder = builder.take(), count > 0, elements.isEmpty {
            defer { self.builder = builder }
            do {
                return ReceivedBlock(id: id, count: count, data: .columnar(try builder.sealTakingBuffers()))
            } catch {
                builder.reset()  // as before: a block that cannot be sealed is dropped with the error
                throw error
            }
        }
        return ReceivedBlock(id: id, count: count, data: .elements(elements))
    }
}

/// Cuts what a receiver stores one record at a time into blocks, every block interval (Spark's
/// `BlockGenerator`): records are rate-limited, then buffered; at each tick of the interval (on the context's
/// clock) the buffer becomes a block, which waits in a bounded queue until the pusher thread hands it to
/// `push`. Stopping refuses new records, turns what is buffered into a last block at once, and pushes every
/// block before returning: nothing added before `stop()` is lost.
///
/// A batch at time T can wait until the blocks of every tick up to T are pushed (``waitUntilPushed(through:)``),
/// so that it holds exactly the records stored before T (in Spark a block cut at T goes to this batch or the
/// next, by a race).
///
/// A columnar block that reaches ``splitBytes`` before its tick is cut at once, and the interval's records go on
/// into a new block of the same tick (Spark grows one block without bound; blocks of elements still do). At high rates every block then fits one
/// size of buffer that the pool recycles batch after batch: at 85M records/s, 125 ms blocks of 85 MB grew by
/// doubling (a copy each time) into buffers of whatever size the rate of the moment asked for, and the pool's
/// free buffers seldom had the size asked, so that the generator wrote into fresh pages and fell behind its
/// rate (page zeroing took a third of the job's CPU).
///
/// With a ``ReceiveMemory``, each block takes its memory from the budget when it is cut, before it is queued;
/// while a block waits for memory, adding records waits too (the receiver pauses), so what is buffered stays
/// within one block interval's records.
final class BlockGenerator<Element: Sendable>: Sendable {
    /// Spark's states, in order.
    enum Phase: Int, Sendable, Comparable {
        case initialized, active, stoppedAddingData, stoppedGeneratingBlocks, stoppedAll
        static func < (a: Phase, b: Phase) -> Bool { a.rawValue < b.rawValue }
    }

    private struct Current {
        var phase = Phase.initialized
        var pending = PendingRecords<Element>()
        /// A builder emptied after sealing, for the next block.
        var spare: BlockBuilder?
        /// The next tick's time.
        var nextTick: Time?
        /// The last tick cut (with or without a block).
        var lastTick: Time?
        /// The ticks of blocks cut and not yet pushed, in order.
        var unpushed = Deque<Time>()
        /// Blocks cut early (``splitBytes``) for the next tick.
        var earlyCuts = 0
    }

    let streamId: Int
    let interval: Duration
    let limiter: RateLimiter
    let codec: ElementCodec<Element>?
    /// Where the builders' buffers come from.
    let pool: BufferPool
    private let push: @Sendable (ReceivedBlock<Element>) throws -> Void
    private let onError: @Sendable (String, any Error) -> Void
    private let current = Mutex(Current())
    private let queue: BoundedQueue<ReceivedBlock<Element>>
    private let waiter: ClockWaiter
    private let threads = Mutex<(timer: JoinableThread?, pusher: JoinableThread?)>((nil, nil))
    private let progress = PthreadCondition()
    /// The budget blocks take their memory from (nil: not counted).
    let memory: ReceiveMemory?
    /// True while a block waits for memory: adding records waits.
    private let paused = Atomic<Bool>(false)
    /// Under a memory limit, the most bytes a block gathers (a quarter of the limit): past it, adding waits for
    /// the next tick, so that a burst cannot make one block larger than the budget.
    private let maxBlockBytes: Int
    /// True while the block being gathered is full: adding records waits for the next tick.
    private let full = Atomic<Bool>(false)
    /// A block this large (bytes of its columns) is cut at once, before its tick (see the type's doc).
    let splitBytes: Int
    /// The largest a block grows by default (`sluice.receiver.maxBlockBytes`): 15 MiB, so that with a last
    /// append's rows and the header a block fits a 16 MiB buffer of the pool.
    static var defaultSplitBytes: Int { 15 << 20 }
    /// Serializes cutting, sealing and queueing blocks, so that blocks reach the queue in the order of their
    /// ticks whichever thread cuts them (the timer, or a receiver's thread cutting a block early).
    private let cutting = Mutex(())

    init(
        streamId: Int, interval: Duration, queueCapacity: Int, limiter: RateLimiter, clock: any StreamingClock,
        codec: ElementCodec<Element>? = ElementCodecs.lookup(Element.self), pool: BufferPool = .shared,
        memory: ReceiveMemory? = nil, splitBytes: Int = BlockGenerator.defaultSplitBytes,
        push: @escaping @Sendable (ReceivedBlock<Element>) throws -> Void,
        onError: @escaping @Sendable (String, any Error) -> Void
    ) {
        self.streamId = streamId
        self.interval = interval
        self.limiter = limiter
        self.codec = codec
        self.pool = pool
        self.memory = memory
        let limit = memory?.reservation.budget.limit ?? .max
        self.maxBlockBytes = limit == .max ? .max : max(1 << 20, limit / 4)
        self.splitBytes = max(1, splitBytes)
        self.push = push
        self.onError = onError
        self.queue = BoundedQueue(capacity: queueCapacity)
        self.waiter = ClockWaiter(clock: clock)
    }

    var phase: Phase { current.withLock { $0.phase } }

    /// Blocks made and not yet pushed.
    var queuedBlocks: Int { queue.count }

    /// Starts the block timer and the pusher.
    func start() throws {
        // Ticks fall on multiples of the interval, as batch times do on multiples of the batch interval.
        let first = JobGenerator.firstBatchTime(now: waiter.clock.time, batchDuration: interval)
        try current.withLock { c throws(StreamingError) in
            guard c.phase == .initialized else {
                throw StreamingError(.illegalState, "the block generator of stream \(streamId) was already started")
            }
            c.phase = .active
            c.nextTick = first
            c.pending.builder = try? codec?.makeBuilder(pool: pool)
        }
        let timer = try JoinableThread(name: "block generator") { [self] in runTimer() }
        let pusher = try JoinableThread(name: "block pusher") { [self] in runPusher() }
        threads.withLock { $0 = (timer, pusher) }
    }

    /// Adds one record (after waiting for the rate limit).
    /// - Throws: ``StreamingError`` when the generator is not running; what encoding the record throws.
    func add(_ element: Element) throws {
        waitWhilePaused()
        limiter.waitToPush()
        let split = try current.withLock { c in
            guard c.phase == .active else { throw notActive(c.phase) }
            try c.pending.append(element, codec: codec)
            return checkFull(c.pending)
        }
        if split { cutEarly() }
    }

    /// Adds `elements`, rate-limited one by one, then all at once: they land in the same block.
    /// - Throws: ``StreamingError`` when the generator is not running.
    func add(contentsOf elements: [Element]) throws {
        waitWhilePaused()
        limiter.acquire(elements.count)
        let split = try current.withLock { c in
            guard c.phase == .active else { throw notActive(c.phase) }
            try c.pending.append(contentsOf: elements, codec: codec)
            return checkFull(c.pending)
        }
        if split { cutEarly() }
    }

    /// Adds `rows` records that `write` puts straight into the block's columns (after waiting for the rate
    /// limit); false when this generator keeps elements (no block encoding), with nothing added.
    /// - Throws: ``StreamingError`` when the generator is not running.
    func addEncoded(rows: Int, _ write: (inout BlockBuilder) -> Void) throws -> Bool {
        waitWhilePaused()
        limiter.acquire(rows)
        let (stored, split) = try current.withLock { c in
            guard c.phase == .active else { throw notActive(c.phase) }
            let stored = c.pending.appendEncoded(rows: rows, write)
            return (stored, checkFull(c.pending))
        }
        if split { cutEarly() }
        return stored
    }

    /// Marks the block being gathered full once it holds ``maxBlockBytes``; true when it holds ``splitBytes``
    /// (to be cut early).
    @inline(__always)
    private func checkFull(_ pending: PendingRecords<Element>) -> Bool {
        let bytes = pending.byteCount
        if bytes >= maxBlockBytes { full.store(true, ordering: .releasing) }
        return bytes >= splitBytes
    }

    /// Waits while a block waits for memory or the block being gathered is full (the receiver pauses), unless
    /// the generator stops meanwhile.
    @inline(__always)
    private func waitWhilePaused() {
        guard paused.load(ordering: .relaxed) || full.load(ordering: .relaxed) else { return }
        progress.locked {
            while (paused.load(ordering: .acquiring) || full.load(ordering: .acquiring)) && phase == .active {
                progress.wait(nanoseconds: 10_000_000)
            }
        }
    }

    /// Where `block` is kept under the memory budget (see ``ReceiveMemory``): in memory when it fits, else in a
    /// spill file, else it waits for memory. Adding records pauses while the block spills or waits, so that
    /// the next block cannot grow meanwhile. A block is kept over the budget once the generator stops, so
    /// stopping never waits for memory and loses nothing.
    func admit(_ block: ReceivedBlock<Element>) -> ReceivedBlock<Element> {
        guard let memory else { return block }
        if let kept = memory.reserve(block, force: phase != .active) { return kept }
        paused.store(true, ordering: .releasing)
        defer {
            paused.store(false, ordering: .releasing)
            progress.locked { progress.broadcast() }
        }
        var waited = false
        var spillFailed = false
        while true {
            if let kept = memory.reserve(block, force: phase != .active) { return kept }
            if !spillFailed {
                do {
                    if let spilled = try memory.spill(block) { return spilled }
                } catch {
                    onError("Block \(block.id) could not spill; receiving pauses until memory frees", error)
                    spillFailed = true
                }
            }
            if !waited {
                waited = true
                let budget = memory.reservation.budget
                onError(
                    "Receiving paused: block \(block.id) (\(block.memoryBytes) bytes) waits for memory",
                    MemoryError(.budgetExceeded(
                        consumer: memory.reservation.consumer, requested: block.memoryBytes,
                        reserved: budget.reservedBytes, limit: budget.limit)))
            }
            memory.waitForRelease(nanoseconds: 50_000_000)
        }
    }

    private func notActive(_ phase: Phase) -> StreamingError {
        StreamingError(
            .illegalState,
            "Cannot add data to stream \(streamId): its block generator has "
                + (phase == .initialized ? "not been started" : "been stopped"))
    }

    private func runTimer() {
        while let tick = current.withLock({ $0.phase == .active ? $0.nextTick : nil }) {
            guard waiter.wait(until: tick) else { return }
            cutBlock(at: tick)
        }
    }

    /// Turns the buffer into the block of the interval ending at `tick` and queues it.
    private func cutBlock(at tick: Time) {
        cutting.withLock { _ in
            var cut = current.withLock { c -> PendingRecords<Element>? in
                c.nextTick = tick + interval
                c.lastTick = tick
                c.earlyCuts = 0
                return c.pending.count > 0 ? Self.takePending(&c, for: tick, codec: codec, pool: pool) : nil
            }
            if full.exchange(false, ordering: .acquiringAndReleasing) { progress.locked { progress.broadcast() } }
            guard cut != nil else {
                progress.locked { progress.broadcast() }
                return
            }
            seal(&cut, id: StreamBlockId(streamId: streamId, uniqueId: (tick - interval).milliseconds))
        }
    }

    /// Cuts the block being gathered before its tick, when it holds ``splitBytes`` (another thread may have cut
    /// it meanwhile). Its id is the interval's start plus the number of early blocks in it, in milliseconds: a
    /// tick's ids stay within its interval, so at most the interval's milliseconds less one blocks are cut early
    /// (the last one then grows until the tick).
    private func cutEarly() {
        cutting.withLock { _ in
            var cut: PendingRecords<Element>?
            let id = current.withLock { c -> StreamBlockId? in
                guard c.phase == .active, let tick = c.nextTick, c.pending.byteCount >= splitBytes,
                    Int64(c.earlyCuts + 1) < interval.wholeMilliseconds
                else { return nil }
                c.earlyCuts += 1
                cut = Self.takePending(&c, for: tick, codec: codec, pool: pool)
                return StreamBlockId(streamId: streamId, uniqueId: (tick - interval).milliseconds + Int64(c.earlyCuts))
            }
            if let id { seal(&cut, id: id) }
        }
    }

    /// Takes the records gathered for `tick` out of `c`, leaving an empty buffer (the spare builder) in their
    /// place.
    private static func takePending(
        _ c: inout Current, for tick: Time, codec: ElementCodec<Element>?, pool: BufferPool
    ) -> PendingRecords<Element> {
        var fresh = PendingRecords<Element>()
        fresh.builder = c.spare ?? (try? codec?.makeBuilder(pool: pool))
        c.spare = nil
        swap(&fresh, &c.pending)
        c.unpushed.append(tick)
        return fresh
    }

    /// Seals `cut` as block `id` and queues it (under the memory budget: once admitted); its builder becomes the
    /// spare one. Called with `cutting` held.
    private func seal(_ cut: inout PendingRecords<Element>?, id: StreamBlockId) {
        // Moved out, not copied: a second reference to the builder would make its reset (in seal) copy the
        // columns and drop their memory, and every block would grow its buffers again from nothing.
        guard var taken = cut.take() else { return }
        do {
            let block = try taken.seal(id: id)
            current.withLock { c in if c.spare == nil { c.spare = taken.builder } }
            queue.put(admit(block))
        } catch {
            current.withLock { _ = $0.unpushed.popLast() }
            onError("Block \(id) of \(taken.count) records could not be made; its records are lost", error)
        }
    }

    /// Waits until every tick up to `time` was cut and its block pushed, the generator stopped adding data, a
    /// block waits for memory, or `timeoutMilliseconds` passed; true unless it timed out.
    @discardableResult
    func waitUntilPushed(through time: Time, timeoutMilliseconds: Int) -> Bool {
        let deadline = monotonicNanoseconds() &+ UInt64(max(0, timeoutMilliseconds)) &* 1_000_000
        return progress.locked {
            while true {
                // A block waiting for memory goes to a later batch: a batch never waits for memory that only
                // finished batches give back.
                if paused.load(ordering: .acquiring) { return true }
                let done = current.withLock { c in
                    // Before the first tick nothing was stored (a batch run again after recovery).
                    let cut = c.lastTick.map { $0 >= time } ?? (c.nextTick.map { $0 > time } ?? false)
                    return c.phase != .active || cut && (c.unpushed.first.map { $0 > time } ?? true)
                }
                if done { return true }
                let now = monotonicNanoseconds()
                if now >= deadline { return false }
                progress.wait(nanoseconds: Int(min(deadline - now, 10_000_000)))
            }
        }
    }

    private func runPusher() {
        while true {
            if let block = queue.poll(nanoseconds: 10_000_000) {
                do {
                    try push(block)
                } catch {
                    onError("Error in block pushing thread", error)
                }
                current.withLock { _ = $0.unpushed.popFirst() }
                progress.locked { progress.broadcast() }
            } else if phase >= .stoppedGeneratingBlocks && queue.count == 0 {
                return
            }
        }
    }

    /// Stops: new records are refused, the buffer becomes a last block at once, and every block is pushed
    /// before this returns. Only an active generator stops; otherwise nothing happens.
    func stop() {
        let wasActive = current.withLock { c -> Bool in
            guard c.phase == .active else { return false }
            c.phase = .stoppedAddingData
            return true
        }
        guard wasActive else { return }
        waiter.interrupt()
        memory?.wakeAll()
        let (timer, pusher) = threads.withLock { $0 }
        timer?.join()
        if let tick = current.withLock({ $0.nextTick }) { cutBlock(at: tick) }
        current.withLock { $0.phase = .stoppedGeneratingBlocks }
        pusher?.join()
        current.withLock { $0.phase = .stoppedAll }
    }
}
