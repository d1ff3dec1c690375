import Synchronization

/// Runs one receiver (Spark's `ReceiverSupervisor`): starts its block generator and then the receiver, stores
/// what it receives into its stream, restarts it after a failure, and tells listeners when it starts, fails
/// and stops. Stopping stops the receiver first, then the generator, which pushes everything still buffered.
final class ReceiverSupervisor<Element: Sendable>: Sendable {
    enum Phase: Sendable, Equatable {
        case initialized, started, stopped
    }

    private struct Status {
        var phase = Phase.initialized
        /// Stopped for good (`stop`), as opposed to between a restart's stop and start.
        var finished = false
        var restarting = false
        var lastError: (message: String, error: String, time: Int64)?
        var nextDirectId: Int64 = 0
    }

    /// Set in the ids of blocks stored at once (``Receiver/store(contentsOf:)``): they count up from the clock's
    /// milliseconds at start, as in Spark, but apart from the block generator's ids (milliseconds of its
    /// intervals), which they would otherwise meet; write-ahead-log recovery replays one block per id.
    static var directIdFlag: Int64 { 1 << 62 }

    let streamId: Int
    let name: String
    private let receiver: Receiver<Element>
    let generator: BlockGenerator<Element>
    private let restartDelay: Duration
    private let store: @Sendable (ReceivedBlock<Element>) throws -> Void
    private let post: @Sendable (StreamingEvent) -> Void
    private let log: @Sendable (String) -> Void
    private let status: Mutex<Status>
    /// Wakes a restart's delay early when the supervisor stops.
    private let wake = PthreadCondition()

    init(
        receiver: Receiver<Element>, streamId: Int, context: StreamingContext,
        store: @escaping @Sendable (ReceivedBlock<Element>) throws -> Void
    ) throws {
        self.streamId = streamId
        self.name = "\(type(of: receiver))-\(streamId)"
        self.receiver = receiver
        self.store = store
        let bus = context.bus
        self.post = { bus.post($0) }
        self.log = { [weak context] in context?.log(.warning, .receiver, $0) }
        self.restartDelay = try context.conf.duration("spark.streaming.receiverRestartDelay") ?? .seconds(2)
        let maxRate = try context.conf.int("spark.streaming.receiver.maxRate").flatMap { $0 > 0 ? Double($0) : nil }
        let initialRate = try context.conf.int("spark.streaming.backpressure.initialRate").map(Double.init)
        let interval = try context.conf.duration("spark.streaming.blockInterval") ?? .milliseconds(200)
        guard interval.wholeMilliseconds > 0 else {
            throw StreamingError(.invalidArgument, "spark.streaming.blockInterval must be positive, got \(interval)")
        }
        // At least 1 byte (checked when the context was made).
        let maxBlockBytes = try context.conf.bytes("sluice.receiver.maxBlockBytes") ?? BlockGenerator<Element>.defaultSplitBytes
        status = Mutex(Status(nextDirectId: Self.directIdFlag | context.clock.time.milliseconds))
        let errors = ErrorRelay()
        generator = BlockGenerator(
            streamId: streamId, interval: interval,
            queueCapacity: try context.conf.int("spark.streaming.blockQueueSize") ?? 10,
            limiter: RateLimiter(maxRate: maxRate, initialRate: initialRate), clock: context.clock,
            memory: ReceiveMemory(engine: context.engine, streamId: streamId, storageLevel: receiver.storageLevel),
            splitBytes: maxBlockBytes, push: store, onError: { errors.report($0, $1) })
        errors.set { [weak self] message, error in self?.reportError(message, error) }
        try receiver.attach(self)
    }

    var isReceiverStopped: Bool { status.withLock { $0.phase != .started } }

    var info: ReceiverInfo {
        status.withLock { s in
            ReceiverInfo(
                streamId: streamId, name: name, active: s.phase == .started,
                lastErrorMessage: s.lastError?.message ?? "", lastError: s.lastError?.error ?? "",
                lastErrorTime: s.lastError?.time ?? -1)
        }
    }

    /// Starts the generator, then the receiver.
    func start() throws {
        try generator.start()
        startReceiver()
    }

    private func startReceiver() {
        let proceed = status.withLock { s -> Bool in
            guard !s.finished, s.phase != .started else { return false }
            s.phase = .started
            return true
        }
        guard proceed else { return }
        post(.receiverStarted(info))
        receiver.onStart()
    }

    /// Stops the receiver (not the generator); true if it was running.
    @discardableResult
    private func stopReceiver(_ message: String, error: (any Error)?) -> Bool {
        let wasStarted = status.withLock { s -> Bool in
            guard s.phase == .started else { return false }
            s.phase = .stopped
            if let error { s.lastError = (message, "\(error)", wallClockMilliseconds()) }
            return true
        }
        guard wasStarted else { return false }
        receiver.onStop()
        post(.receiverStopped(info))
        return true
    }

    func restart(_ message: String, error: (any Error)?) {
        let proceed = status.withLock { s -> Bool in
            guard !s.finished, !s.restarting else { return false }
            s.restarting = true
            return true
        }
        guard proceed else { return }
        reportError("Restarting receiver with delay \(restartDelay.wholeMilliseconds) ms: \(message)", error)
        do {
            try DetachedThread.run("receiver restart") { [self] in restartAfterDelay(message, error: error) }
        } catch let failure {
            // No thread to restart on: the receiver stops, saying why (its stream gets no more data).
            status.withLock { $0.restarting = false }
            _ = stopReceiver("cannot restart: \(failure)", error: failure)
        }
    }

    private func restartAfterDelay(_ message: String, error: (any Error)?) {
        stopReceiver("Restarting receiver with delay \(restartDelay.wholeMilliseconds) ms: \(message)", error: error)
        let deadline = monotonicNanoseconds() &+ UInt64(restartDelay.wholeMilliseconds) &* 1_000_000
        wake.locked {
            while !status.withLock({ $0.finished }) {
                let now = monotonicNanoseconds()
                if now >= deadline { break }
                wake.wait(nanoseconds: Int(deadline - now))
            }
        }
        status.withLock { $0.restarting = false }
        startReceiver()
    }

    func reportError(_ message: String, _ error: (any Error)?) {
        log("receiver \(name): \(message)\(error.map { ": \($0)" } ?? "")")
        status.withLock { $0.lastError = (message, error.map { "\($0)" } ?? "", wallClockMilliseconds()) }
        post(.receiverError(info))
    }

    /// Stops the receiver for good, then the generator (which pushes everything buffered).
    func stop(_ message: String, error: (any Error)?) {
        let first = status.withLock { s -> Bool in
            defer { s.finished = true }
            return !s.finished
        }
        guard first else { return }
        wake.locked { wake.broadcast() }
        stopReceiver(message, error: error)
        status.withLock { $0.phase = .stopped }
        generator.stop()
    }

    // MARK: Storing

    func storeOne(_ element: Element) throws {
        try generator.add(element)
    }

    func storeBlock(_ elements: [Element]) throws {
        let id = try status.withLock { s throws(StreamingError) -> Int64 in
            guard s.phase == .started else {
                throw StreamingError(.illegalState, "Cannot store data to stream \(streamId): its receiver is stopped")
            }
            defer { s.nextDirectId += 1 }
            return s.nextDirectId
        }
        guard !elements.isEmpty else { return }
        var pending = PendingRecords<Element>()
        if let codec = generator.codec { pending.builder = try codec.makeBuilder() }
        try pending.append(contentsOf: elements, codec: generator.codec)
        // Waits for memory when the budget is short, as blocks of single records do (the caller is paused).
        try store(generator.admit(try pending.seal(id: StreamBlockId(streamId: streamId, uniqueId: id))))
    }
}

/// Forwards a block generator's errors to its supervisor, which exists only after the generator.
private final class ErrorRelay: Sendable {
    private let target = Mutex<(@Sendable (String, any Error) -> Void)?>(nil)
    func set(_ report: @escaping @Sendable (String, any Error) -> Void) { target.withLock { $0 = report } }
    func report(_ message: String, _ error: any Error) { target.withLock { $0 }?(message, error) }
}
