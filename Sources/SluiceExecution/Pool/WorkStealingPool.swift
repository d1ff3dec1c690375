import CSluiceIntrinsics
import DequeModule
import Glibc
import Synchronization

/// An error from the pool itself (not from a task).
public struct PoolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    public var description: String { message }
}

/// Runs jobs of tasks on a fixed set of worker threads (`local[n]` = n workers), one deque per worker.
///
/// A worker pops its own newest task first (what it just pushed is warm in its cache) and, when its deque is
/// empty, steals the oldest task of another worker. No thread is created per task. A job submitted from inside
/// a task (a nested job, e.g. an action inside `foreachRDD`) pushes its tasks onto the submitting worker's
/// deque and that worker runs tasks while it waits, so nesting never deadlocks, even on one worker. A task
/// that throws fails its job with that error (tasks of the job not yet started are skipped); the pool and its
/// other jobs carry on.
///
/// Tasks are not preempted, but they yield: the engine's operators pass through ``yieldPoint()`` between
/// chunks, and a task that has run for longer than ``yieldIntervalNanoseconds`` there runs queued tasks of
/// other jobs inline (for up to that long again) before carrying on, so one long partition cannot starve the
/// other jobs on its worker.
///
/// Releasing the pool stops it: queued tasks still run, then the threads exit. That may happen on one of its
/// own workers (a task's closure held the last reference), so the threads keep what they use alive themselves.
public final class WorkStealingPool: Sendable {
    let core: PoolCore

    /// The number of worker threads.
    public var workerCount: Int { core.workers.count }

    /// How long an idle worker looks for a task before it sleeps, by default.
    public static let defaultSpinWait = Duration.microseconds(50)

    /// A pool of `workers` threads (at least 1). A worker that runs out of tasks keeps looking for one for
    /// `spinWait` before it sleeps: on a virtual machine an idle CPU halts, and waking it (for the next stage of
    /// a job, a moment later) took 30-60 µs there; a spinning worker starts the task at once.
    /// - Throws: ``PoolError`` when `workers` is not positive, `spinWait` is negative, or a thread cannot be
    ///   created.
    public init(workers: Int, spinWait: Duration = WorkStealingPool.defaultSpinWait) throws {
        guard workers >= 1 else { throw PoolError(message: "a pool needs at least 1 worker, got \(workers)") }
        guard spinWait >= .zero else { throw PoolError(message: "a pool's spin wait cannot be negative, got \(spinWait)") }
        core = PoolCore(workers: workers, spinNanoseconds: UInt64(min(spinWait / .nanoseconds(1), 1e18)))
        for worker in core.workers {
            let me = WorkerThread(worker: worker, core: core)
            let thread: pthread_t
            do {
                thread = try startThread("worker \(worker.index)") { me.run() }
            } catch {
                core.stop()
                throw PoolError(message: error.message)
            }
            core.threads.withLock { $0.append(UInt(thread)) }
        }
    }

    deinit { core.stop() }

    /// Runs `body(i)` for every `i` in `0..<count` as one job and returns when all have finished.
    /// - Throws: the first error a task threw (after every started task finished), or ``PoolError`` after
    ///   ``shutdown()``.
    public func run(tasks count: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
        guard !core.stopping.load(ordering: .relaxed) else {
            throw PoolError(message: "the pool was shut down; no job can run on it")
        }
        guard count > 0 else { return }
        let nested = ownWorker
        let job = Job(count: count, wakeOnDone: nested == nil ? nil : core.parking, body: body)
        if let current = nested {
            current.worker.deque.withLock { d in for i in 0..<count { d.append(TaskRef(job: job, index: i)) } }
            core.announce(count)
            wait(on: current, until: { job.isDone })  // the job wakes the waiters when it finishes
        } else {
            core.enqueue(job)
            job.waitUntilDone()
        }
        if let error = job.firstError.withLock({ $0 }) { throw error }
    }

    /// Blocks until `done()` is true; whoever makes it true calls ``wakeWaiters()``. On one of this pool's
    /// workers it runs queued tasks meanwhile (so that waiting for work queued behind the caller cannot
    /// deadlock) and sleeps only while none is queued; elsewhere it sleeps. No polling: the sleep ends when a
    /// task is queued or the waiters are woken.
    func wait(until done: () -> Bool) {
        if let current = ownWorker {
            wait(on: current, until: done)
        } else {
            core.outsideWaiters.locked { while !done() { core.outsideWaiters.wait() } }
        }
    }

    /// The worker of this pool running the caller, if it is one.
    private var ownWorker: WorkerThread? { WorkerThread.current.flatMap { $0.core === core ? $0 : nil } }

    private func wait(on current: WorkerThread, until done: () -> Bool) {
        let core = self.core
        current.help(until: done) {
            // Checked under `parking`'s lock, which `announce` and `wakeWaiters` signal under: no lost wake-up.
            core.parking.locked {
                if !done() && core.queued.load(ordering: .relaxed) == 0 { core.parking.wait() }
            }
        }
        // A single task's wake-up may have come here: pass it on if a task is still queued.
        if core.queued.load(ordering: .relaxed) > 0 { core.parking.locked { core.parking.signal() } }
    }

    /// Wakes every ``wait(until:)`` to check its condition again.
    func wakeWaiters() {
        core.parking.locked { core.parking.broadcast() }
        core.outsideWaiters.locked { core.outsideWaiters.broadcast() }
    }

    /// Finishes the queued tasks, stops the workers and (called from outside the pool) waits for their threads.
    /// Idempotent.
    public func shutdown() { core.stop() }

    /// How long a task runs between two yields (see ``yieldPoint()``).
    public static let yieldIntervalNanoseconds: UInt64 = 2_000_000

    /// Deepest nesting of tasks run inline by yields, so that yields cannot grow the stack without bound.
    static let maxYieldDepth = 8

    /// A point where a long task lets others run: on a worker whose current task has run for
    /// ``yieldIntervalNanoseconds`` since it started or last yielded, runs one queued task inline. Cheap
    /// (a clock read) when there is nothing to do; does nothing outside the pool's threads.
    public static func yieldPoint() {
        guard let current = WorkerThread.current else { return }
        current.yieldIfDue()
    }
}

/// What the worker threads share; each thread keeps it alive while it runs.
final class PoolCore: Sendable {
    let workers: [Worker]
    /// Tasks pushed and not yet taken, across all deques; decides whether an idle worker may sleep.
    let queued = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    let parking = PthreadCondition()
    /// Where threads outside the pool sleep in ``WorkStealingPool/wait(until:)``.
    let outsideWaiters = PthreadCondition()
    /// Round-robin start for tasks submitted from outside the pool.
    let nextWorker = Atomic<Int>(0)
    let threads = Mutex<[UInt]>([])
    /// How long an idle worker looks for a task before it sleeps.
    let spinNanoseconds: UInt64

    init(workers: Int, spinNanoseconds: UInt64) {
        self.workers = (0..<workers).map { Worker(index: $0) }
        self.spinNanoseconds = spinNanoseconds
    }

    /// Deals `job`'s tasks round-robin over the workers' deques (from outside the pool) and wakes the workers.
    func enqueue(_ job: Job) {
        let count = job.remaining.load(ordering: .relaxed)
        let start = nextWorker.add(count, ordering: .relaxed).oldValue
        for i in 0..<count {
            workers[(start &+ i) % workers.count].deque.withLock { $0.append(TaskRef(job: job, index: i)) }
        }
        announce(count)
    }

    /// Counts `count` new tasks and wakes sleeping workers.
    func announce(_ count: Int) {
        // Relaxed: the deques' locks publish the tasks themselves; this count only keeps workers from sleeping.
        // A worker reads it under `parking`'s lock before sleeping, and the signal below is sent under the
        // same lock after the increment, so no wake-up is lost.
        queued.add(count, ordering: .relaxed)
        parking.locked {
            if count == 1 { parking.signal() } else { parking.broadcast() }
        }
    }

    /// Stops the workers once their queues are empty. From outside the pool it waits for the threads; on one of
    /// the pool's own threads it cannot wait for itself, so the threads are detached and finish on their own.
    func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        parking.locked { parking.broadcast() }
        let handles = threads.withLock { t in
            let all = t
            t = []
            return all
        }
        let onOwnThread = WorkerThread.current?.core === self
        for handle in handles {
            if onOwnThread { pthread_detach(pthread_t(handle)) } else { pthread_join(pthread_t(handle), nil) }
        }
    }
}

/// One worker's deque.
final class Worker: Sendable {
    let index: Int
    let deque = Mutex(Deque<TaskRef>())

    init(index: Int) { self.index = index }
}

/// A running worker thread: its worker and the core it serves (held strongly for the thread's life).
final class WorkerThread: Sendable {
    let worker: Worker
    let core: PoolCore

    init(worker: Worker, core: PoolCore) {
        self.worker = worker
        self.core = core
    }

    nonisolated(unsafe) private static var key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The worker thread running this code, if any.
    static var current: WorkerThread? {
        guard let value = pthread_getspecific(key) else { return nil }
        // Safe: only `run` sets the value, to itself, and `run` holds a reference until the thread ends.
        return Unmanaged<WorkerThread>.fromOpaque(value).takeUnretainedValue()
    }

    // Read and written only by this worker's own thread.
    nonisolated(unsafe) private var sliceStart: UInt64 = 0
    nonisolated(unsafe) private var depth = 0
    nonisolated(unsafe) private var running: Job?

    /// Runs one task, timing its slice for ``WorkStealingPool/yieldPoint()``.
    func execute(_ task: TaskRef) {
        let (savedStart, savedJob) = (sliceStart, running)
        sliceStart = monotonicNanoseconds()
        running = task.job
        depth += 1
        task.job.execute(task.index)
        depth -= 1
        (sliceStart, running) = (savedStart, savedJob)
    }

    func yieldIfDue() {
        guard depth < WorkStealingPool.maxYieldDepth, core.queued.load(ordering: .relaxed) > 0 else { return }
        let now = monotonicNanoseconds()
        guard now &- sliceStart >= WorkStealingPool.yieldIntervalNanoseconds else { return }
        // Other jobs' queued tasks run for up to one interval, then this task carries on.
        while monotonicNanoseconds() &- now < WorkStealingPool.yieldIntervalNanoseconds,
            let task = takeOtherJobsTask()
        {
            execute(task)
        }
        sliceStart = monotonicNanoseconds()
    }

    /// The newest task of a job other than the one running, from any deque: a yield only helps other jobs
    /// (running a sibling inline would not).
    private func takeOtherJobsTask() -> TaskRef? {
        let workers = core.workers
        let running = self.running
        for step in 0..<workers.count {
            let task = workers[(worker.index + step) % workers.count].deque.withLock { d -> TaskRef? in
                guard let last = d.last, last.job !== running else { return nil }
                return d.popLast()
            }
            if let task {
                core.queued.subtract(1, ordering: .relaxed)
                return task
            }
        }
        return nil
    }

    /// Runs queued tasks until `done()`; `wait()` sleeps briefly when there is nothing to run.
    func help(until done: () -> Bool, wait: () -> Void) {
        while !done() {
            if let task = take() {
                execute(task)
            } else {
                wait()  // what is left runs elsewhere
            }
        }
    }

    /// Its own newest task, or the oldest task of another worker.
    func take() -> TaskRef? {
        if let task = worker.deque.withLock({ $0.popLast() }) {
            core.queued.subtract(1, ordering: .relaxed)
            return task
        }
        let workers = core.workers
        for step in 1..<max(workers.count, 1) {
            let victim = workers[(worker.index + step) % workers.count]
            if let task = victim.deque.withLock({ $0.popFirst() }) {
                core.queued.subtract(1, ordering: .relaxed)
                return task
            }
        }
        return nil
    }

    /// Looks for a queued task for up to the pool's spin wait, without sleeping; whether one was queued.
    func spinForTask() -> Bool {
        let limit = core.spinNanoseconds
        guard limit > 0 else { return false }
        let start = monotonicNanoseconds()
        while core.queued.load(ordering: .relaxed) == 0 {
            if core.stopping.load(ordering: .relaxed) || monotonicNanoseconds() &- start >= limit { return false }
            for _ in 0..<16 { sluice_spin_pause() }  // ~0.5 µs between looks, leaving the core to its sibling
        }
        return true
    }

    func run() {
        pthread_setspecific(WorkerThread.key, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(WorkerThread.key, nil) }
        while true {
            if let task = take() {
                execute(task)
                continue
            }
            if spinForTask() { continue }  // a task came while it spun: take it without a wake-up
            let exit = core.parking.locked { () -> Bool in
                if core.queued.load(ordering: .relaxed) > 0 { return false }
                if core.stopping.load(ordering: .relaxed) { return true }
                core.parking.wait()
                return false
            }
            if exit { return }
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
package func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}
