import Logging
import SluiceColumnar
import SluiceExecution

extension StreamingContext {
    /// The context of a program that can restart where it stopped (Spark's `getOrCreate`). `creatingFunc`
    /// builds the program's streams and output operations, and is called in either case, since checkpoints
    /// hold data, never code. Without a checkpoint in `checkpointPath`, its context is returned as it is. With
    /// one, the rebuilt graph is checked against the checkpoint's description, and at `start()` the context
    /// restores the streams' state, windows and bookkeeping and the receivers' logged blocks, runs again the
    /// batches that were pending or missed while the program was down, and goes on.
    ///
    /// The newest readable checkpoint wins; an unreadable newer one is skipped with a message on standard error.
    /// The context checkpoints into `checkpointPath` unless `creatingFunc` chose another directory.
    /// - Throws: what `creatingFunc` throws; ``StreamingError`` (`checkpointMismatch`) naming the first
    ///   difference between the program and the checkpoint; (`checkpointFailed`) when checkpoint files exist
    ///   but none can be read, naming each file and its problem.
    public static func getOrCreate(
        checkpointPath: String, creatingFunc: () throws -> StreamingContext
    ) throws -> StreamingContext {
        let context = try creatingFunc()
        if context.checkpointDirectory == nil { context.checkpoint(checkpointPath) }
        let directory = try context.checkpointFiles(at: checkpointPath)
        guard let (checkpoint, path) = try directory.latest(warn: { context.log(.warning, .checkpoint, $0) }) else { return context }
        try context.prepareRecovery(from: checkpoint, path: path)
        return context
    }

    /// Checks the checkpoint against the program and keeps it for `start()`.
    func prepareRecovery(from checkpoint: Checkpoint, path: String) throws {
        guard state == .initialized else {
            throw StreamingError(.illegalState, "a context can recover from a checkpoint only before it starts")
        }
        guard checkpoint.batchDuration == batchDuration else {
            throw StreamingError(
                .checkpointMismatch,
                "cannot recover from '\(path)': it was written with a batch interval of "
                    + "\(checkpoint.batchDuration.sparkDescription), the program has \(batchDuration.sparkDescription)")
        }
        if let difference = checkpoint.graph.firstDifference(from: graph.describe()) {
            throw StreamingError(
                .checkpointMismatch,
                "cannot recover from '\(path)': the program's streams differ from the checkpoint's: \(difference)")
        }
        life.withLock { $0.recovery = (checkpoint, path) }
        log(.info, .checkpoint, "recovering from checkpoint '\(path)' (batch \(checkpoint.time))")
    }

    /// The checkpoint files in `path`, with the context's settings.
    private func checkpointFiles(at path: String) throws -> CheckpointDirectory {
        CheckpointDirectory(
            path: path, calls: engine.systemCalls, retained: try conf.int("sluice.checkpoint.retained") ?? 10)
    }

    /// At `start()`, with a checkpoint directory: checks that every stream's data can be written and sets the
    /// checkpoint interval (`sluice.checkpoint.interval`, else the shortest stream interval, else every batch).
    func prepareCheckpoints() throws {
        for key in ["spark.streaming.receiver.writeAheadLog.class", "spark.streaming.driver.writeAheadLog.class"] {
            if let value = conf.get(key) {
                throw ConfigurationError(
                    key: key, value: value, expected: "unset: Swift loads no classes by name; Sluice has its own log")
            }
        }
        guard checkpointDirectory != nil else { return }
        let nodes = graph.checkpointedNodes
        for node in nodes { try node.checkCheckpointable() }
        let interval = try conf.duration("sluice.checkpoint.interval")
            ?? nodes.compactMap(\.dataCheckpointInterval).min() ?? batchDuration
        guard interval >= batchDuration, interval.isMultiple(of: batchDuration) else {
            throw StreamingError(
                .invalidGraph,
                "the checkpoint interval (\(interval.sparkDescription)) must be a multiple of the batch interval "
                    + "(\(batchDuration.sparkDescription))")
        }
        life.withLock { $0.checkpointInterval = interval }
    }

    /// Restores every stream's section of `checkpoint`.
    func restore(_ checkpoint: Checkpoint, from path: String) throws {
        for node in graph.checkpointedNodes {
            guard let bytes = checkpoint.sections[node.id] else { continue }
            do {
                try bytes.withUnsafeBytes { raw in
                    try BinaryReader.withReader(raw) { reader in
                        try node.restoreCheckpoint(from: &reader, at: checkpoint.time)
                        guard reader.isAtEnd else {
                            throw FormatError(.inconsistent, at: reader.offset, "\(reader.remaining) bytes left over")
                        }
                    }
                }
            } catch let error as StreamingError {
                throw error
            } catch {
                throw StreamingError(
                    .checkpointFailed,
                    "cannot restore \(node.name) stream \(node.id) from the checkpoint '\(path)'", underlying: error)
            }
        }
        life.withLock { $0.lastCheckpoint = checkpoint.time }
    }

    /// Called when batch `time`'s jobs all succeeded: checkpoints when an interval has passed since the last
    /// checkpoint and no earlier batch is still running.
    func batchSucceeded(_ time: Time) {
        let due = life.withLock { life -> Bool in
            guard life.checkpointDirectory != nil, let interval = life.checkpointInterval else { return false }
            return life.lastCheckpoint.map { time >= $0 + interval } ?? true
        }
        guard due, !generator.pendingTimes.contains(where: { $0 < time }) else { return }
        writeCheckpoint(at: time)
    }

    /// After a graceful stop: a checkpoint of the last batch, unless one was written for it.
    func writeFinalCheckpoint() {
        guard checkpointDirectory != nil, let last = generator.lastGenerated, generator.isHandled(last), error == nil
        else { return }
        if life.withLock({ $0.lastCheckpoint.map { $0 >= last } ?? false }) { return }
        writeCheckpoint(at: last)
    }

    /// Writes the checkpoint of batch `time`; a failure is logged and the previous checkpoints stay (Spark's
    /// behaviour: the stream goes on).
    @discardableResult
    func writeCheckpoint(at time: Time) -> Bool {
        let started = monotonicNanoseconds()
        do {
            guard let path = checkpointDirectory, let zero = graph.zeroTime else { return false }
            let directory = try checkpointFiles(at: path)
            let nodes = graph.checkpointedNodes
            let sections = try graph.withGenerationPaused {
                try nodes.reduce(into: [Int: [UInt8]]()) { sections, node in
                    var writer = try BinaryWriter()
                    try node.writeCheckpoint(at: time, to: &writer)
                    sections[node.id] = try writer.withWrittenBytes { Array($0) }
                }
            }
            let checkpoint = Checkpoint(
                batchDuration: batchDuration, zeroTime: zero, time: time,
                pendingTimes: generator.pendingTimes.filter { $0 > time }, graph: graph.describe(),
                conf: Dictionary(conf.all, uniquingKeysWith: { $1 }),
                sections: sections)
            try directory.write(checkpoint, level: engine.compressionLevel)
            let bytes = checkpoint.sections.values.reduce(0) { $0 + $1.count }
            let milliseconds = Double(monotonicNanoseconds() - started) / 1e6
            metrics.checkpointWritten(milliseconds: milliseconds, bytes: bytes)
            life.withLock { life in
                life.lastCheckpoint = time
                life.checkpointStatistics.record(milliseconds: milliseconds, bytes: bytes)
            }
            for receiver in graph.receiverStreams { receiver.checkpointWritten(at: time) }
            return true
        } catch {
            log(.error, .checkpoint, "checkpoint of batch \(time) not written: \(error)")
            return false
        }
    }

    /// The batch time of the last checkpoint written or recovered from.
    package var lastCheckpointTime: Time? { life.withLock { $0.lastCheckpoint } }

    /// How many checkpoints were written and how long they took.
    public var checkpointStatistics: CheckpointStatistics { life.withLock { $0.checkpointStatistics } }
}

/// The checkpoints a context wrote: how many, and how long writing took (encoding the streams' data, writing
/// the file, flushing it and renaming it into place).
public typealias CheckpointStatistics = WriteStatistics

/// Writes of one kind (checkpoints, write-ahead log appends): how many, how long they took, how big the last was.
public struct WriteStatistics: Sendable, Equatable, Codable {
    public private(set) var count = 0
    public private(set) var totalMilliseconds = 0.0
    public private(set) var maxMilliseconds = 0.0
    /// The last write's bytes (a checkpoint's: the streams' data before compression).
    public private(set) var lastBytes = 0

    public var meanMilliseconds: Double { count == 0 ? 0 : totalMilliseconds / Double(count) }

    mutating func record(milliseconds: Double, bytes: Int) {
        count += 1
        totalMilliseconds += milliseconds
        maxMilliseconds = max(maxMilliseconds, milliseconds)
        lastBytes = bytes
    }
}
