import Glibc
import Synchronization
import Testing
@testable import Sluice
@testable import SluiceExecution
import SluiceTesting

/// Simulated time for a rate limiter: sleeping moves the clock.
final class SimulatedTime: Sendable {
    private let nanoseconds = Mutex<UInt64>(1_000_000_000)
    private let slept = Mutex<[UInt64]>([])
    var now: UInt64 { nanoseconds.withLock { $0 } }
    var sleeps: [UInt64] { slept.withLock { $0 } }
    func advance(_ ns: UInt64) { nanoseconds.withLock { $0 += ns } }
    var limiterTime: RateLimiterTime {
        RateLimiterTime(now: { self.now }, sleep: { ns in self.slept.withLock { $0.append(ns) }; self.advance(ns) })
    }
}

@Suite struct RateLimiterTests {
    @Test func permitsAreSpacedOneOverTheRateAndTheFirstIsFree() {
        let time = SimulatedTime()
        let limiter = RateLimiter(maxRate: nil, initialRate: 100, time: time.limiterTime)
        for _ in 0..<5 { limiter.waitToPush() }
        // The first is immediate; each later one waits 10 ms after the one before.
        #expect(time.sleeps == [10_000_000, 10_000_000, 10_000_000, 10_000_000])
    }

    @Test func idleTimeBanksAtMostOneSecondOfPermits() {
        let time = SimulatedTime()
        let limiter = RateLimiter(maxRate: nil, initialRate: 100, time: time.limiterTime)
        limiter.waitToPush()
        time.advance(5_000_000_000)  // 5 s idle: only 1 s (100 permits) is banked
        for _ in 0..<100 { limiter.waitToPush() }
        #expect(time.sleeps.isEmpty)
        limiter.waitToPush()  // the 101st after the idle time waits (it pays for the previous one)
        limiter.waitToPush()
        #expect(time.sleeps.count == 1)
    }

    @Test func aRateChangeRescalesBankedPermitsAndMaxRateCaps() {
        let time = SimulatedTime()
        let limiter = RateLimiter(maxRate: 1_000, initialRate: 100, time: time.limiterTime)
        limiter.waitToPush()
        time.advance(1_000_000_000)  // 100 banked
        limiter.setRate(50)  // banked permits halve to 50
        for _ in 0..<50 { limiter.waitToPush() }
        #expect(time.sleeps.isEmpty)
        limiter.setRate(10_000)
        #expect(limiter.rate == 1_000)  // capped at maxRate
        limiter.setRate(0)
        limiter.setRate(-5)
        #expect(limiter.rate == 1_000)  // ignored, as Spark's updateRate
        let unlimited = RateLimiter(maxRate: nil, initialRate: nil, time: time.limiterTime)
        #expect(unlimited.rate == nil)
        for _ in 0..<1_000 { unlimited.waitToPush() }
        #expect(time.sleeps.isEmpty)
        #expect(RateLimiter(maxRate: 500, initialRate: nil).rate == 500)  // initial rate falls back to maxRate
        #expect(RateLimiter(maxRate: 500, initialRate: 2_000).rate == 500)
    }

    @Test func onTheRealClockTheRateIsWithinFivePercentOverTwoSeconds() {
        let limiter = RateLimiter(maxRate: nil, initialRate: 5_000)
        let start = monotonicNanoseconds()
        var pushed = 0
        while monotonicNanoseconds() - start < 2_000_000_000 {
            limiter.waitToPush()
            pushed += 1
        }
        #expect(abs(Double(pushed) - 10_000) / 10_000 <= 0.05, "\(pushed) records in 2 s at 5,000/s")
    }
}

@Suite struct PIDRateEstimatorTests {
    /// Spark's formula, written out.
    struct Reference {
        let interval: Double, p: Double, i: Double, d: Double, minRate: Double
        var first = true, latestTime = -1.0, latestRate = -1.0, latestError = -1.0
        mutating func compute(_ time: Double, _ n: Double, _ processing: Double, _ scheduling: Double) -> Double? {
            guard time > latestTime, n > 0, processing > 0 else { return nil }
            let since = (time - latestTime) / 1000
            let rate = n / processing * 1000
            let error = latestRate - rate
            let historical = scheduling * rate / interval
            let dError = (error - latestError) / since
            let next = max(latestRate - p * error - i * historical - d * dError, minRate)
            latestTime = time
            if first {
                latestRate = rate
                latestError = 0
                first = false
                return nil
            }
            latestRate = next
            latestError = error
            return next
        }
    }

    @Test func matchesSparksFormulaOnRandomBatches() throws {
        var random = SeededGenerator(seed: 17)
        for _ in 0..<20 {
            let (p, i, d) = (Double.random(in: 0...2, using: &random), Double.random(in: 0...1, using: &random),
                             Double.random(in: 0...0.5, using: &random))
            var estimator = try PIDRateEstimator(batchIntervalMs: 500, proportional: p, integral: i, derivative: d, minRate: 50)
            var reference = Reference(interval: 500, p: p, i: i, d: d, minRate: 50)
            var time: Int64 = 1_000
            for _ in 0..<30 {
                time += Int64.random(in: -100...1_000, using: &random)
                let n = Int.random(in: 0...20_000, using: &random)
                let processing = Int64.random(in: 0...800, using: &random)
                let scheduling = Int64.random(in: 0...2_000, using: &random)
                let got = estimator.compute(time: time, elements: n, processingDelay: processing, schedulingDelay: scheduling)
                let expected = reference.compute(Double(time), Double(n), Double(processing), Double(scheduling))
                #expect(got == expected)
            }
        }
    }

    @Test func theFirstCallPrimesAndUselessBatchesAreIgnored() throws {
        var estimator = try PIDRateEstimator(batchIntervalMs: 1_000)
        #expect(estimator.compute(time: 10, elements: 1_000, processingDelay: 100, schedulingDelay: 0) == nil)  // primes
        #expect(estimator.compute(time: 10, elements: 1_000, processingDelay: 100, schedulingDelay: 0) == nil)  // same time
        #expect(estimator.compute(time: 5, elements: 1_000, processingDelay: 100, schedulingDelay: 0) == nil)  // earlier
        #expect(estimator.compute(time: 20, elements: 0, processingDelay: 100, schedulingDelay: 0) == nil)  // no data
        #expect(estimator.compute(time: 20, elements: 1_000, processingDelay: 0, schedulingDelay: 0) == nil)  // no time
        // Steady: processed at 10,000/s, which was the rate: it stays.
        #expect(estimator.compute(time: 1_010, elements: 1_000, processingDelay: 100, schedulingDelay: 0) == 10_000)
        // A huge backlog drives the rate to the floor.
        let floor = estimator.compute(time: 2_010, elements: 10, processingDelay: 1_000, schedulingDelay: 100_000)
        #expect(floor == 100)
        #expect(estimator.lastTerms.map { $0.unclampedRate < 100 } == true)
    }

    @Test func refusesWhatSparkRefuses() {
        for (interval, p, i, d, minRate, message) in [
            (Int64(0), 1.0, 0.2, 0.0, 100.0, "batch interval"), (1_000, -1, 0.2, 0, 100, "Proportional"),
            (1_000, 1, -0.1, 0, 100, "Integral"), (1_000, 1, 0.2, -1, 100, "Derivative"), (1_000, 1, 0.2, 0, 0, "Minimum rate"),
        ] {
            let error = #expect(throws: StreamingError.self) {
                _ = try PIDRateEstimator(batchIntervalMs: interval, proportional: p, integral: i, derivative: d, minRate: minRate)
            }
            #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        }
    }
}
