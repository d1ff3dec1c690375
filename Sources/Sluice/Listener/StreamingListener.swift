import SluiceColumnar

/// Receives a streaming context's events (Spark's `StreamingListener`): every method has a default that does
/// nothing. Events arrive in order on one thread of the context's own; a slow listener delays later events,
/// never a batch (events past `sluice.listener.queueCapacity` waiting are dropped and counted).
public protocol StreamingListener: AnyObject, Sendable {
    /// The context started.
    func onStreamingStarted(_ event: StreamingStarted)
    /// A receiver started.
    func onReceiverStarted(_ receiver: ReceiverInfo)
    /// A receiver reported an error.
    func onReceiverError(_ receiver: ReceiverInfo)
    /// A receiver stopped.
    func onReceiverStopped(_ receiver: ReceiverInfo)
    /// A batch's jobs were submitted.
    func onBatchSubmitted(_ batch: BatchInfo)
    /// A batch's first job started.
    func onBatchStarted(_ batch: BatchInfo)
    /// A batch's jobs all finished (some may have failed: see its output operations).
    func onBatchCompleted(_ batch: BatchInfo)
    /// An output operation of a batch started.
    func onOutputOperationStarted(_ operation: OutputOperationInfo)
    /// An output operation of a batch finished (``OutputOperationInfo/failureReason`` says if it failed).
    func onOutputOperationCompleted(_ operation: OutputOperationInfo)
}

extension StreamingListener {
    public func onStreamingStarted(_ event: StreamingStarted) {}
    public func onReceiverStarted(_ receiver: ReceiverInfo) {}
    public func onReceiverError(_ receiver: ReceiverInfo) {}
    public func onReceiverStopped(_ receiver: ReceiverInfo) {}
    public func onBatchSubmitted(_ batch: BatchInfo) {}
    public func onBatchStarted(_ batch: BatchInfo) {}
    public func onBatchCompleted(_ batch: BatchInfo) {}
    public func onOutputOperationStarted(_ operation: OutputOperationInfo) {}
    public func onOutputOperationCompleted(_ operation: OutputOperationInfo) {}
}

/// The context started, at `time` (milliseconds since the epoch, wall clock).
public struct StreamingStarted: Sendable, Equatable, Codable {
    public let time: Int64
    /// The application's id (`local-<start time>`, as Spark names local applications); nil in old event logs.
    public let appId: String?
    /// `spark.app.name`.
    public let appName: String?
    /// The batch interval in milliseconds.
    public let batchDuration: Int64?

    public init(time: Int64, appId: String? = nil, appName: String? = nil, batchDuration: Int64? = nil) {
        self.time = time
        self.appId = appId
        self.appName = appName
        self.batchDuration = batchDuration
    }
}

/// What is known about a receiver (Spark's `ReceiverInfo`).
public struct ReceiverInfo: Sendable, Equatable, Codable {
    /// The input stream it feeds.
    public var streamId: Int
    /// "<ReceiverClass>-<streamId>".
    public var name: String
    /// Whether it is running.
    public var active: Bool
    /// Where it runs ("localhost": one process).
    public var location: String
    /// The last error it reported ("" if none).
    public var lastErrorMessage: String
    /// The last error's description ("" if none).
    public var lastError: String
    /// When the last error was reported, ms since the epoch (-1 if none).
    public var lastErrorTime: Int64

    public init(
        streamId: Int, name: String, active: Bool, location: String = "localhost", lastErrorMessage: String = "",
        lastError: String = "", lastErrorTime: Int64 = -1
    ) {
        self.streamId = streamId
        self.name = name
        self.active = active
        self.location = location
        self.lastErrorMessage = lastErrorMessage
        self.lastError = lastError
        self.lastErrorTime = lastErrorTime
    }
}

/// What one input stream contributed to a batch.
public struct StreamInputInfo: Sendable, Equatable, Codable {
    /// The input stream.
    public var inputStreamId: Int
    /// Records in the batch from that stream.
    public var numRecords: Int64
    /// Free-form facts ("Description" is shown by monitoring).
    public var metadata: [String: String]
    /// A receiver's rate limit when the batch was cut, records per second (nil: unlimited or no receiver).
    public var rateLimit: Double?
    /// Blocks a receiver had made but not yet stored when the batch was cut (its bounded block queue).
    public var queuedBlocks: Int
    /// The terms of the PID estimator's last estimate, with backpressure on.
    public var pidTerms: PIDTerms?

    public init(
        inputStreamId: Int, numRecords: Int64, metadata: [String: String] = [:], rateLimit: Double? = nil,
        queuedBlocks: Int = 0, pidTerms: PIDTerms? = nil
    ) {
        self.inputStreamId = inputStreamId
        self.numRecords = numRecords
        self.metadata = metadata
        self.rateLimit = rateLimit
        self.queuedBlocks = queuedBlocks
        self.pidTerms = pidTerms
    }
}

/// One output operation of one batch (Spark's `OutputOperationInfo`). Times are ms since the epoch.
public struct OutputOperationInfo: Sendable, Equatable, Codable {
    public var batchTime: Time
    /// Its index among the context's output operations, in registration order.
    public var id: Int
    /// The operation: "print", "foreachRDD", "saveAsTextFiles", ...
    public var name: String
    /// Where the program created it.
    public var description: String
    public var startTime: Int64?
    public var endTime: Int64?
    /// Why it failed, if it did.
    public var failureReason: String?

    public init(
        batchTime: Time, id: Int, name: String, description: String, startTime: Int64? = nil, endTime: Int64? = nil,
        failureReason: String? = nil
    ) {
        self.batchTime = batchTime
        self.id = id
        self.name = name
        self.description = description
        self.startTime = startTime
        self.endTime = endTime
        self.failureReason = failureReason
    }

    /// `endTime - startTime`, once both are known.
    public var duration: Int64? {
        guard let startTime, let endTime else { return nil }
        return endTime - startTime
    }
}

/// One batch (Spark's `BatchInfo`). Times are ms since the epoch, on the wall clock.
public struct BatchInfo: Sendable, Equatable, Codable {
    /// The batch's time (a multiple of the batch interval).
    public var batchTime: Time
    /// What each input stream contributed.
    public var streamIdToInputInfo: [Int: StreamInputInfo]
    /// When its jobs were submitted.
    public var submissionTime: Int64
    /// When its first job started.
    public var processingStartTime: Int64?
    /// When its last job finished.
    public var processingEndTime: Int64?
    /// Its output operations.
    public var outputOperationInfos: [Int: OutputOperationInfo]
    /// Bytes of the memory budget (`sluice.memory.limit`) reserved when the batch completed, per category
    /// (received blocks, shuffles, cached RDDs, state, windows); nil before then. Sluice's addition.
    public var memoryByCategory: [MemoryCategory: Int]?

    public init(
        batchTime: Time, streamIdToInputInfo: [Int: StreamInputInfo], submissionTime: Int64,
        processingStartTime: Int64? = nil, processingEndTime: Int64? = nil,
        outputOperationInfos: [Int: OutputOperationInfo] = [:]
    ) {
        self.batchTime = batchTime
        self.streamIdToInputInfo = streamIdToInputInfo
        self.submissionTime = submissionTime
        self.processingStartTime = processingStartTime
        self.processingEndTime = processingEndTime
        self.outputOperationInfos = outputOperationInfos
    }

    /// Records in the batch, over all input streams.
    public var numRecords: Int64 { streamIdToInputInfo.values.reduce(0) { $0 + $1.numRecords } }
    /// Time waiting for the jobs to start: `processingStartTime - submissionTime`.
    public var schedulingDelay: Int64? { processingStartTime.map { $0 - submissionTime } }
    /// Time processing: `processingEndTime - processingStartTime`.
    public var processingDelay: Int64? {
        guard let start = processingStartTime, let end = processingEndTime else { return nil }
        return end - start
    }
    /// `schedulingDelay + processingDelay`.
    public var totalDelay: Int64? {
        guard let scheduling = schedulingDelay, let processing = processingDelay else { return nil }
        return scheduling + processing
    }
}
