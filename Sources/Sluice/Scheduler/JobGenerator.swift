import Glibc
import SluiceExecution
import Synchronization

/// Generates a batch's jobs at every batch time, on a thread that waits for the context's clock (Spark's
/// `JobGenerator` and `RecurringTimer`), and keeps track of which batches are done.
final class JobGenerator: Sendable {
    let graph: DStreamGraph
    let batchDuration: Duration
    let waiter: ClockWaiter
    private let scheduler: JobScheduler
    private let reportError: @Sendable (String, any Error) -> Void
    private let inputInfos: @Sendable (Time) -> [Int: StreamInputInfo]
    /// Called on the job thread when a batch's jobs all succeeded, before its metadata is cleared (the
    /// context checkpoints there).
    private let completed: @Sendable (Time) -> Void

    private struct State {
        var firstTime: Time?
        /// The time the timer waits for next.
        var nextTime: Time?
        /// The last batch time the timer generated.
        var lastGenerated: Time?
        /// Batches generated whose jobs have not all finished.
        var pending: Set<Time> = []
        /// Stop after generating this batch (graceful stop: the timer's one last tick).
        var stopAfter: Time?
        var thread: JoinableThread?
        var running = false
        /// Batches to generate at once before the timer starts (recovery).
        var rerun: [Time] = []
    }

    private let state = Mutex(State())
    private let progress = PthreadCondition()

    init(
        graph: DStreamGraph, clock: any StreamingClock, scheduler: JobScheduler,
        reportError: @escaping @Sendable (String, any Error) -> Void,
        inputInfos: @escaping @Sendable (Time) -> [Int: StreamInputInfo],
        completed: @escaping @Sendable (Time) -> Void
    ) {
        self.graph = graph
        self.batchDuration = graph.batchDuration
        self.waiter = ClockWaiter(clock: clock)
        self.scheduler = scheduler
        self.reportError = reportError
        self.inputInfos = inputInfos
        self.completed = completed
    }

    /// The first batch time for a clock reading `now`: the next multiple of the batch duration (Spark's
    /// `RecurringTimer.getStartTime`).
    static func firstBatchTime(now: Time, batchDuration: Duration) -> Time {
        let period = batchDuration.wholeMilliseconds
        return Time(milliseconds: (now.milliseconds / period + 1) * period)
    }

    /// Starts generating at `firstTime`; after recovery, the batches of `rerun` (earlier times: those the
    /// checkpoint had pending and those missed while the program was down) are generated first, at once.
    func start(firstTime: Time, rerun: [Time] = []) throws {
        state.withLock { s in
            s.firstTime = firstTime
            s.nextTime = firstTime
            s.running = true
            s.rerun = rerun.filter { $0 < firstTime }.sorted()
        }
        let thread = try JoinableThread(name: "job generator") { [self] in run() }
        state.withLock { $0.thread = thread }
    }

    private func run() {
        defer {
            state.withLock { $0.running = false }
            progress.locked { progress.broadcast() }
        }
        while let time = state.withLock({ s in s.nextTime == nil || s.rerun.isEmpty ? nil : s.rerun.removeFirst() }) {
            generate(time)
        }
        while let time = state.withLock({ $0.nextTime }) {
            guard waiter.wait(until: time) else { return }
            generate(time)
            let done = state.withLock { s -> Bool in
                s.nextTime = time + batchDuration
                return s.stopAfter.map { time >= $0 } ?? false
            }
            if done { return }
        }
    }

    /// Generates and submits batch `time`'s jobs.
    func generate(_ time: Time) {
        let jobs: [StreamingJob]
        do {
            jobs = try graph.generateJobs(time)
        } catch {
            reportError("Error generating jobs for time \(time)", error)
            jobs = []
        }
        let infos = inputInfos(time)
        state.withLock { s in
            s.lastGenerated = time
            if !jobs.isEmpty { s.pending.insert(time) }
        }
        if jobs.isEmpty {
            progress.locked { progress.broadcast() }
        } else {
            scheduler.submit(JobSet(time: time, jobs: jobs, inputInfos: infos))
        }
    }

    /// Called when batch `time`'s jobs all finished.
    func batchFinished(_ time: Time, failed: Bool) {
        if !failed {
            completed(time)
            graph.clearMetadata(time)
        }
        state.withLock { _ = $0.pending.remove(time) }
        progress.locked { progress.broadcast() }
    }

    /// Batches generated whose jobs have not all finished.
    var pendingTimes: [Time] { state.withLock { $0.pending.sorted() } }

    /// The last batch time generated.
    var lastGenerated: Time? { state.withLock { $0.lastGenerated } }

    /// Whether batch `time` and every batch before it were generated and all their jobs finished (a batch
    /// without jobs is done once generated, but earlier batches' jobs may still be queued behind it).
    func isHandled(_ time: Time) -> Bool {
        state.withLock { s in
            (s.lastGenerated.map { time <= $0 } ?? false) && !s.pending.contains { $0 <= time }
        }
    }

    /// Blocks until `condition` holds over the generator's progress, or `timeoutNanoseconds` pass; true if it held.
    func waitFor(timeoutNanoseconds: UInt64, _ condition: () -> Bool) -> Bool {
        let deadline = monotonicNanoseconds() &+ timeoutNanoseconds
        return progress.locked {
            while !condition() {
                let now = monotonicNanoseconds()
                if now >= deadline { return false }
                progress.wait(nanoseconds: Int(min(deadline - now, 50_000_000)))
            }
            return true
        }
    }

    /// Stops generating. Gracefully, the timer generates one last batch (at the time it is waiting for) and
    /// every generated batch is waited for, within `timeout`; otherwise it stops at once. Returns whether the
    /// graceful stop finished in time.
    @discardableResult
    func stop(gracefully: Bool, timeout: Duration) -> Bool {
        let deadline = monotonicNanoseconds() &+ UInt64(max(0, timeout.wholeMilliseconds)) &* 1_000_000
        var finished = true
        if gracefully {
            let running = state.withLock { s -> Bool in
                s.stopAfter = s.nextTime
                return s.running
            }
            if running {
                finished = waitFor(timeoutNanoseconds: deadline &- min(deadline, monotonicNanoseconds())) {
                    !state.withLock { $0.running }
                }
            }
        }
        waiter.interrupt()
        state.withLock { $0.nextTime = nil }
        state.withLock { s in defer { s.thread = nil }; return s.thread }?.join()
        if gracefully && finished {
            finished = waitFor(timeoutNanoseconds: deadline &- min(deadline, monotonicNanoseconds())) {
                state.withLock { $0.pending.isEmpty }
            }
        }
        return finished
    }
}
