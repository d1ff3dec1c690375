import DequeModule
import Glibc
import SluiceColumnar
import SluiceExecution
import Synchronization

/// Runs batches' jobs on `spark.streaming.concurrentJobs` threads of its own, in submission order, and posts
/// the listener events of each batch and output operation (Spark's `JobScheduler`). With one thread, batches
/// and their output operations run strictly one after another.
final class JobScheduler: Sendable {
    let threadCount: Int
    private let bus: ListenerBus
    /// Called when a job throws: the context reports the error (``StreamingContext/awaitTermination()``).
    private let reportError: @Sendable (String, any Error) -> Void
    /// Called when a batch's jobs all finished, with whether one failed.
    private let batchFinished: @Sendable (BatchInfo, Bool) -> Void
    /// The budget whose use a completed batch reports.
    private let memory: MemoryBudget

    private struct State {
        var queue = Deque<(JobSet, StreamingJob)>()
        var running = 0
        var stopping = false
        var threads: [JoinableThread] = []
    }

    private let state = Mutex(State())
    private let wake = PthreadCondition()

    init(
        threads: Int, bus: ListenerBus, memory: MemoryBudget,
        reportError: @escaping @Sendable (String, any Error) -> Void,
        batchFinished: @escaping @Sendable (BatchInfo, Bool) -> Void
    ) {
        self.threadCount = max(1, threads)
        self.memory = memory
        self.bus = bus
        self.reportError = reportError
        self.batchFinished = batchFinished
    }

    nonisolated(unsafe) private static var jobThreadKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Whether the calling thread is running a streaming job (e.g. `stop()` called inside `foreachRDD`).
    static var onJobThread: Bool { pthread_getspecific(jobThreadKey) != nil }

    func start() throws {
        for _ in 0..<threadCount {
            do {
                let thread = try JoinableThread(name: "job") { [self] in
                    pthread_setspecific(JobScheduler.jobThreadKey, UnsafeRawPointer(bitPattern: 1))
                    run()
                }
                state.withLock { $0.threads.append(thread) }
            } catch {
                stop(gracefully: false)
                throw error
            }
        }
    }

    /// Queues a batch's jobs (a batch with no jobs is not submitted, as in Spark).
    func submit(_ jobSet: JobSet) {
        jobSet.markSubmitted()
        bus.post(.batchSubmitted(jobSet.info))
        state.withLock { s in for job in jobSet.jobs { s.queue.append((jobSet, job)) } }
        wake.locked { wake.broadcast() }
    }

    private func run() {
        while true {
            let next = wake.locked { () -> (JobSet, StreamingJob)? in
                while true {
                    let taken = state.withLock { s -> (JobSet, StreamingJob)?? in
                        if s.stopping && s.queue.isEmpty { return .some(nil) }
                        guard let job = s.queue.popFirst() else { return nil }
                        s.running += 1
                        return .some(job)
                    }
                    if let taken { return taken }
                    wake.wait()
                }
            }
            guard let (jobSet, job) = next else { return }
            execute(job, of: jobSet)
            state.withLock { $0.running -= 1 }
            wake.locked { wake.broadcast() }
        }
    }

    private func execute(_ job: StreamingJob, of jobSet: JobSet) {
        let (started, first) = jobSet.jobStarted(job)
        if first { bus.post(.batchStarted(jobSet.info)) }
        bus.post(.outputOperationStarted(started))
        var failure: (any Error)?
        do {
            try job.body()
        } catch {
            failure = error
        }
        let (finished, complete) = jobSet.jobCompleted(job, failure: failure)
        bus.post(.outputOperationCompleted(finished))
        var info = jobSet.info
        if complete {
            info.memoryByCategory = memory.reservedByCategory
            bus.post(.batchCompleted(info))
        }
        if let failure {
            reportError("Error running job for output operation \(job.outputOpId) (\(job.name)) of batch \(job.time)", failure)
        }
        if complete { batchFinished(info, jobSet.hasFailure) }
    }

    /// Whether no job is queued or running.
    var isIdle: Bool { state.withLock { $0.queue.isEmpty && $0.running == 0 } }

    /// Stops the threads: gracefully after every queued job ran; otherwise queued jobs are dropped and only the
    /// running ones finish. Returns when the threads are gone (or at once when called on a job thread).
    func stop(gracefully: Bool) {
        let threads = state.withLock { s -> [JoinableThread] in
            s.stopping = true
            if !gracefully { s.queue.removeAll() }
            defer { s.threads = [] }
            return s.threads
        }
        wake.locked { wake.broadcast() }
        if JobScheduler.onJobThread {
            for thread in threads { thread.detach() }
        } else {
            for thread in threads { thread.join() }
        }
    }
}
