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
/// Tasks are not preempted: a long task must split its work (the engine processes partitions in bounded
/// morsels) so that it cannot starve the others.
public final class WorkStealingPool: Sendable {
    /// The number of worker threads.
    public let workerCount: Int
    let workers: [Worker]
    /// Tasks pushed and not yet taken, across all deques; decides whether an idle worker may sleep.
    let queued = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    let parking = PthreadCondition()
    /// Round-robin start for tasks submitted from outside the pool.
    let nextWorker = Atomic<Int>(0)
    private let threads = Mutex<[UInt]>([])

    /// A pool of `workers` threads (at least 1).
    /// - Throws: ``PoolError`` when `workers` is not positive or a thread cannot be created.
    public init(workers: Int) throws {
        guard workers >= 1 else { throw PoolError(message: "a pool needs at least 1 worker, got \(workers)") }
        self.workerCount = workers
        self.workers = (0..<workers).map { Worker(index: $0) }
        var started: [UInt] = []
        for worker in self.workers {
            worker.pool = self
            var thread = pthread_t()
            let context = Unmanaged.passRetained(worker).toOpaque()
            let rc = pthread_create(&thread, nil, { context in
                // Safe: the context is the retained Worker passed below, released here exactly once.
                let worker = Unmanaged<Worker>.fromOpaque(context!).takeRetainedValue()
                worker.run()
                return nil
            }, context)
            guard rc == 0 else {
                Unmanaged<Worker>.fromOpaque(context).release()
                threads.withLock { $0 = started }
                shutdown()
                throw PoolError(message: "could not start worker thread \(worker.index): errno \(rc)")
            }
            started.append(UInt(thread))
        }
        threads.withLock { $0 = started }
    }

    /// Runs `body(i)` for every `i` in `0..<count` as one job and returns when all have finished.
    /// - Throws: the first error a task threw (after every started task finished), or ``PoolError`` after
    ///   ``shutdown()``.
    public func run(tasks count: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
        guard !stopping.load(ordering: .relaxed) else {
            throw PoolError(message: "the pool was shut down; no job can run on it")
        }
        guard count > 0 else { return }
        let job = Job(count: count, body: body)
        if let current = Worker.current, current.pool === self {
            current.deque.withLock { d in for i in 0..<count { d.append(TaskRef(job: job, index: i)) } }
            announce(count)
            while !job.isDone {
                if let task = current.take() {
                    task.job.execute(task.index)
                } else {
                    job.waitUntilDone(nanoseconds: 200_000)  // its last tasks run elsewhere
                }
            }
        } else {
            let start = nextWorker.add(count, ordering: .relaxed).oldValue
            for i in 0..<count {
                workers[(start + i) % workerCount].deque.withLock { $0.append(TaskRef(job: job, index: i)) }
            }
            announce(count)
            job.waitUntilDone()
        }
        if let error = job.firstError.withLock({ $0 }) { throw error }
    }

    /// Counts `count` new tasks and wakes sleeping workers.
    private func announce(_ count: Int) {
        // Relaxed: the deques' locks publish the tasks themselves; this count only keeps workers from sleeping.
        // A worker reads it under `parking`'s lock before sleeping, and the signal below is sent under the
        // same lock after the increment, so no wake-up is lost.
        queued.add(count, ordering: .relaxed)
        parking.locked {
            if count == 1 { parking.signal() } else { parking.broadcast() }
        }
    }

    /// Finishes the queued tasks, stops the workers and waits for their threads. Idempotent; must not be
    /// called from a task.
    public func shutdown() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        parking.locked { parking.broadcast() }
        let handles = threads.withLock { t in
            let all = t
            t = []
            return all
        }
        for handle in handles { pthread_join(pthread_t(handle), nil) }
    }

    deinit {
        // Workers hold the pool unowned: they must be gone before it is. Released from one of its own tasks, the
        // pool could not wait for that task's thread, which is a programming error.
        if !stopping.load(ordering: .relaxed) {
            precondition(Worker.current?.pool !== self, "a WorkStealingPool was released by one of its own tasks")
            shutdown()
        }
    }
}

/// One worker thread and its deque.
final class Worker: @unchecked Sendable {
    // Safe (@unchecked Sendable): `pool` is written once before the thread starts and only read afterwards;
    // the deque is behind a mutex.
    let index: Int
    unowned(unsafe) var pool: WorkStealingPool!
    let deque = Mutex(Deque<TaskRef>())

    init(index: Int) { self.index = index }

    nonisolated(unsafe) private static var key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The worker running on this thread, if any.
    static var current: Worker? {
        guard let value = pthread_getspecific(key) else { return nil }
        // Safe: only `run` sets the value, to an unretained worker that outlives its thread.
        return Unmanaged<Worker>.fromOpaque(value).takeUnretainedValue()
    }

    /// Its own newest task, or the oldest task of another worker.
    func take() -> TaskRef? {
        if let task = deque.withLock({ $0.popLast() }) {
            pool.queued.subtract(1, ordering: .relaxed)
            return task
        }
        let workers = pool.workers
        for step in 1..<max(workers.count, 1) {
            let victim = workers[(index + step) % workers.count]
            if let task = victim.deque.withLock({ $0.popFirst() }) {
                pool.queued.subtract(1, ordering: .relaxed)
                return task
            }
        }
        return nil
    }

    func run() {
        pthread_setspecific(Worker.key, Unmanaged.passUnretained(self).toOpaque())
        while true {
            if let task = take() {
                task.job.execute(task.index)
                continue
            }
            let exit = pool.parking.locked { () -> Bool in
                if pool.queued.load(ordering: .relaxed) > 0 { return false }
                if pool.stopping.load(ordering: .relaxed) { return true }
                pool.parking.wait()
                return false
            }
            if exit { return }
        }
    }
}
