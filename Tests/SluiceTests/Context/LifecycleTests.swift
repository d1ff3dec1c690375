import Dispatch
import Glibc
import Synchronization
import Testing
@testable import Sluice
import SluiceTesting

/// Contexts made by these tests directly (not through StreamTest) hold the process's one active slot while
/// they run, so every test body runs inside `StreamTest.exclusively`.
@Suite struct LifecycleTests {
    let conf = StreamingConf().setMaster("local[2]").set("spark.default.parallelism", "2")

    /// Collects `stream`'s batches as (time, elements).
    final class Collector<T: Sendable>: Sendable {
        let batches = Mutex<[(Time, [T])]>([])
        init(_ stream: DStream<T>) {
            stream.foreachRDD { [self] rdd, time in
                let elements = try rdd.collect()
                batches.withLock { $0.append((time, elements)) }
            }
        }
        var times: [Int64] { batches.withLock { $0.map(\.0.milliseconds) } }
        var values: [[T]] { batches.withLock { $0.map(\.1) } }
    }

    @Test func batchTimesAreAlignedToTheBatchIntervalAfterTheClocksTimeAtStart() throws {
        try StreamTest.exclusively {
            let clock = ManualClock(startTime: Time(milliseconds: 12_345))
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            let input = ssc.sequenceStream([[1], [2], [3]])
            let seen = Collector(input)
            try ssc.start()
            defer { ssc.stop() }
            #expect(ssc.graph.zeroTime == Time(milliseconds: 12_000), "zeroTime is one batch before the first")
            clock.set(to: Time(milliseconds: 12_999))
            #expect(!ssc.waitUntilBatchHandled(Time(milliseconds: 13_000), timeout: .milliseconds(100)))
            clock.set(to: Time(milliseconds: 15_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 15_000), timeout: .seconds(30)))
            #expect(seen.times == [13_000, 14_000, 15_000])
            #expect(seen.values == [[1], [2], [3]])
            // Valid times are after zeroTime, on the slide grid.
            #expect(try !input.isTimeValid(Time(milliseconds: 12_000)))
            #expect(try !input.isTimeValid(Time(milliseconds: 13_500)))
            #expect(try input.isTimeValid(Time(milliseconds: 16_000)))
        }
    }

    @Test func oldRDDsAreDroppedAfterTheRememberDuration() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            let input = ssc.sequenceStream((0..<10).map { [$0] })
            let doubled = input.map { $0 * 2 }
            _ = Collector(doubled)
            ssc.remember(.seconds(3))
            try ssc.start()
            defer { ssc.stop() }
            for t in 1...8 {
                clock.set(to: Time(milliseconds: Int64(t) * 1_000))
                #expect(ssc.waitUntilBatchHandled(Time(milliseconds: Int64(t) * 1_000), timeout: .seconds(30)))
            }
            // After batch 8 with a 3 s remember duration: RDDs at 6, 7 and 8 s remain.
            #expect(doubled.generatedTimes.map(\.milliseconds) == [6_000, 7_000, 8_000])
            #expect(input.generatedTimes.map(\.milliseconds) == [6_000, 7_000, 8_000])
            let sliced = try doubled.slice(from: Time(milliseconds: 6_500), to: Time(milliseconds: 8_000))
            // Batch t (1-based) holds [t - 1], doubled.
            #expect(try sliced.map { try $0.collect() } == [[10], [12], [14]], "aligned down to 6 s")
        }
    }

    @Test func withoutRememberOnlyTheCurrentBatchIsKept() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .milliseconds(100), clock: clock)
            let input = ssc.sequenceStream((0..<5).map { [$0] })
            _ = Collector(input.persist(.memoryOnlySer))
            try ssc.start()
            defer { ssc.stop() }
            clock.set(to: Time(milliseconds: 500))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 500), timeout: .seconds(30)))
            #expect(input.generatedTimes.map(\.milliseconds) == [500])
            #expect(input.storageLevel == .memoryOnlySer)
            #expect(ssc.engine.memory.reservedBytes > 0, "the last batch's cached RDD")
        }
    }

    @Test func theGuidesPointsToRememberAreClearErrors() throws {
        try StreamTest.exclusively {
            // No output operation.
            let empty = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: ManualClock())
            _ = empty.sequenceStream([[1]]).map { $0 }
            let noOutput = #expect(throws: StreamingError.self) { try empty.start() }
            #expect(noOutput?.message.contains("No output operations registered") == true)
            #expect(empty.state == .stopped)

            // A stopped context cannot start again.
            let first = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: ManualClock())
            first.sequenceStream([[1]]).print()
            try first.start()
            try first.start()  // starting an active context again does nothing, as in Spark
            #expect(first.state == .active)

            // Only one active context.
            let second = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: ManualClock())
            second.sequenceStream([[1]]).print()
            let twoActive = #expect(throws: StreamingError.self) { try second.start() }
            #expect(twoActive?.message.contains("Only one StreamingContext may be active") == true)

            // Streams added after start.
            first.sequenceStream([[2]]).print()
            let late = #expect(throws: StreamingError.self) { try first.awaitTermination() }
            #expect(late?.message.contains("after starting a context is not supported") == true)

            first.stop()
            first.stop()  // stopping twice does nothing
            #expect(first.state == .stopped)
            let restart = #expect(throws: StreamingError.self) { try first.start() }
            #expect(restart?.message.contains("already been stopped") == true)

            // Stopping a context that never started.
            let never = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: ManualClock())
            never.stop()
            #expect(never.state == .stopped)
            #expect(throws: StreamingError.self) { try never.start() }
        }
    }

    @Test func aBatchDurationUnderAMillisecondAndABadMasterAreRefused() throws {
        #expect(throws: StreamingError.self) {
            _ = try StreamingContext(conf: conf, batchDuration: .microseconds(10), clock: ManualClock())
        }
        let error = #expect(throws: ConfigurationError.self) {
            _ = try StreamingContext(conf: conf.setMaster("yarn"), batchDuration: .seconds(1))
        }
        #expect(error?.key == "spark.master")
    }

    @Test func awaitTerminationReturnsWhenStoppedAndRethrowsAJobError() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            ssc.sequenceStream([[1], [2], [3]]).foreachRDD { rdd in
                if try rdd.collect() == [2] { throw Boom(value: 2) }
            }
            try ssc.start()
            #expect(try !ssc.awaitTerminationOrTimeout(.milliseconds(50)))
            clock.set(to: Time(milliseconds: 3_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 3_000), timeout: .seconds(30)))
            let error = #expect(throws: StreamingError.self) { try ssc.awaitTermination() }
            #expect(error?.underlying as? Boom == Boom(value: 2))
            #expect(error?.message.contains("2000 ms") == true)
            #expect(ssc.state == .active, "an error does not stop the context, as in Spark")
            ssc.stop()
            #expect(ssc.state == .stopped)
        }
    }

    /// The `async` form suspends until the context stops, rethrows a batch's error, and ends with
    /// `CancellationError` when its task is cancelled.
    @Test func awaitTerminationAsyncReturnsOnStopRethrowsAndCanBeCancelled() throws {
        final class Waiter: Sendable {
            let done = DispatchSemaphore(value: 0)
            let result = Mutex("pending")
        }
        // The waiting tasks run on a queue of their own: the tests' cooperative threads may all be blocked
        // waiting for their turn at a streaming context.
        let executor = QueueExecutor()
        func waitAsync(_ ssc: StreamingContext, cancel: Bool = false) -> Waiter {
            let waiter = Waiter()
            let task = Task(executorPreference: executor) {
                do {
                    try await ssc.awaitTermination()
                    waiter.result.withLock { $0 = "returned" }
                } catch {
                    waiter.result.withLock { $0 = "\(type(of: error))" }
                }
                waiter.done.signal()
            }
            if cancel { task.cancel() }
            return waiter
        }
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            ssc.sequenceStream([[1], [2]]).foreachRDD { rdd in
                if try rdd.collect() == [2] { throw Boom(value: 2) }
            }
            try ssc.start()
            let stopped = waitAsync(ssc)
            let cancelled = waitAsync(ssc, cancel: true)
            #expect(cancelled.done.wait(timeout: .now() + 30) == .success)
            #expect(cancelled.result.withLock { $0 } == "CancellationError")
            #expect(stopped.done.wait(timeout: .now() + 0.2) == .timedOut, "returned while the context runs")
            clock.set(to: Time(milliseconds: 1_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 1_000), timeout: .seconds(30)))
            ssc.stop()
            #expect(stopped.done.wait(timeout: .now() + 30) == .success)
            #expect(stopped.result.withLock { $0 } == "returned")

            let failing = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            failing.sequenceStream([[2]]).foreachRDD { rdd in
                if try rdd.collect() == [2] { throw Boom(value: 2) }
            }
            try failing.start()
            defer { failing.stop() }
            let failed = waitAsync(failing)
            clock.set(to: Time(milliseconds: 3_000))
            #expect(failed.done.wait(timeout: .now() + 30) == .success)
            #expect(failed.result.withLock { $0 } == "StreamingError")
        }
    }

    /// Two threads calling `start()` at once: one starts the context, the other returns once it is active;
    /// it starts exactly once. (Before, both could pass the state check and start it twice.)
    @Test func concurrentStartsStartTheContextOnce() throws {
        final class Starts: StreamingListener, Sendable {
            let count = Atomic<Int>(0)
            func onStreamingStarted(_ event: StreamingStarted) { count.add(1, ordering: .relaxed) }
        }
        for _ in 0..<30 {
            try StreamTest.exclusively {
                let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: ManualClock())
                ssc.sequenceStream([[1]]).foreachRDD { _ in }
                let starts = Starts()
                ssc.addStreamingListener(starts)
                let ready = Atomic<Int>(0)
                let errors = Mutex<[String]>([])
                let threads = try (0..<2).map { i in
                    try JoinableThread(name: "starter \(i)") {
                        ready.add(1, ordering: .relaxed)
                        while ready.load(ordering: .relaxed) < 2 {}
                        do { try ssc.start() } catch { errors.withLock { $0.append("\(error)") } }
                    }
                }
                for thread in threads { thread.join() }
                #expect(errors.withLock { $0 }.isEmpty)
                #expect(ssc.state == .active)
                ssc.waitForListeners()
                #expect(starts.count.load(ordering: .relaxed) == 1)
                ssc.stop()
                #expect(ssc.state == .stopped)
            }
        }
    }

    /// The graceful-shutdown hook gives SIGTERM and SIGINT back the handlers they had, not the default
    /// action. (Before, stopping reset them to SIG_DFL.)
    @Test func theShutdownHookPutsBackThePreviousSignalHandlers() throws {
        let handler: @convention(c) (Int32) -> Void = { _ in }
        func current(_ number: Int32) -> UnsafeRawPointer? {
            var action = sigaction()
            sigaction(number, nil, &action)
            return action.__sigaction_handler.sa_handler.map { unsafeBitCast($0, to: UnsafeRawPointer.self) }
        }
        var mine = sigaction()
        mine.__sigaction_handler.sa_handler = handler
        var saved = (sigaction(), sigaction())
        sigaction(SIGTERM, &mine, &saved.0)
        sigaction(SIGINT, &mine, &saved.1)
        defer {
            sigaction(SIGTERM, &saved.0, nil)
            sigaction(SIGINT, &saved.1, nil)
        }
        let expected = unsafeBitCast(handler, to: UnsafeRawPointer.self)
        try StreamTest.exclusively {
            let ssc = try StreamingContext(
                conf: conf.set("spark.streaming.stopGracefullyOnShutdown", "true"), batchDuration: .seconds(1),
                clock: ManualClock())
            ssc.sequenceStream([[1]]).foreachRDD { _ in }
            try ssc.start()
            #expect(current(SIGTERM) != expected, "the hook handles SIGTERM while the context runs")
            ssc.stop()
        }
        #expect(current(SIGTERM) == expected && current(SIGINT) == expected)
    }

    @Test func stopInsideForeachRDDStopsTheContext() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            ssc.sequenceStream([[1], [2], [3]]).foreachRDD { rdd in
                if try rdd.collect() == [2] { ssc.stop() }
            }
            try ssc.start()
            clock.set(to: Time(milliseconds: 2_000))
            #expect(try ssc.awaitTerminationOrTimeout(.seconds(30)))
            #expect(ssc.state == .stopped)
        }
    }

    @Test func aNonGracefulStopDropsQueuedBatchesAndLetsTheRunningJobFinish() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .milliseconds(100), clock: clock)
            let started = Mutex(0)
            let finished = Mutex<[Int64]>([])
            ssc.sequenceStream((0..<10).map { [$0] }).foreachRDD { _, time in
                started.withLock { $0 += 1 }
                usleep(150_000)
                finished.withLock { $0.append(time.milliseconds) }
            }
            try ssc.start()
            clock.set(to: Time(milliseconds: 500))  // five batches at once: one runs, four wait
            while started.withLock({ $0 }) == 0 { usleep(1_000) }
            ssc.stop(gracefully: false)
            #expect(finished.withLock { $0 } == [100], "the running batch finished; the queued ones were dropped")
        }
    }

    @Test func aGracefulStopFinishesEveryQueuedBatchAndTheLastTick() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .milliseconds(100), clock: clock)
            let finished = Mutex<[Int64]>([])
            ssc.sequenceStream((0..<10).map { [$0] }).foreachRDD { _, time in
                usleep(30_000)
                finished.withLock { $0.append(time.milliseconds) }
            }
            try ssc.start()
            clock.set(to: Time(milliseconds: 500))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 100), timeout: .seconds(30)))
            clock.set(to: Time(milliseconds: 600))  // the timer's one last tick after stop
            ssc.stop(gracefully: true)
            #expect(finished.withLock { $0 } == [100, 200, 300, 400, 500, 600])
        }
    }

    @Test func outputOperationsRunInRegistrationOrderOneAtATime() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
            let log = Mutex<[String]>([])
            let input = ssc.sequenceStream([[1], [2]])
            for op in ["a", "b", "c"] {
                input.foreachRDD { _, time in
                    log.withLock { $0.append("\(op)\(time.milliseconds / 1_000) start") }
                    usleep(op == "a" ? 20_000 : 1_000)
                    log.withLock { $0.append("\(op)\(time.milliseconds / 1_000) end") }
                }
            }
            try ssc.start()
            clock.set(to: Time(milliseconds: 2_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 2_000), timeout: .seconds(30)))
            ssc.stop()
            #expect(log.withLock { $0 } == [
                "a1 start", "a1 end", "b1 start", "b1 end", "c1 start", "c1 end",
                "a2 start", "a2 end", "b2 start", "b2 end", "c2 start", "c2 end",
            ])
        }
    }

    @Test func concurrentJobsRunOutputOperationsAtOnce() throws {
        try StreamTest.exclusively {
            let clock = ManualClock()
            let ssc = try StreamingContext(
                conf: conf.set("spark.streaming.concurrentJobs", "2"), batchDuration: .seconds(1), clock: clock)
            let running = Mutex(0)
            let most = Mutex(0)
            let input = ssc.sequenceStream([[1]])
            for _ in 0..<2 {
                input.foreachRDD { _ in
                    running.withLock { r in
                        r += 1
                        most.withLock { $0 = max($0, r) }
                    }
                    usleep(100_000)
                    running.withLock { $0 -= 1 }
                }
            }
            try ssc.start()
            clock.set(to: Time(milliseconds: 1_000))
            #expect(ssc.waitUntilBatchHandled(Time(milliseconds: 1_000), timeout: .seconds(30)))
            ssc.stop()
            #expect(most.withLock { $0 } == 2)
        }
    }

    @Test func aCheckpointIntervalMustBeAMultipleOfTheSlide() throws {
        try StreamTest.exclusively {
            let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(2), clock: ManualClock())
            let stream = ssc.sequenceStream([[1]]).map { $0 }.checkpoint(.seconds(3))
            stream.print()
            #expect(stream.storageLevel == .memoryOnlySer, "checkpointing persists, as in Spark")
            let error = #expect(throws: StreamingError.self) { try ssc.start() }
            #expect(error?.message.contains("3000 ms") == true && error?.message.contains("2000 ms") == true)
        }
    }
}

/// Runs tasks' jobs on a dispatch queue of its own, away from the cooperative pool.
final class QueueExecutor: TaskExecutor {
    let queue = DispatchQueue(label: "sluice.test.executor")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

