import Synchronization

/// One job: `count` tasks running the same body on indices 0..<count (one task per partition, as in Spark).
final class Job: Sendable {
    /// The tasks' code; dropped when the last task finishes, before waiters wake, so that whatever it holds
    /// (a shuffle's map output, a cache) is released by the time the job's caller carries on.
    private let body: Mutex<Body?>
    /// Tasks not yet finished (run or skipped).
    let remaining: Atomic<Int>
    /// Set once every task finished and the body was released: what waiters wait for. (`remaining` reaching 0
    /// is not enough: a waiter that came in between it and the body's release carried on while the body, and
    /// whatever it held, was still alive.)
    private let settled: Atomic<Bool>
    /// Set by the first failure: tasks that have not started are skipped.
    let cancelled = Atomic<Bool>(false)
    let firstError = Mutex<(any Error)?>(nil)
    /// Signalled when `remaining` reaches 0; waiters check `isDone` under its lock, so no wake-up is lost.
    private let finished = PthreadCondition()
    /// Also woken when the job finishes: the pool's parking condition, where a worker that waits for this job
    /// (a job run from inside a task) sleeps between the tasks it helps with.
    private let wakeOnDone: PthreadCondition?

    init(count: Int, wakeOnDone: PthreadCondition? = nil, body: @escaping @Sendable (Int) throws -> Void) {
        self.body = Mutex(Body(body))
        self.remaining = Atomic(count)
        self.settled = Atomic(count <= 0)  // no task to run: done from the start, as before
        self.wakeOnDone = wakeOnDone
    }

    /// Runs task `index` unless the job already failed, and counts it as finished.
    func execute(_ index: Int) {
        // Relaxed: skipping after a failure only saves work; a task that misses the flag runs harmlessly.
        if !cancelled.load(ordering: .relaxed) { run(index) }
        // Acquiring-and-releasing: each task's writes happen before the last decrement, which the waiter then
        // observes (through `finished`'s mutex), so the job's results are visible to whoever waited for it.
        if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            let last = body.withLock { body in defer { body = nil }; return body }
            _ = consume last  // released here, on this thread, before the waiters wake
            // Releasing: the tasks' writes (ordered before the last decrement) and the release are seen by a
            // waiter that reads the flag set.
            settled.store(true, ordering: .releasing)
            finished.locked { finished.broadcast() }
            if let wakeOnDone { wakeOnDone.locked { wakeOnDone.broadcast() } }
        }
    }

    /// Runs task `index`, keeping the first error. Not inlined, so that its reference to the body is
    /// released before the caller counts the task as finished.
    @inline(never)
    private func run(_ index: Int) {
        guard let body = body.withLock({ $0 }) else { return }
        do {
            try body.run(index)
        } catch {
            firstError.withLock { if $0 == nil { $0 = error } }
            cancelled.store(true, ordering: .relaxed)
        }
    }

    /// Whether every task finished and the body was released.
    var isDone: Bool { settled.load(ordering: .acquiring) }

    /// Sleeps until every task finished.
    func waitUntilDone() {
        finished.locked {
            while !isDone { finished.wait() }
        }
    }
}

/// A job's code, boxed: a closure kept directly in a generic container (`Mutex<F?>`) would be re-wrapped in
/// conversion thunks on every access through `inout`, without bound.
final class Body: Sendable {
    let run: @Sendable (Int) throws -> Void
    init(_ run: @escaping @Sendable (Int) throws -> Void) { self.run = run }
}

/// A task in a worker's deque.
struct TaskRef: Sendable {
    let job: Job
    let index: Int
}
