import Glibc
import Synchronization

/// One output operation's work for one batch.
final class StreamingJob: Sendable {
    let time: Time
    /// The output operation's index, in registration order.
    let outputOpId: Int
    let name: String
    let callSite: String
    let body: @Sendable () throws -> Void

    init(time: Time, outputOpId: Int, name: String, callSite: String, body: @escaping @Sendable () throws -> Void) {
        self.time = time
        self.outputOpId = outputOpId
        self.name = name
        self.callSite = callSite
        self.body = body
    }
}

/// The jobs of one batch and its timing (Spark's `JobSet`).
final class JobSet: Sendable {
    let time: Time
    let jobs: [StreamingJob]
    let inputInfos: [Int: StreamInputInfo]

    private struct State {
        var submissionTime: Int64 = 0
        var processingStartTime: Int64?
        var processingEndTime: Int64?
        var operations: [Int: OutputOperationInfo] = [:]
        var completed = 0
        var failed = false
    }

    private let state = Mutex(State())

    init(time: Time, jobs: [StreamingJob], inputInfos: [Int: StreamInputInfo]) {
        self.time = time
        self.jobs = jobs
        self.inputInfos = inputInfos
        state.withLock { s in
            for job in jobs {
                s.operations[job.outputOpId] = OutputOperationInfo(
                    batchTime: time, id: job.outputOpId, name: job.name, description: job.callSite,
                    startTime: nil, endTime: nil, failureReason: nil)
            }
        }
    }

    func markSubmitted() { state.withLock { $0.submissionTime = wallClockMilliseconds() } }

    /// Records that `job` started; returns the operation's info and, if it is the batch's first job, true.
    func jobStarted(_ job: StreamingJob) -> (OutputOperationInfo, Bool) {
        state.withLock { s in
            let now = wallClockMilliseconds()
            let first = s.processingStartTime == nil
            if first { s.processingStartTime = now }
            s.operations[job.outputOpId]?.startTime = now
            return (s.operations[job.outputOpId]!, first)  // Safe: every job of the set has an entry.
        }
    }

    /// Records that `job` finished (with `failure`); returns its info and whether the batch is now complete.
    func jobCompleted(_ job: StreamingJob, failure: (any Error)?) -> (OutputOperationInfo, Bool) {
        state.withLock { s in
            let now = wallClockMilliseconds()
            s.operations[job.outputOpId]?.endTime = now
            if let failure {
                s.operations[job.outputOpId]?.failureReason = "\(failure)"
                s.failed = true
            }
            s.completed += 1
            let complete = s.completed == jobs.count
            if complete { s.processingEndTime = now }
            return (s.operations[job.outputOpId]!, complete)  // Safe: every job of the set has an entry.
        }
    }

    var hasFailure: Bool { state.withLock { $0.failed } }

    var info: BatchInfo {
        state.withLock { s in
            BatchInfo(
                batchTime: time, streamIdToInputInfo: inputInfos, submissionTime: s.submissionTime,
                processingStartTime: s.processingStartTime, processingEndTime: s.processingEndTime,
                outputOperationInfos: s.operations)
        }
    }
}

/// Milliseconds since the epoch on the wall clock (batch timings are wall-clock, as in Spark).
func wallClockMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000
}
