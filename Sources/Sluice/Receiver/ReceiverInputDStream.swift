import Logging
import SluiceColumnar
import SluiceExecution
import Synchronization

/// A block a receiver stored: columnar when the element type has a block encoding, else the elements.
struct ReceivedBlock<Element: Sendable>: Sendable {
    enum Data: Sendable {
        case columnar(Block)
        case elements([Element])
        /// A columnar block moved to disk because the memory budget was short.
        case spilled(SpilledBlock)
    }

    let id: StreamBlockId
    let count: Int
    var data: Data
    /// Its sequence number in the receiver's write-ahead log, when the log is on.
    var logSequence: Int64?
    /// Its bytes reserved from the memory budget (see ``ReceiveMemory``); nil for blocks not counted (spilled,
    /// replayed from the write-ahead log, or made with no budget).
    var hold: MemoryHold?

    init(id: StreamBlockId, count: Int, data: Data, logSequence: Int64? = nil) {
        self.id = id
        self.count = count
        self.data = data
        self.logSequence = logSequence
    }

    /// The bytes the block occupies in memory (estimated for elements).
    var memoryBytes: Int {
        switch data {
        case .columnar(let block): block.byteCount
        case .elements(let elements): SizeEstimate.of(elements)
        case .spilled: 0
        }
    }

    /// The block's columns, read back from disk when it was spilled; nil when it holds elements.
    /// - Throws: ``StorageError`` when a spilled block cannot be read back.
    func columns() throws -> Block? {
        switch data {
        case .columnar(let block): block
        case .spilled(let file): try file.read(what: "received block \(id)")
        case .elements: nil
        }
    }
}

/// What the context asks of a receiver-fed stream (Spark's `ReceiverTracker` duties, per stream).
/// An input stream whose rate follows its batches (backpressure): told of every completed batch.
protocol RateControlledNode: AnyObject, Sendable {
    /// Feeds a completed batch to the rate controller.
    func batchCompleted(_ batch: BatchInfo)
}

protocol ReceiverStreamNode: RateControlledNode {
    var streamId: Int { get }
    /// Starts the stream's receiver.
    func startReceiver() throws
    /// Stops the receiver; everything it stored reaches the stream's unallocated blocks first.
    func stopReceiver()
    /// Gives the blocks received so far to batch `time` and reports the batch's input info.
    func allocateBlocks(to time: Time)
    /// Whether blocks wait for a batch.
    var hasUnallocatedBlocks: Bool { get }
    /// The write-ahead log's appends, when the stream has one.
    var writeAheadLogStatistics: WriteStatistics? { get }
    /// A checkpoint of batch `time` is durable: the write-ahead log drops what it covers.
    func checkpointWritten(at time: Time)
}

/// A stream fed by a receiver (Spark's `ReceiverInputDStream`): the receiver's blocks are given to the next
/// batch when it is generated, and each block becomes one partition of the batch's RDD.
///
/// With backpressure (`spark.streaming.backpressure.enabled`) or an estimator of the program's own
/// (``rateEstimator``), each completed batch feeds the estimator and the rate it returns limits the receiver.
/// Two departures from Spark, where its users suffer: the first batch's processing rate becomes the limit at
/// once when no rate was set (Spark waits for the estimator's second batch, so a backlog floods it), and the
/// limit never falls below `sluice.backpressure.floor` (0.9) times the last batch's processing rate (Spark's
/// integral term drops it to the minimum rate after any hiccup, stopping ingestion until the backlog drains,
/// then swings back: the floor drains a backlog while ingesting near capacity).
public final class ReceiverInputDStream<Element: Sendable>: InputDStream<Element>, ReceiverStreamNode,
    @unchecked Sendable
{
    private struct Blocks {
        var unallocated: [ReceivedBlock<Element>] = []
        var allocated: [Time: [ReceivedBlock<Element>]] = [:]
        /// After recovery: the last batch the log says took blocks. Earlier batches run again take no new
        /// blocks, so that batches keep taking blocks in sequence order.
        var replayedThrough: Time?
    }

    /// The write-ahead log's bookkeeping: which logged blocks batches took, and what checkpoints cover.
    private struct Logging {
        var log: WriteAheadLog?
        /// The last sequence number each batch took (blocks are logged and taken in sequence order).
        var takenThrough: [Time: Int64] = [:]
        /// Every block up to this sequence number is in a checkpointed batch.
        var covered: Int64 = -1
        /// What the checkpoint being written covers, until it is durable.
        var covering: (time: Time, sequence: Int64)?
        /// Restored from a checkpoint: blocks after `covered` are replayed from the log at start.
        var recovering = false
    }

    private struct Control {
        var estimator: (any RateEstimator)?
        /// Whether the program installed the estimator (it then runs without the backpressure setting).
        var installed = false
        var primed = false
        var lastTerms: PIDTerms?
    }

    let receiver: Receiver<Element>
    private let blocks = Mutex(Blocks())
    private let logging = Mutex(Logging())
    /// Held while a block is logged and queued.
    private let appending = Mutex(())
    private let control = Mutex(Control())
    private let supervisorSlot = Mutex<ReceiverSupervisor<Element>?>(nil)
    private let backpressure: Bool
    private let floor: Double
    private let releasesBlocksAtBatchEnd: Bool

    init(context: StreamingContext, receiver: Receiver<Element>, name: String) {
        self.receiver = receiver
        // The context validated its configuration when it was made.
        self.backpressure = (try? context.conf.bool("spark.streaming.backpressure.enabled")) ?? false
        self.floor = ((try? context.conf.double("sluice.backpressure.floor")) ?? nil) ?? 0.9
        self.releasesBlocksAtBatchEnd = (try? context.conf.bool("sluice.receiver.releaseBlocksAtBatchEnd")) ?? true
        super.init(context: context, name: name)
    }

    /// Spark's PID estimator with the `spark.streaming.backpressure.pid.*` settings.
    /// The estimator backpressure uses for this stream: Spark's PID estimator when
    /// `spark.streaming.backpressure.enabled` is true; set one of your own (before `start()` or while running)
    /// to control the rate yourself, with or without that setting.
    public var rateEstimator: (any RateEstimator)? {
        get { control.withLock { $0.estimator } }
        set {
            control.withLock {
                $0.estimator = newValue
                $0.installed = newValue != nil
                $0.primed = false
            }
        }
    }

    /// The receiver's current limit in records per second (nil: unlimited).
    public var currentRateLimit: Double? { supervisor?.generator.limiter.rate }

    var supervisor: ReceiverSupervisor<Element>? { supervisorSlot.withLock { $0 } }

    // MARK: Receiving

    func startReceiver() throws {
        try receiver.validate()
        guard floor <= 1 else {
            throw ConfigurationError(key: "sluice.backpressure.floor", value: "\(floor)", expected: "a number from 0 to 1")
        }
        if backpressure {
            let estimator = try PIDRateEstimator(conf: context.conf, batchDuration: context.batchDuration)
            control.withLock { if !$0.installed { $0.estimator = estimator } }
        }
        try openLog()
        let supervisor = try ReceiverSupervisor(receiver: receiver, streamId: streamId, context: context) {
            [weak self] block in try self?.add(block)
        }
        supervisorSlot.withLock { $0 = supervisor }
        try supervisor.start()
    }

    func stopReceiver() {
        supervisor?.stop("Stopped by driver", error: nil)
        logging.withLock { $0.log }?.close()
    }

    /// Keeps a block the receiver made until a batch takes it; with the write-ahead log on, the block is
    /// logged first (a block that cannot be logged is still kept, and the failure reported).
    private func add(_ block: ReceivedBlock<Element>) throws {
        guard block.count > 0 else { return }
        func keep() { blocks.withLock { $0.unallocated.append(block) } }
        guard let log = logging.withLock({ $0.log }) else { return keep() }
        let columns: Block
        do {
            // A spilled block is read back to be logged: the log needs its bytes, memory holds it only meanwhile.
            guard let read = try block.columns() else { return keep() }
            columns = read
        } catch {
            keep()
            throw error
        }
        // Logged and queued under one lock, so that batches take blocks in sequence order; not the blocks'
        // lock, so that a batch taking its blocks never waits for a flush.
        var failure: (any Error)?
        appending.withLock { _ in
            var logged = block
            do {
                logged.logSequence = try log.append(columns, id: block.id, count: block.count)
            } catch {
                failure = error
            }
            blocks.withLock { $0.unallocated.append(logged) }
        }
        if let failure { throw failure }
    }

    /// The write-ahead log's directory: `<checkpoint directory>/receivedData/<stream id>`.
    private var logDirectory: String? {
        context.checkpointDirectory.map { "\($0)/receivedData/\(streamId)" }
    }

    /// Opens the write-ahead log when it is on; after recovery, first queues the logged blocks no checkpointed
    /// batch took.
    private func openLog() throws {
        guard try context.conf.bool("spark.streaming.receiver.writeAheadLog.enable") else { return }
        guard let directory = logDirectory else {
            throw StreamingError(
                .invalidGraph,
                "spark.streaming.receiver.writeAheadLog.enable needs a checkpoint directory: call "
                    + "StreamingContext.checkpoint(directory) before start()")
        }
        guard ElementCodecs.lookup(Element.self) != nil else {
            throw StreamingError(
                .invalidGraph,
                "the write-ahead log of \(name) stream \(id) needs elements with a block encoding; \(Element.self) has none")
        }
        let conf = context.conf
        try context.engine.systemCalls.makeDirectories(directory)
        let found = try WriteAheadLog.readAll(
            directory: directory, streamId: streamId, calls: context.engine.systemCalls, warn: { [context] in context.log(.warning, .wal, $0) })
        let (covered, recovering) = logging.withLock { ($0.covered, $0.recovering) }
        // A block appended again after a failed write or flush is in the log twice: it replays once, as its
        // last record (the one the receiver was told about).
        var lastRecord: [StreamBlockId: Int64] = [:]
        for logged in found.blocks { lastRecord[logged.id] = logged.sequence }
        let replay = recovering
            ? found.blocks.filter { $0.sequence > covered && lastRecord[$0.id] == $0.sequence } : []
        if !replay.isEmpty {
            context.log(.info, .wal, "\(name) stream \(id): replaying \(replay.count) blocks (\(replay.reduce(0) { $0 + $1.count }) records) from the write-ahead log")
        }
        // Each replayed block goes back to the batch the log says took it; the rest wait for the next batch.
        let taken = found.allocations.filter { $0.through > covered }.sorted { $0.sequence < $1.sequence }
        var byBatch: [Time: [ReceivedBlock<Element>]] = [:]
        var waiting: [ReceivedBlock<Element>] = []
        for logged in replay {
            let block = ReceivedBlock<Element>(
                id: logged.id, count: logged.count, data: .columnar(logged.block), logSequence: logged.sequence)
            if let batch = taken.first(where: { $0.through >= logged.sequence }) {
                byBatch[batch.time, default: []].append(block)
            } else {
                waiting.append(block)
            }
        }
        blocks.withLock { b in
            b.allocated.merge(byBatch) { $1 }
            b.unallocated = waiting + b.unallocated
            b.replayedThrough = byBatch.keys.max()
        }
        let log = WriteAheadLog(
            directory: directory, after: covered, existing: found.segments, calls: context.engine.systemCalls,
            level: context.engine.compressionLevel, fsync: (conf.get("sluice.wal.fsync") ?? "always") == "always",
            rollInterval: .seconds(try conf.int("spark.streaming.receiver.writeAheadLog.rollingIntervalSecs") ?? 60),
            maxFailures: try conf.int("spark.streaming.receiver.writeAheadLog.maxFailures") ?? 3)
        logging.withLock { $0.log = log }
    }

    var hasUnallocatedBlocks: Bool { blocks.withLock { !$0.unallocated.isEmpty } }

    var writeAheadLogStatistics: WriteStatistics? { logging.withLock { $0.log?.statistics } }

    func allocateBlocks(to time: Time) {
        // The blocks of every tick up to the batch time first, so that the batch holds what was stored before it.
        if let generator = supervisor?.generator {
            generator.waitUntilPushed(
                through: time, timeoutMilliseconds: Int(max(200, generator.interval.wholeMilliseconds * 2)))
        }
        let (batch, fresh) = blocks.withLock { b -> ([ReceivedBlock<Element>], Bool) in
            // A batch run again after recovery takes the blocks the log says it took, and no others.
            if let taken = b.allocated[time] { return (taken, false) }
            if let replayed = b.replayedThrough, time < replayed {
                b.allocated[time] = []
                return ([], false)
            }
            defer { b.unallocated = [] }
            b.allocated[time] = b.unallocated
            return (b.unallocated, true)
        }
        if let last = batch.compactMap(\.logSequence).max() {
            let log = logging.withLock { l in
                l.takenThrough[time] = last
                return l.log
            }
            if fresh, let log {
                do {
                    try log.appendAllocation(time, through: last)
                } catch {
                    // The blocks are logged; after a crash they would go to the first batch run again instead.
                    context.log(.error, .wal, "\(name) stream \(id): which blocks batch \(time) took is not logged: \(error)")
                }
            }
        }
        let (terms, rate) = (control.withLock { $0.lastTerms }, currentRateLimit)
        context.reportInputInfo(
            StreamInputInfo(
                inputStreamId: streamId, numRecords: Int64(batch.reduce(0) { $0 + $1.count }),
                metadata: ["Description": "\(batch.count) blocks from \(supervisor?.name ?? name)"],
                rateLimit: rate, queuedBlocks: supervisor?.generator.queuedBlocks ?? 0, pidTerms: terms),
            at: time)
    }

    override func compute(_ time: Time) throws -> RDD<Element>? {
        let count = blocks.withLock { $0.allocated[time]?.count ?? 0 }
        let codec = supervisor?.generator.codec
        let stream = "\(name) stream \(id)"
        // The tasks read the blocks from `allocated`, not from a copy the RDD keeps: the stream decides when a
        // batch's blocks go (see clearMetadata), however long its RDDs are referenced.
        // Sliceable: a task may compute part of a block (a batch of few large blocks spreads over every worker).
        let block: @Sendable (Int) throws -> ReceivedBlock<Element> = { [weak self] p in
            guard let block = self?.blocks.withLock({ b in b.allocated[time].flatMap { p < $0.count ? $0[p] : nil } })
            else {
                throw StreamingError(
                    .generationFailed,
                    "the received blocks of \(stream) for batch \(time) were released when the batch completed: "
                        + "read a batch's RDD while it runs, or keep it longer with StreamingContext.remember")
            }
            return block
        }
        // A block in memory knows its count (`count()` reads no record); a spilled one is read back and counted, so
        // that a block the disk damaged fails the count as it fails any other job.
        let knownSize: @Sendable (Int) throws -> Int? = { p in
            let block = try block(p)
            switch block.data {
            case .columnar(let columns):
                guard let codec else { return nil }  // the producer's error
                try codec.checkSchema(of: columns)
                return block.count
            case .elements: return block.count
            case .spilled: return nil
            }
        }
        return RDD.custom(
            engine: context.engine, numPartitions: count, lineage: Lineage(), sliceable: true, knownSize: knownSize
        ) { p, sink in
            let block = try block(p)
            switch block.data {
            case .columnar, .spilled:
                guard let codec, let columns = try block.columns() else {
                    throw StreamingError(.internalFailure, "block \(block.id) is columnar but \(Element.self) has no codec")
                }
                try decodeChunks(columns, codec, sink)
            case .elements(let elements):
                let rows = TaskContext.slice.range(of: elements.count)
                try elements.withUnsafeBufferPointer { try emitChunks(UnsafeBufferPointer(rebasing: $0[rows]), to: sink) }
            }
        }
    }

    /// After batch `time` completed: drops the blocks of batches older than the remember duration (Spark's
    /// rule) and, with `sluice.receiver.releaseBlocksAtBatchEnd` (the default), `time`'s own blocks too when
    /// nothing remembers the stream beyond its slide (no window, `remember` or checkpoint interval): Spark keeps
    /// them until the next batch completes, a second batch of received data in memory that no operation reads.
    override func clearMetadata(_ time: Time) {
        let keep = rememberDuration ?? slideDuration
        let releasesOwn = releasesBlocksAtBatchEnd && keep <= slideDuration
        blocks.withLock { b in b.allocated = b.allocated.filter { $0.key > time - keep && !(releasesOwn && $0.key == time) } }
        super.clearMetadata(time)
    }

    // MARK: Rate control

    func batchCompleted(_ batch: BatchInfo) {
        guard let info = batch.streamIdToInputInfo[streamId], let end = batch.processingEndTime,
            let processing = batch.processingDelay, let scheduling = batch.schedulingDelay
        else { return }
        let limiter = supervisor?.generator.limiter
        let processingRate = processing > 0 ? Double(info.numRecords) * 1000 / Double(processing) : nil
        let next = control.withLock { c -> Double? in
            guard c.installed || backpressure, var estimator = c.estimator else { return nil }
            let rate = estimator.compute(
                time: end, elements: Int(info.numRecords), processingDelay: processing, schedulingDelay: scheduling)
            c.estimator = estimator
            c.lastTerms = (estimator as? PIDRateEstimator)?.lastTerms
            defer { if rate != nil || processingRate != nil { c.primed = true } }
            if let rate { return max(rate, floor * (processingRate ?? 0)) }
            // The estimator's first batch: its processing rate, unless a rate is set.
            return c.primed || limiter?.rate != nil || info.numRecords == 0 ? nil : processingRate
        }
        if let next { limiter?.setRate(next) }
    }
}

extension ReceiverInputDStream: CheckpointedNode {
    var dataCheckpointInterval: Duration? { nil }

    func checkCheckpointable() throws {}

    /// Writes the write-ahead log's sequence number through which batches up to `time` took every block: the
    /// last one they took, and below any block a later batch took or none took yet.
    func writeCheckpoint(at time: Time, to writer: inout BinaryWriter) throws {
        let waiting = blocks.withLock { b in
            (b.unallocated.compactMap(\.logSequence)
                + b.allocated.filter { $0.key > time }.values.joined().compactMap(\.logSequence)).min()
        }
        let covered = logging.withLock { l -> Int64 in
            var through = max(l.covered, l.takenThrough.filter { $0.key <= time }.values.max() ?? l.covered)
            if let waiting { through = min(through, waiting - 1) }
            l.covering = (time, through)
            return through
        }
        writer.writeVarInt(covered)
    }

    func restoreCheckpoint(from reader: inout BinaryReader, at time: Time) throws {
        let covered = try reader.readVarInt()
        logging.withLock { l in
            l.covered = covered
            l.recovering = true
        }
        if !((try? context.conf.bool("spark.streaming.receiver.writeAheadLog.enable")) ?? false) {
            context.log(
                .warning, .receiver, "\(name) stream \(id): blocks received but not processed before the restart are lost; set "
                    + "spark.streaming.receiver.writeAheadLog.enable to keep them")
        }
    }

    func checkpointWritten(at time: Time) {
        let (log, covered) = logging.withLock { l -> (WriteAheadLog?, Int64?) in
            guard let covering = l.covering, covering.time == time else { return (nil, nil) }
            l.covered = covering.sequence
            l.covering = nil
            l.takenThrough = l.takenThrough.filter { $0.key > time }
            return (l.log, covering.sequence)
        }
        if let log, let covered { log.clean(through: covered) }
    }
}
