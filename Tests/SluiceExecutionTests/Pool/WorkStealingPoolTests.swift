import Dispatch
import Glibc
import Synchronization
import Testing
@testable import SluiceExecution

struct TaskFailed: Error, Equatable { let index: Int }

/// Counts per index, to check that every task ran exactly once.
final class Tally: Sendable {
    let slots: Mutex<[Int]>
    init(_ n: Int) { slots = Mutex(Array(repeating: 0, count: n)) }
    func hit(_ i: Int) { slots.withLock { $0[i] += 1 } }
    var allOnce: Bool { slots.withLock { $0.allSatisfy { $0 == 1 } } }
    var total: Int { slots.withLock { $0.reduce(0, +) } }
}

@Suite struct WorkStealingPoolTests {
    @Test(arguments: [1, 2, 4])
    func aHundredThousandTinyTasksEachRunOnce(workers: Int) throws {
        let pool = try WorkStealingPool(workers: workers)
        defer { pool.shutdown() }
        let tally = Tally(100_000)
        try pool.run(tasks: 100_000) { tally.hit($0) }
        #expect(tally.allOnce)
        for _ in 0..<20 {  // many small jobs one after another
            let small = Tally(37)
            try pool.run(tasks: 37) { small.hit($0) }
            #expect(small.allOnce)
        }
    }

    @Test func aFailingTaskFailsItsJobAndThePoolCarriesOn() throws {
        let pool = try WorkStealingPool(workers: 2)
        defer { pool.shutdown() }
        let ran = Tally(1_000)
        let error = #expect(throws: TaskFailed.self) {
            try pool.run(tasks: 1_000) { i in
                ran.hit(i)
                if i == 500 || i == 700 { throw TaskFailed(index: i) }
            }
        }
        #expect(error?.index == 500 || error?.index == 700)
        #expect(ran.total <= 1_000)
        let after = Tally(100)
        try pool.run(tasks: 100) { after.hit($0) }
        #expect(after.allOnce, "the pool runs the next job normally")
    }

    @Test(arguments: [1, 2])
    func nestedJobsFromInsideTasksDoNotDeadlock(workers: Int) throws {
        let pool = try WorkStealingPool(workers: workers)
        defer { pool.shutdown() }
        let inner = Tally(8 * 50)
        try pool.run(tasks: 8) { outer in
            try pool.run(tasks: 50) { i in
                inner.hit(outer * 50 + i)
            }
        }
        #expect(inner.allOnce)
        // Three levels, and a nested failure reaching the outermost caller.
        let deepest = Tally(4 * 4 * 4)
        try pool.run(tasks: 4) { a in
            try pool.run(tasks: 4) { b in
                try pool.run(tasks: 4) { c in deepest.hit(a * 16 + b * 4 + c) }
            }
        }
        #expect(deepest.allOnce)
        #expect(throws: TaskFailed.self) {
            try pool.run(tasks: 3) { _ in
                try pool.run(tasks: 3) { i in if i == 2 { throw TaskFailed(index: i) } }
            }
        }
    }

    @Test func idleWorkersStealFromABusyOne() throws {
        let pool = try WorkStealingPool(workers: 2)
        defer { pool.shutdown() }
        let threads = Mutex<Set<UInt>>([])
        // Every task is pushed by worker 0 (a nested job), so worker 1 only gets work by stealing.
        try pool.run(tasks: 1) { _ in
            try pool.run(tasks: 200) { _ in
                threads.withLock { _ = $0.insert(UInt(pthread_self())) }
                usleep(200)
            }
        }
        #expect(threads.withLock { $0.count } == 2)
    }

    @Test func aShutDownPoolRefusesJobsClearly() throws {
        let pool = try WorkStealingPool(workers: 1)
        pool.shutdown()
        pool.shutdown()  // idempotent
        let error = #expect(throws: PoolError.self) { try pool.run(tasks: 1) { _ in } }
        #expect(error?.message.contains("shut down") == true)
        #expect(throws: PoolError.self) { _ = try WorkStealingPool(workers: 0) }
    }

    @Test func jobsFromManyThreadsAtOnce() async throws {
        let pool = try WorkStealingPool(workers: 2)
        defer { pool.shutdown() }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let tally = Tally(5_000)
                    try pool.run(tasks: 5_000) { tally.hit($0) }
                    return tally.allOnce
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }
}

@Suite struct PoolLifetimeTests {
    /// A task's closure can hold the last reference to the pool (an RDD captured in a closure): releasing it
    /// on one of its own workers must stop it cleanly, not trap or touch freed memory.
    /// A task's closure may hold the last reference to its pool: the pool is then released on its own worker,
    /// which must neither trap nor wait for itself, and its threads must still end. (Before, this test ran the
    /// race 300 times and asserted nothing: the caller always released the pool itself.)
    @Test func thePoolMayBeReleasedOnItsOwnWorker() throws {
        for _ in 0..<20 {
            let releasedOnWorker = Atomic<Int>(0)
            let scopeEnded = Atomic<Bool>(false)
            weak var core: PoolCore?
            let job: Job
            do {
                let pool = try WorkStealingPool(workers: 2)
                core = pool.core
                let probe = ReleaseProbe {
                    if WorkerThread.current != nil { releasedOnWorker.add(1, ordering: .relaxed) }
                }
                // The job's body holds the only references left once this scope ends, and it ends only after
                // the scope did (a fixed sleep here was too short under ThreadSanitizer: the body finished
                // first, and the scope released the pool on the test's thread).
                job = Job(count: 1) { _ in
                    let deadline = monotonicNanoseconds() + 10_000_000_000
                    while !scopeEnded.load(ordering: .acquiring) && monotonicNanoseconds() < deadline { usleep(200) }
                    withExtendedLifetime((pool, probe)) {}
                }
                pool.core.enqueue(job)
            }
            scopeEnded.store(true, ordering: .releasing)
            job.waitUntilDone()
            #expect(releasedOnWorker.load(ordering: .relaxed) == 1, "the last reference went on the worker")
            // The worker threads hold the core until they exit: it goes once they all did.
            let deadline = monotonicNanoseconds() + 10_000_000_000
            while core != nil && monotonicNanoseconds() < deadline { usleep(1_000) }
            #expect(core == nil, "the workers of a pool released on its own worker did not exit")
        }
    }

    /// Releasing a pool with tasks still queued runs them all before its threads stop. (Before, the tasks were
    /// run by a synchronous `run`, so nothing was queued when the pool went.)
    @Test func releasingAPoolFinishesItsQueuedWork() throws {
        let ran = Tally(200)
        let job = Job(count: 200) { i in
            usleep(500)
            ran.hit(i)
        }
        do {
            let pool = try WorkStealingPool(workers: 2)
            pool.core.enqueue(job)
            #expect(ran.total < 200, "tasks are still queued when the pool goes")
        }  // released here, from outside the pool: waits for the queued tasks, then for the threads
        #expect(ran.allOnce, "\(ran.total) of 200 queued tasks ran")
        #expect(job.isDone)
    }
}

/// CPU time of the calling thread (or of the thread whose CPU clock is `clock`), in nanoseconds.
func threadCPUNanoseconds(_ clock: clockid_t = CLOCK_THREAD_CPUTIME_ID) -> UInt64 {
    var now = timespec()
    clock_gettime(clock, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

@Suite struct PoolWaitTests {
    /// A thread that needs a shuffle another job is still computing sleeps until it is done, instead of
    /// polling. (Before, it woke every 100 µs: about 10 ms of CPU over this half-second wait.)
    @Test func aThreadWaitingForAnotherJobsShuffleSleeps() throws {
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 2))
        defer { engine.pool.shutdown() }
        let started = Atomic<Bool>(false)
        let slow = engine.parallelize(Array(0..<4), numSlices: 2).map { x -> (Int, Int) in
            started.store(true, ordering: .relaxed)
            usleep(250_000)
            return (x % 2, 1)
        }.reduceByKey(+)
        let first = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? slow.collect()
            first.signal()
        }
        while !started.load(ordering: .relaxed) { usleep(1_000) }
        let before = threadCPUNanoseconds()
        let counts = try slow.collect()  // waits for the other job's map side, then reads it
        let used = threadCPUNanoseconds() - before
        first.wait()
        #expect(Dictionary(uniqueKeysWithValues: counts) == [0: 2, 1: 2])
        #expect(used < 3_000_000, "the waiting thread used \(used / 1_000) µs of CPU")
    }

    /// A worker that runs out of tasks looks for another for the pool's spin wait, then sleeps: an idle pool
    /// spends at most that much CPU, whatever the wait. (Each worker's CPU time read from its own thread clock.)
    @Test(arguments: [Duration.zero, .microseconds(50), .milliseconds(20)])
    func anIdleWorkerSpinsAtMostItsSpinWaitThenSleeps(spinWait: Duration) throws {
        let pool = try WorkStealingPool(workers: 2, spinWait: spinWait)
        defer { pool.shutdown() }
        let tally = Tally(64)
        try pool.run(tasks: 64) { tally.hit($0) }
        #expect(tally.allOnce)
        let clocks = pool.core.threads.withLock { $0 }.map { handle -> clockid_t in
            var clock = clockid_t()
            pthread_getcpuclockid(pthread_t(handle), &clock)
            return clock
        }
        func cpu(_ clock: clockid_t) -> Duration { .nanoseconds(threadCPUNanoseconds(clock)) }
        let before = clocks.map(cpu)
        usleep(300_000)  // idle: each worker spins once, at most spinWait, then sleeps
        let used = zip(clocks, before).map { cpu($0) - $1 }
        for spent in used {
            #expect(spent < spinWait + .milliseconds(10), "an idle worker used \(spent) of CPU in 300 ms")
        }
        let after = Tally(64)
        try pool.run(tasks: 64) { after.hit($0) }
        #expect(after.allOnce, "sleeping workers wake for the next job")
    }

    @Test func aNegativeSpinWaitIsRefused() {
        let error = #expect(throws: PoolError.self) { _ = try WorkStealingPool(workers: 1, spinWait: .microseconds(-1)) }
        #expect(error?.message.contains("spin wait") == true)
    }

    /// Timed waits run on the monotonic clock: a wait for 50 ms lasts 50 ms of monotonic time.
    @Test func timedWaitsLastTheirTimeOnTheMonotonicClock() {
        let condition = PthreadCondition()
        let start = monotonicNanoseconds()
        condition.locked { condition.wait(nanoseconds: 50_000_000) }
        let waited = monotonicNanoseconds() - start
        #expect(waited >= 50_000_000 && waited < 2_000_000_000, "\(waited) ns")
    }
}

/// Calls `onRelease` from its deinit, to see on which thread the last reference went.
final class ReleaseProbe: Sendable {
    let onRelease: @Sendable () -> Void
    init(_ onRelease: @escaping @Sendable () -> Void) { self.onRelease = onRelease }
    deinit { onRelease() }
}

@Suite struct PoolFairnessTests {
    @Test func aLongTaskYieldsSoAnotherJobIsNotStarvedOnOneWorker() throws {
        let engine = ExecutionEngine(pool: try WorkStealingPool(workers: 1))
        let started = Mutex(false)
        let order = Mutex<[String]>([])
        // One partition of 3 chunks; each chunk takes ~150 ms and ends at a yield point.
        let long = engine.parallelize(Array(0..<3_072), numSlices: 1).map { x -> Int in
            started.withLock { $0 = true }
            usleep(50)
            return x
        }
        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? long.count()
            order.withLock { $0.append("long") }
            finished.signal()
        }
        while !started.withLock({ $0 }) { usleep(1_000) }
        #expect(try engine.parallelize([1, 2, 3], numSlices: 3).reduce(+) == 6)
        order.withLock { $0.append("short") }
        finished.wait()
        #expect(order.withLock { $0 } == ["short", "long"], "the short job ran at the long task's first yield")
    }

    @Test func localMasterStrings() throws {
        #expect(try Master.workers(for: "local") == 1)
        #expect(try Master.workers(for: "local[3]") == 3)
        #expect(try Master.workers(for: " local[2, 4] ") == 2)
        #expect(try Master.workers(for: "local[*]") == Master.onlineCores)
        for bad in ["yarn", "local[0]", "local[x]", "spark://host:7077", "local[", ""] {
            let error = #expect(throws: ConfigurationError.self) { try Master.workers(for: bad) }
            #expect(error?.key == "spark.master")
            #expect(error?.value == bad)
            #expect(error?.description.contains("local[n]") == true)
        }
        let engine = try ExecutionEngine(master: "local[2]")
        #expect(engine.pool.workerCount == 2)
        #expect(engine.defaultParallelism == 2)
    }
}
