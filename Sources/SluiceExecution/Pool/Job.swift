import Synchronization

/// One job: `count` tasks running the same body on indices 0..<count (one task per partition, as in Spark).
final class Job: Sendable {
    let body: @Sendable (Int) throws -> Void
    /// Tasks not yet finished (run or skipped).
    let remaining: Atomic<Int>
    /// Set by the first failure: tasks that have not started are skipped.
    let cancelled = Atomic<Bool>(false)
    let firstError = Mutex<(any Error)?>(nil)
    /// Signalled when `remaining` reaches 0; waiters check `isDone` under its lock, so no wake-up is lost.
    private let finished = PthreadCondition()

    init(count: Int, body: @escaping @Sendable (Int) throws -> Void) {
        self.body = body
        self.remaining = Atomic(count)
    }

    /// Runs task `index` unless the job already failed, and counts it as finished.
    func execute(_ index: Int) {
        // Relaxed: skipping after a failure only saves work; a task that misses the flag runs harmlessly.
        if !cancelled.load(ordering: .relaxed) {
            do {
                try body(index)
            } catch {
                firstError.withLock { if $0 == nil { $0 = error } }
                cancelled.store(true, ordering: .relaxed)
            }
        }
        // Acquiring-and-releasing: each task's writes happen before the last decrement, which the waiter then
        // observes (through `finished`'s mutex), so the job's results are visible to whoever waited for it.
        if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            finished.locked { finished.broadcast() }
        }
    }

    /// Whether every task finished.
    var isDone: Bool { remaining.load(ordering: .acquiring) == 0 }

    /// Sleeps until every task finished.
    func waitUntilDone() {
        finished.locked {
            while !isDone { finished.wait() }
        }
    }

    /// Sleeps until every task finished or `nanoseconds` pass.
    func waitUntilDone(nanoseconds: Int) {
        finished.locked {
            if !isDone { finished.wait(nanoseconds: nanoseconds) }
        }
    }
}

/// A task in a worker's deque.
struct TaskRef: Sendable {
    let job: Job
    let index: Int
}
