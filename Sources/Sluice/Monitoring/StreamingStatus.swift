import DequeModule
import FoundationEssentials
import Glibc
import Synchronization

// What Spark's Streaming tab and its REST API (`/api/v1/applications/{appId}/streaming/...`) show, with Spark's
// field names, so that the page and the JSON API read one model.

/// `GET /api/v1/applications` (each) and `.../applications/{appId}`: Spark's `ApplicationInfo`.
public struct SparkApplication: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var attempts: [SparkApplicationAttempt]
}

/// One run of an application (Spark's `ApplicationAttemptInfo`; Sluice runs each application once).
public struct SparkApplicationAttempt: Codable, Sendable, Equatable {
    public var startTime: String
    /// Spark writes the epoch's last millisecond (`1969-12-31T23:59:59.999GMT`) while the run goes on.
    public var endTime: String
    public var lastUpdated: String
    /// Milliseconds from the start to the end, or to the last update while the run goes on.
    public var duration: Int64
    public var sparkUser: String
    public var completed: Bool
    public var appSparkVersion: String
    public var startTimeEpoch: Int64
    public var endTimeEpoch: Int64
    public var lastUpdatedEpoch: Int64
}

/// `GET .../streaming/statistics`.
public struct SparkStreamingStatistics: Codable, Sendable, Equatable {
    public var startTime: String
    public var batchDuration: Int64
    public var numReceivers: Int
    public var numActiveReceivers: Int
    public var numInactiveReceivers: Int
    public var numTotalCompletedBatches: Int64
    public var numRetainedCompletedBatches: Int64
    public var numActiveBatches: Int64
    public var numProcessedRecords: Int64
    public var numReceivedRecords: Int64
    public var avgInputRate: Double?
    public var avgSchedulingDelay: Int64?
    public var avgProcessingTime: Int64?
    public var avgTotalDelay: Int64?
}

/// `GET .../streaming/batches` (each) and `.../batches/{batchId}`.
public struct SparkBatch: Codable, Sendable, Equatable {
    /// The batch time in milliseconds, as Spark numbers batches.
    public var batchId: Int64
    public var batchTime: String
    /// `QUEUED`, `PROCESSING` or `COMPLETED`.
    public var status: String
    public var batchDuration: Int64
    public var inputSize: Int64
    public var schedulingDelay: Int64?
    public var processingTime: Int64?
    public var totalDelay: Int64?
    public var numActiveOutputOps: Int
    public var numCompletedOutputOps: Int
    public var numFailedOutputOps: Int
    public var numTotalOutputOps: Int
    public var firstFailureReason: String?
}

/// `GET .../streaming/batches/{batchId}/operations` (each).
public struct SparkOutputOperation: Codable, Sendable, Equatable {
    public var outputOpId: Int
    public var name: String
    public var description: String
    public var startTime: String?
    public var endTime: String?
    public var duration: Int64?
    public var failureReason: String?
    /// Spark lists the jobs of the operation; Sluice runs each operation as one job, numbered by its id.
    public var jobIds: [Int]
}

/// `GET .../streaming/receivers` (each) and `.../receivers/{streamId}`.
public struct SparkReceiver: Codable, Sendable, Equatable {
    public var streamId: Int
    public var streamName: String
    public var isActive: Bool?
    public var executorId: String
    public var executorHost: String
    public var lastErrorTime: String?
    public var lastErrorMessage: String?
    public var lastError: String?
    public var avgEventRate: Double?
    /// (batch time in ms, records per second) for the retained batches.
    public var eventRates: [[Double]]
}

/// A context's progress as Spark's Streaming tab keeps it (Spark's `StreamingJobProgressListener`): the
/// batches waiting and running, the last `spark.streaming.ui.retainedBatches` completed ones, the receivers,
/// and totals since the start. Fed by the listener events; read from any thread.
public final class StreamingStatus: StreamingListener {
    private struct State {
        var startTime: Int64?
        var appId: String?
        var appName: String?
        /// When the last event happened, ms since the epoch.
        var lastUpdated: Int64 = 0
        var waiting: [Time: BatchInfo] = [:]
        var running: [Time: BatchInfo] = [:]
        var completed = Deque<BatchInfo>()
        var totalCompleted: Int64 = 0
        var totalProcessedRecords: Int64 = 0
        var totalReceivedRecords: Int64 = 0
        var receivers: [Int: ReceiverInfo] = [:]
    }

    /// The user running the program (`sparkUser`), looked up once.
    private static let user = currentUserName()

    /// The batch interval in milliseconds.
    public let batchDuration: Int64
    /// How many completed batches are kept.
    public let retainedBatches: Int
    private let state = Mutex(State())

    public init(batchDuration: Duration, retainedBatches: Int) {
        self.batchDuration = batchDuration.wholeMilliseconds
        self.retainedBatches = max(1, retainedBatches)
    }

    // MARK: Events

    public func onStreamingStarted(_ event: StreamingStarted) {
        state.withLock { s in
            s.startTime = event.time
            s.appId = event.appId
            s.appName = event.appName
            s.lastUpdated = max(s.lastUpdated, event.time)
        }
    }
    public func onReceiverStarted(_ receiver: ReceiverInfo) { record(receiver) }
    public func onReceiverError(_ receiver: ReceiverInfo) { record(receiver) }
    public func onReceiverStopped(_ receiver: ReceiverInfo) { record(receiver) }

    private func record(_ receiver: ReceiverInfo) {
        state.withLock { s in
            s.receivers[receiver.streamId] = receiver
            s.lastUpdated = max(s.lastUpdated, receiver.lastErrorTime)
        }
    }

    public func onBatchSubmitted(_ batch: BatchInfo) {
        state.withLock { s in
            s.waiting[batch.batchTime] = batch
            s.totalReceivedRecords += batch.numRecords
            s.lastUpdated = max(s.lastUpdated, batch.submissionTime)
        }
    }

    public func onBatchStarted(_ batch: BatchInfo) {
        state.withLock { s in
            s.waiting[batch.batchTime] = nil
            s.running[batch.batchTime] = batch
            s.lastUpdated = max(s.lastUpdated, batch.processingStartTime ?? 0)
        }
    }

    public func onBatchCompleted(_ batch: BatchInfo) {
        state.withLock { s in
            s.waiting[batch.batchTime] = nil
            s.running[batch.batchTime] = nil
            s.completed.append(batch)
            while s.completed.count > retainedBatches { s.completed.removeFirst() }
            s.totalCompleted += 1
            s.totalProcessedRecords += batch.numRecords
            s.lastUpdated = max(s.lastUpdated, batch.processingEndTime ?? 0)
        }
    }

    public func onOutputOperationStarted(_ operation: OutputOperationInfo) { update(operation) }
    public func onOutputOperationCompleted(_ operation: OutputOperationInfo) { update(operation) }

    private func update(_ operation: OutputOperationInfo) {
        state.withLock { s in
            s.lastUpdated = max(s.lastUpdated, operation.endTime ?? operation.startTime ?? 0)
            if s.running[operation.batchTime] != nil {
                s.running[operation.batchTime]?.outputOperationInfos[operation.id] = operation
            } else if let batch = s.waiting.removeValue(forKey: operation.batchTime) {
                var started = batch
                started.outputOperationInfos[operation.id] = operation
                s.running[operation.batchTime] = started
            }
        }
    }

    // MARK: Spark's REST model

    /// The application (`/api/v1/applications`); `completed` once its context stopped (always, for a run read
    /// back from an event log).
    public func application(completed: Bool) -> SparkApplication {
        let (start, id, name, updated) = state.withLock { s in (s.startTime ?? 0, s.appId, s.appName, s.lastUpdated) }
        let end: Int64 = completed ? max(start, updated) : -1
        let attempt = SparkApplicationAttempt(
            startTime: sparkDate(start), endTime: sparkDate(end), lastUpdated: sparkDate(max(start, updated)),
            duration: max(start, updated) - start, sparkUser: Self.user, completed: completed,
            appSparkVersion: sluiceVersion, startTimeEpoch: start, endTimeEpoch: end, lastUpdatedEpoch: max(start, updated))
        return SparkApplication(id: id ?? "local-\(start)", name: name ?? "sluice", attempts: [attempt])
    }

    /// What each input stream gave a batch (Sluice's addition to Spark's model: records, the rate limit, the
    /// blocks queued, the PID estimator's terms), by stream id; nil for a batch not kept.
    public func inputs(batchId: Int64) -> [StreamInputInfo]? {
        kept(batchId).map { $0.info.streamIdToInputInfo.values.sorted { $0.inputStreamId < $1.inputStreamId } }
    }

    /// `statistics`.
    public func statistics() -> SparkStreamingStatistics {
        state.withLock { s in
            let completed = s.completed.elements
            func average(_ values: [Int64]) -> Int64? { values.isEmpty ? nil : values.reduce(0, +) / Int64(values.count) }
            let rates = completed.map { Double($0.numRecords) * 1_000 / Double(max(1, batchDuration)) }
            let active = s.receivers.values.filter(\.active).count
            return SparkStreamingStatistics(
                startTime: sparkDate(s.startTime ?? 0), batchDuration: batchDuration, numReceivers: s.receivers.count,
                numActiveReceivers: active, numInactiveReceivers: s.receivers.count - active,
                numTotalCompletedBatches: s.totalCompleted, numRetainedCompletedBatches: Int64(completed.count),
                numActiveBatches: Int64(s.waiting.count + s.running.count), numProcessedRecords: s.totalProcessedRecords,
                numReceivedRecords: s.totalReceivedRecords,
                avgInputRate: rates.isEmpty ? nil : rates.reduce(0, +) / Double(rates.count),
                avgSchedulingDelay: average(completed.compactMap(\.schedulingDelay)),
                avgProcessingTime: average(completed.compactMap(\.processingDelay)),
                avgTotalDelay: average(completed.compactMap(\.totalDelay)))
        }
    }

    /// `batches`: waiting, running and retained completed batches, newest first.
    public func batches() -> [SparkBatch] {
        let (waiting, running, completed) = state.withLock { s in
            (Array(s.waiting.values), Array(s.running.values), s.completed.elements)
        }
        let all = waiting.map { ($0, "QUEUED") } + running.map { ($0, "PROCESSING") } + completed.map { ($0, "COMPLETED") }
        return all.sorted { $0.0.batchTime > $1.0.batchTime }.map { sparkBatch($0.0, status: $0.1) }
    }

    /// `batches/{batchId}`.
    public func batch(id: Int64) -> SparkBatch? { kept(id).map { sparkBatch($0.info, status: $0.status) } }

    /// Batch `batchId` if kept (waiting, running or among the retained completed ones), with its status.
    private func kept(_ batchId: Int64) -> (info: BatchInfo, status: String)? {
        let time = Time(milliseconds: batchId)
        return state.withLock { s in
            if let waiting = s.waiting[time] { return (waiting, "QUEUED") }
            if let running = s.running[time] { return (running, "PROCESSING") }
            return s.completed.last { $0.batchTime == time }.map { ($0, "COMPLETED") }
        }
    }

    /// `batches/{batchId}/operations`, by output operation id; nil for a batch not kept.
    public func operations(batchId: Int64) -> [SparkOutputOperation]? {
        guard let info = kept(batchId)?.info else { return nil }
        return info.outputOperationInfos.values.sorted { $0.id < $1.id }.map { o in
            SparkOutputOperation(
                outputOpId: o.id, name: o.name, description: o.description, startTime: o.startTime.map(sparkDate),
                endTime: o.endTime.map(sparkDate), duration: o.duration, failureReason: o.failureReason, jobIds: [o.id])
        }
    }

    /// `receivers`, by stream id.
    public func receivers() -> [SparkReceiver] {
        let (receivers, completed) = state.withLock { s in (Array(s.receivers.values), s.completed.elements) }
        return receivers.sorted { $0.streamId < $1.streamId }.map { r in
            let rates = completed.compactMap { b -> [Double]? in
                guard let input = b.streamIdToInputInfo[r.streamId] else { return nil }
                return [Double(b.batchTime.milliseconds), Double(input.numRecords) * 1_000 / Double(max(1, batchDuration))]
            }
            return SparkReceiver(
                streamId: r.streamId, streamName: r.name, isActive: r.active, executorId: "driver",
                executorHost: r.location, lastErrorTime: r.lastErrorTime >= 0 ? sparkDate(r.lastErrorTime) : nil,
                lastErrorMessage: r.lastErrorMessage.isEmpty ? nil : r.lastErrorMessage,
                lastError: r.lastError.isEmpty ? nil : r.lastError,
                avgEventRate: rates.isEmpty ? nil : rates.map { $0[1] }.reduce(0, +) / Double(rates.count), eventRates: rates)
        }
    }

    /// `receivers/{streamId}`.
    public func receiver(streamId: Int) -> SparkReceiver? { receivers().first { $0.streamId == streamId } }

    private func sparkBatch(_ b: BatchInfo, status: String) -> SparkBatch {
        let operations = b.outputOperationInfos.values
        let failed = operations.filter { $0.failureReason != nil }
        return SparkBatch(
            batchId: b.batchTime.milliseconds, batchTime: sparkDate(b.batchTime.milliseconds), status: status,
            batchDuration: batchDuration, inputSize: b.numRecords, schedulingDelay: b.schedulingDelay,
            processingTime: b.processingDelay, totalDelay: b.totalDelay,
            numActiveOutputOps: operations.filter { $0.startTime != nil && $0.endTime == nil }.count,
            numCompletedOutputOps: operations.filter { $0.endTime != nil && $0.failureReason == nil }.count,
            numFailedOutputOps: failed.count, numTotalOutputOps: operations.count,
            firstFailureReason: failed.sorted { $0.id < $1.id }.first?.failureReason)
    }
}

/// The version the API reports as `appSparkVersion`.
let sluiceVersion = "sluice-0.1 (Spark 1.5 DStream API)"

/// The user running the program (`sparkUser`), from the password database, or `$USER`.
func currentUserName() -> String {
    if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name { return String(cString: name) }
    return getenv("USER").map { String(cString: $0) } ?? "unknown"
}

/// A time in milliseconds since the epoch as Spark's REST API writes dates: `2026-12-03T13:27:00.123GMT`.
func sparkDate(_ milliseconds: Int64) -> String {
    let (seconds, millis) = milliseconds.quotientAndRemainder(dividingBy: 1_000)
    let (wholeSeconds, fraction) = millis < 0 ? (seconds - 1, millis + 1_000) : (seconds, millis)
    // ISO 8601 in UTC ends in Z: Spark writes the milliseconds, then GMT.
    let text = Date(timeIntervalSince1970: Double(wholeSeconds)).formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
    let digits = String(fraction)
    return text.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "GMT"
}
