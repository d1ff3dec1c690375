import Glibc
import Logging
import SluiceColumnar
import SluiceExecution
import Synchronization

/// The states of a ``StreamingContext``: made, started, stopped. A stopped context cannot start again.
public enum StreamingContextState: Sendable, Equatable {
    case initialized
    case active
    case stopped
}

/// The entry point of a streaming program (Spark's `StreamingContext`): it owns the engine that runs the
/// batches, the graph of streams, and the threads that generate and run each batch's jobs.
///
/// As in the guide: streams and output operations are set up first, then `start()`; no stream may be added
/// once started; a stopped context cannot be restarted; only one context is active in a process at a time.
/// Batch times are multiples of the batch duration on the context's clock: the first batch is at the next
/// multiple after the clock's time at `start()`, and zeroTime one batch earlier.
public final class StreamingContext: Sendable {
    /// The configuration it was made with.
    public let conf: StreamingConf
    /// The batch interval.
    public let batchDuration: Duration
    /// The clock batch times are read from.
    public let clock: any StreamingClock
    /// The engine running the batches' tasks (`spark.master`, `sluice.memory.limit`, ...).
    public let engine: ExecutionEngine
    /// The progress Spark's Streaming tab shows, in Spark's REST model: statistics, batches (the last
    /// `spark.streaming.ui.retainedBatches` completed), output operations, receivers.
    public let status: StreamingStatus
    let metrics: StreamingMetrics
    /// The application's id, as Spark names a local application: `local-<ms since the epoch at creation>`.
    public let applicationId: String

    let graph: DStreamGraph
    let bus: ListenerBus
    let scheduler: JobScheduler
    let generator: JobGenerator
    let unpersistOldRDDs: Bool
    let concurrentJobs: Int
    let gracefulStopTimeout: Duration
    let loggers: Loggers

    struct Life {
        var state = StreamingContextState.initialized
        var error: (any Error)?
        var checkpointDirectory: String?
        var nextStreamId = 0
        var lateStreams: [String] = []
        /// Arguments the program's operations were given that cannot work (thrown by `start()`).
        var refused: [StreamingError] = []
        var inputInfos: [Time: [Int: StreamInputInfo]] = [:]
        var stopping = false
        /// A `start()` is under way (others wait for it; `stop()` waits for it).
        var starting = false
        /// `async` callers of `awaitTermination()`, resumed when the context stops or a batch fails.
        var terminationWaiters: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var nextWaiter: UInt64 = 0
        /// The checkpoint `getOrCreate` recovers from, applied at `start()`.
        var recovery: (checkpoint: Checkpoint, path: String)?
        /// How often checkpoints are written (set at `start()` when there is a checkpoint directory).
        var checkpointInterval: Duration?
        /// The batch time of the last checkpoint written (or recovered from).
        var lastCheckpoint: Time?
        var checkpointStatistics = CheckpointStatistics()
        /// This run's event log directory (`spark.eventLog.enabled`), once started.
        var eventLogDirectory: String?
        /// The monitoring page's server (`spark.ui.enabled`), while running.
        var ui: MonitoringServer?

        /// Every `async` waiter, removed (to be resumed outside the lock).
        mutating func takeTerminationWaiters() -> [CheckedContinuation<Void, any Error>] {
            defer { terminationWaiters = [:] }
            return Array(terminationWaiters.values)
        }
    }

    let life = Mutex(Life())
    private let changed = PthreadCondition()
    /// Where `print()` writes a batch's lines (standard output, flushed, so that a pipe sees each batch at
    /// once; tests capture it).
    let console: Mutex<@Sendable ([String]) -> Void> = Mutex({ lines in
        for line in lines { print(line) }
        fflush(nil)  // every output stream: nil avoids touching the global `stdout` from Swift
    })

    private static let active = Mutex<ObjectIdentifier?>(nil)

    /// A context running batches every `batchDuration` with `conf`'s settings, on `clock`; files (spill, file
    /// streams, output) go through `systemCalls` (tests inject failures).
    /// - Throws: ``ConfigurationError`` for a bad setting (naming the key, value and accepted form);
    ///   ``StreamingError`` for a batch duration under 1 ms.
    public init(
        conf: StreamingConf, batchDuration: Duration, clock: any StreamingClock = SystemClock(),
        systemCalls: SystemCalls = .live
    ) throws {
        try conf.validate()
        guard batchDuration.wholeMilliseconds >= 1 else {
            throw StreamingError(
                .invalidArgument, "the batch duration must be at least 1 ms, got \(batchDuration.sparkDescription)")
        }
        self.conf = conf
        self.batchDuration = batchDuration
        self.clock = clock
        self.applicationId = "local-\(wallClockMilliseconds())"
        let workers = try Master.workers(for: conf.get("spark.master") ?? "local[*]")
        let memory = MemoryBudget(limit: try conf.bytes("sluice.memory.limit") ?? .max)
        // Free buffers kept for reuse, and freed pages, are memory too.
        BufferPool.bound(toBudget: memory.limit)
        self.engine = ExecutionEngine(
            pool: try WorkStealingPool(
                workers: workers,
                spinWait: try conf.microseconds("sluice.workers.spinWait").map { .microseconds($0) }
                    ?? WorkStealingPool.defaultSpinWait),
            memory: memory,
            spillDirectory: conf.get("sluice.spill.dir") ?? conf.get("spark.local.dir"),
            defaultParallelism: try conf.int("spark.default.parallelism"),
            compressionLevel: Int32(try conf.int("sluice.zstd.level") ?? 1), calls: systemCalls)
        self.unpersistOldRDDs = try conf.bool("spark.streaming.unpersist")
        self.concurrentJobs = try conf.int("spark.streaming.concurrentJobs") ?? 1
        self.gracefulStopTimeout = try conf.duration("spark.streaming.gracefulStopTimeout") ?? batchDuration * 10
        self.loggers = Loggers(level: Logger.Level(rawValue: conf.get("sluice.log.level") ?? "info") ?? .info)
        let graph = DStreamGraph(batchDuration: batchDuration)
        let bus = ListenerBus(capacity: try conf.int("sluice.listener.queueCapacity") ?? 10_000)
        self.graph = graph
        self.bus = bus
        self.status = StreamingStatus(
            batchDuration: batchDuration, retainedBatches: try conf.int("spark.streaming.ui.retainedBatches") ?? 1_000)
        bus.add(status)
        self.metrics = StreamingMetrics(status: status, batchDuration: batchDuration)
        bus.add(metrics)
        // The scheduler's threads reach back to the context through a weak link, bound once it exists.
        let link = ContextLink()
        self.scheduler = JobScheduler(
            threads: concurrentJobs, bus: bus, memory: engine.memory,
            reportError: { link.context?.reportError(StreamingError(.generationFailed, $0, underlying: $1)) },
            batchFinished: { link.context?.batchFinished($0, failed: $1) })
        self.generator = JobGenerator(
            graph: graph, clock: clock, scheduler: scheduler,
            reportError: { link.context?.reportError(StreamingError(.generationFailed, $0, underlying: $1)) },
            inputInfos: { link.context?.takeInputInfos($0) ?? [:] }, completed: { link.context?.batchSucceeded($0) })
        link.context = self
        if let directory = conf.get("spark.streaming.checkpoint.directory") { checkpoint(directory) }
        for warning in conf.warnings { log(.warning, .context, warning) }
    }

    deinit {
        if state == .active { stop() }
        StreamingContext.active.withLock { if $0 == ObjectIdentifier(self) { $0 = nil } }
    }

    /// The context's state.
    public var state: StreamingContextState { life.withLock { $0.state } }

    // MARK: Settings

    /// Sets the directory checkpoints go to (needed by stateful operations).
    public func checkpoint(_ directory: String) {
        life.withLock { $0.checkpointDirectory = directory }
    }

    /// The checkpoint directory, if set.
    public var checkpointDirectory: String? { life.withLock { $0.checkpointDirectory } }

    /// Makes every stream keep its RDDs for at least `duration` (Spark's `remember`), e.g. for `slice`.
    public func remember(_ duration: Duration) { graph.remember(duration) }

    /// Adds a listener of batch, output operation and receiver events.
    public func addStreamingListener(_ listener: some StreamingListener) { bus.add(listener) }

    /// An RDD of `elements` for use in `transform` (`numSlices` default: `spark.default.parallelism`, else
    /// the number of workers).
    public func parallelize<T: Sendable>(_ elements: [T], numSlices: Int? = nil) -> RDD<T> {
        engine.parallelize(elements, numSlices: numSlices)
    }

    // MARK: Lifecycle

    /// Starts generating and running batches.
    /// - Throws: ``StreamingError`` when the context was stopped, another context is active, or the graph
    ///   cannot run (no output operation, a stream added after start, mismatched slides, ...).
    public func start() throws {
        enum Begin { case proceed, alreadyActive, waitForOtherStart }
        // One decision under both locks (the process's active slot, then this context's state), so that two
        // concurrent calls cannot both start it.
        let begin = try StreamingContext.active.withLock { active throws(StreamingError) -> Begin in
            try life.withLock { life throws(StreamingError) -> Begin in
                switch life.state {
                case .active: return .alreadyActive
                case .stopped:
                    throw StreamingError(.illegalState, "StreamingContext has already been stopped; a stopped context cannot be restarted")
                case .initialized:
                    if life.starting { return .waitForOtherStart }
                    if active != nil && active != ObjectIdentifier(self) {
                        throw StreamingError(
                            .illegalState,
                            "Only one StreamingContext may be active in a process at a time; stop the other one first")
                    }
                    active = ObjectIdentifier(self)
                    life.starting = true
                    return .proceed
                }
            }
        }
        switch begin {
        case .alreadyActive: return
        case .waitForOtherStart:
            waitWhileStarting()
            guard state == .active else {
                throw StreamingError(.illegalState, "StreamingContext could not start (a concurrent start() failed)")
            }
            return
        case .proceed: break
        }
        do {
            try validateGraph()
            try checkCoresForReceivers()
            let recovery = life.withLock { $0.recovery }
            var firstTime = JobGenerator.firstBatchTime(now: clock.time, batchDuration: batchDuration)
            var rerun: [Time] = []
            if let checkpoint = recovery?.checkpoint {
                // Carry on from the checkpoint: its grid, the batches it had pending and those missed while down.
                firstTime = max(firstTime, checkpoint.time + batchDuration)
                var missed: [Time] = []
                var time = checkpoint.time + batchDuration
                while time < firstTime {
                    missed.append(time)
                    time = time + batchDuration
                }
                rerun = Array(Set(checkpoint.pendingTimes + missed))
            }
            try graph.start(zeroTime: recovery?.checkpoint.zeroTime ?? firstTime - batchDuration)
            try prepareCheckpoints()
            if let recovery { try restore(recovery.checkpoint, from: recovery.path) }
            startEventLog()
            try bus.start()
            try scheduler.start()
            for receiver in graph.receiverStreams { try receiver.startReceiver() }
            if try conf.bool("spark.streaming.stopGracefullyOnShutdown") { try ShutdownHook.install(for: self) }
            try generator.start(firstTime: firstTime, rerun: rerun)
        } catch {
            StreamingContext.active.withLock { if $0 == ObjectIdentifier(self) { $0 = nil } }
            for receiver in graph.receiverStreams { receiver.stopReceiver() }
            ShutdownHook.remove(self)
            generator.stop(gracefully: false, timeout: .zero)
            scheduler.stop(gracefully: false)
            bus.stop()
            engine.pool.shutdown()
            enterStopped()
            throw error
        }
        life.withLock {
            $0.state = .active
            $0.starting = false
        }
        changed.locked { changed.broadcast() }
        bus.post(.streamingStarted(StreamingStarted(
            time: wallClockMilliseconds(), appId: applicationId, appName: conf.get("spark.app.name") ?? "sluice",
            batchDuration: batchDuration.wholeMilliseconds)))
        startUI()
    }

    /// The monitoring page's address (`http://127.0.0.1:4040`) while the context runs with `spark.ui.enabled`;
    /// nil otherwise, or when the server could not start. The Streaming page is at `/streaming/`, the JSON
    /// API under `/api/v1/applications`, Prometheus's metrics at `/metrics`.
    public var uiWebURL: String? { life.withLock { $0.ui?.url } }

    /// With `spark.ui.enabled`, starts the monitoring server and says where once. One that cannot listen is a
    /// warning, never a failed job.
    private func startUI() {
        do {
            guard try conf.bool("spark.ui.enabled") else { return }
            let server = try MonitoringServer.start(source: MonitoringSource(context: self), conf: conf)
            let kept = life.withLock { life -> Bool in
                guard life.state == .active else { return false }
                life.ui = server
                return true
            }
            guard kept else { return server.stop() }
            log(.info, .ui, "Streaming page at \(server.url)/streaming/ (JSON API \(server.url)/api/v1/applications, "
                + "metrics \(server.url)/metrics)")
        } catch {
            log(.warning, .ui, "\(error); the job runs without its monitoring page")
        }
    }

    /// The context's metrics in Prometheus's text format (what `/metrics` serves): batches completed and
    /// failed, records received and processed, processing, scheduling and total delay histograms, active batches
    /// and receivers, input rates and rate limits per stream, memory reserved and its limit, bytes spilled and
    /// spill files live, keys per stateful stream, checkpoint write time histogram and size, write-ahead log
    /// appends and their time per stream.
    public func prometheusMetrics() -> String { metrics.prometheusText(engine: engineStatus) }

    /// The directory this run's events go to (`spark.eventLog.enabled`; read them back with
    /// ``EventLog/read(directory:calls:)``), once started; nil without an event log.
    public var eventLogDirectory: String? { life.withLock { $0.eventLogDirectory } }

    /// With `spark.eventLog.enabled`, adds the event log's writer to the listeners. One that cannot start is a
    /// message, never a failed job.
    private func startEventLog() {
        do {
            guard try conf.bool("spark.eventLog.enabled") else { return }
            let writer = try EventLogWriter(
                parent: conf.get("spark.eventLog.dir") ?? "/tmp/spark-events", appName: conf.get("spark.app.name") ?? "sluice",
                maxFileBytes: try conf.bytes("spark.eventLog.rolling.maxFileSize") ?? 128 << 20, calls: engine.systemCalls,
                log: { [weak self] in self?.log(.error, .listener, $0) })
            bus.add(writer)
            life.withLock { $0.eventLogDirectory = writer.directory }
        } catch {
            log(.warning, .listener, "\(error); the job runs without an event log")
        }
    }

    /// Sleeps while a `start()` is under way.
    private func waitWhileStarting() {
        changed.locked {
            while life.withLock({ $0.starting }) { changed.wait() }
        }
    }

    /// The guide's rule: with `local[n]`, n must exceed the number of receivers, each of which holds a thread.
    private func checkCoresForReceivers() throws {
        let receivers = graph.receiverStreams.count
        let master = conf.get("spark.master") ?? "local[*]"
        let workers = engine.pool.workerCount
        guard receivers == 0 || workers > receivers else {
            throw StreamingError(
                .invalidGraph,
                "spark.master is \(master) (\(workers) thread\(workers == 1 ? "" : "s")) but the program has \(receivers) "
                    + "receiver\(receivers == 1 ? "" : "s"): each receiver holds a thread, so nothing would be left to "
                    + "process the data; use local[\(receivers + 1)] or more")
        }
    }

    private func validateGraph() throws {
        let (late, refused) = life.withLock { ($0.lateStreams, $0.refused) }
        if let first = refused.first { throw first }
        if let first = late.first {
            throw StreamingError(
                .invalidGraph,
                "Adding new inputs, transformations, and output operations after starting a context is not supported "
                    + "(\(first) was added after start)")
        }
    }

    /// Blocks until the context stops, or rethrows the first error of a batch (a job that threw, a batch that
    /// could not be generated).
    public func awaitTermination() throws {
        _ = try awaitTermination(deadline: nil)
    }

    /// As ``awaitTermination()``, without blocking a thread: suspends until the context stops, or rethrows the
    /// first error of a batch. Cancelling the task ends the wait with `CancellationError` (the context runs on).
    public func awaitTermination() async throws {
        let id = life.withLock { life in
            defer { life.nextWaiter += 1 }
            return life.nextWaiter
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
                let ready: Result<Void, any Error>? = life.withLock { life in
                    if let error = life.error { return .failure(error) }
                    if life.state == .stopped { return .success(()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    life.terminationWaiters[id] = waiter
                    return nil
                }
                if let ready { waiter.resume(with: ready) }
            }
        } onCancel: {
            life.withLock { $0.terminationWaiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }

    /// As ``awaitTermination()``, for at most `timeout`; true if the context stopped.
    public func awaitTerminationOrTimeout(_ timeout: Duration) throws -> Bool {
        try awaitTermination(deadline: monotonicNanoseconds() &+ UInt64(max(0, timeout.wholeMilliseconds)) &* 1_000_000)
    }

    private func awaitTermination(deadline: UInt64?) throws -> Bool {
        try changed.locked {
            while true {
                let (state, error) = life.withLock { ($0.state, $0.error) }
                if let error { throw error }
                if state == .stopped { return true }
                if let deadline {
                    let now = monotonicNanoseconds()
                    if now >= deadline { return false }
                    changed.wait(nanoseconds: Int(min(deadline - now, 100_000_000)))
                } else {
                    changed.wait()
                }
            }
        }
    }

    /// The first error a batch raised, if any (what ``awaitTermination()`` rethrows).
    public var error: (any Error)? { life.withLock { $0.error } }

    /// Stops the context. Gracefully, it first finishes every batch already received or generated (within
    /// `spark.streaming.gracefulStopTimeout`); otherwise queued batches are dropped and only running jobs
    /// finish. Called from inside a job (`foreachRDD`), it returns at once and the stop completes on another
    /// thread. Stopping a stopped context does nothing.
    public func stop(gracefully: Bool = false) {
        waitWhileStarting()
        let (proceed, wasActive) = life.withLock { life -> (Bool, Bool) in
            if life.state == .stopped || life.stopping { return (false, false) }
            life.stopping = true
            return (true, life.state == .active)
        }
        guard proceed else { return }
        guard wasActive else {
            finishStop()
            return
        }
        if JobScheduler.onJobThread {
            // A job thread cannot wait for the jobs to end: the stop completes on a thread of its own.
            do {
                try DetachedThread.run("context stop") { [self] in stopActive(gracefully: gracefully) }
            } catch {
                life.withLock { $0.stopping = false }
                reportError(StreamingError(.internalFailure, "stop() from a job could not complete", underlying: error))
            }
        } else {
            stopActive(gracefully: gracefully)
        }
    }

    private func stopActive(gracefully: Bool) {
        // Receivers first: what they stored reaches their streams, and a graceful stop's last batch takes it.
        for receiver in graph.receiverStreams { receiver.stopReceiver() }
        if !generator.stop(gracefully: gracefully, timeout: gracefulStopTimeout) {
            log(.warning, .context, "graceful stop did not finish within \(gracefulStopTimeout.sparkDescription) "
                + "(spark.streaming.gracefulStopTimeout); stopping now")
        } else if gracefully {
            writeFinalCheckpoint()
        }
        ShutdownHook.remove(self)
        scheduler.stop(gracefully: gracefully)
        bus.stop()
        finishStop()
    }

    private func finishStop() {
        life.withLock { $0.ui.take() }?.stop()
        graph.stop()
        engine.pool.shutdown()
        StreamingContext.active.withLock { if $0 == ObjectIdentifier(self) { $0 = nil } }
        enterStopped()
    }

    /// The context is stopped (for good): blocking and `async` waiters of `start()`, `stop()` and
    /// `awaitTermination()` hear of it.
    private func enterStopped() {
        let waiters = life.withLock { life in
            life.state = .stopped
            life.starting = false
            life.stopping = false
            return life.takeTerminationWaiters()
        }
        changed.locked { changed.broadcast() }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: Internal

    /// Blocks until batch `time` and every batch before it were generated and all their jobs finished (failed
    /// ones included), or `timeout` passed; true if they are done.
    package func waitUntilBatchHandled(_ time: Time, timeout: Duration) -> Bool {
        generator.waitFor(timeoutNanoseconds: UInt64(max(0, timeout.wholeMilliseconds)) * 1_000_000) {
            generator.isHandled(time)
        }
    }

    /// Blocks until every listener event posted so far was delivered (or `timeout` passed).
    package func waitForListeners(timeout: Duration = .seconds(10)) {
        bus.waitUntilEmpty(timeoutMilliseconds: Int(timeout.wholeMilliseconds))
    }

    func makeStreamId() -> Int {
        life.withLock { life in
            defer { life.nextStreamId += 1 }
            return life.nextStreamId
        }
    }

    /// Records a stream made after `start()` (an error at the next check, and at once if running).
    func checkCanAddStreams(_ name: String) {
        let late = life.withLock { life -> Bool in
            guard life.state != .initialized else { return false }
            life.lateStreams.append(name)
            return true
        }
        if late {
            reportError(StreamingError(
                .illegalState,
                "Adding new inputs, transformations, and output operations after starting a context is not supported "
                    + "(\(name) was added after start)"))
        }
    }

    /// Records an argument an operation cannot use; `start()` throws the first.
    @usableFromInline
    func refuse(_ error: StreamingError) {
        life.withLock { $0.refused.append(error) }
    }

    func reportError(_ error: any Error) {
        let (first, waiters) = life.withLock { life -> ((any Error)?, [CheckedContinuation<Void, any Error>]) in
            if life.error == nil { life.error = error }
            return (life.error, life.takeTerminationWaiters())
        }
        changed.locked { changed.broadcast() }
        for waiter in waiters { waiter.resume(throwing: first ?? error) }
    }

    /// A batch's jobs all finished: its receivers' streams and the generator hear of it.
    func batchFinished(_ batch: BatchInfo, failed: Bool) {
        for stream in graph.inputs.compactMap({ $0 as? any RateControlledNode }) { stream.batchCompleted(batch) }
        generator.batchFinished(batch.batchTime, failed: failed)
    }

    func reportInputInfo(_ info: StreamInputInfo, at time: Time) {
        life.withLock { $0.inputInfos[time, default: [:]][info.inputStreamId] = info }
    }

    func takeInputInfos(_ time: Time) -> [Int: StreamInputInfo] {
        life.withLock { $0.inputInfos.removeValue(forKey: time) ?? [:] }
    }

    /// Logs `message` at `level` through the layer's logger (see ``LogLayer``).
    func log(_ level: Logger.Level, _ layer: LogLayer, _ message: String) {
        loggers[layer].log(level: level, "\(message)")
    }
}

/// The late-bound link from the scheduler threads back to the context (made before the context finishes its
/// initializer); weak, so that the threads never keep a context alive.
final class ContextLink: @unchecked Sendable {
    // @unchecked: `context` is written once, during the context's initializer, before any thread starts.
    weak var context: StreamingContext?
}
