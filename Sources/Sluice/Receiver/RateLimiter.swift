import Glibc
import SluiceExecution
import Synchronization

/// Where a rate limiter reads the time and how it waits: the monotonic clock and `nanosleep` in production, a
/// simulated clock in tests.
struct RateLimiterTime: Sendable {
    /// Nanoseconds on a monotonic clock.
    let now: @Sendable () -> UInt64
    /// Waits `nanoseconds`.
    let sleep: @Sendable (UInt64) -> Void

    static let system = RateLimiterTime(
        now: { monotonicNanoseconds() },
        sleep: { nanoseconds in
            var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
            var remaining = timespec()
            while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
        })
}

/// A receiver's limit on records per second (Spark's `RateLimiter` over Guava's `SmoothBursty`): permits are
/// spaced 1/rate apart, time left idle banks up to one second of permits (a burst), and the wait a request
/// incurs is paid by the next request (the first is never delayed). Changing the rate rescales the banked
/// permits. The rate is at most `maxRate` when one is set; without any rate, nothing waits.
final class RateLimiter: Sendable {
    private struct State {
        /// Records per second, or nil: unlimited.
        var rate: Double?
        var storedPermits = 0.0
        var maxPermits = 0.0
        /// Nanoseconds between permits.
        var interval = 0.0
        /// When the next permit is free (ns).
        var nextFree: Double
    }

    /// The ceiling (`spark.streaming.receiver.maxRate`), or nil.
    let maxRate: Double?
    private let time: RateLimiterTime
    private let state: Mutex<State>
    /// Whether any rate is set: the unlimited path takes no lock.
    private let limited: Atomic<Bool>

    /// A limiter starting at `initialRate` (else `maxRate`, else unlimited), never above `maxRate`.
    init(maxRate: Double?, initialRate: Double?, time: RateLimiterTime = .system) {
        self.maxRate = maxRate.flatMap { $0 > 0 ? $0 : nil }
        self.time = time
        state = Mutex(State(nextFree: Double(time.now())))
        limited = Atomic(false)
        let start = [initialRate, self.maxRate].compactMap { $0 }.filter { $0 > 0 }.min()
        if let start { setRate(start) }
    }

    /// The current rate (records per second), or nil when unlimited.
    var rate: Double? { state.withLock { $0.rate } }

    /// Blocks until one more record may be pushed.
    func waitToPush() { acquire(1) }

    /// Blocks until `permits` more records may be pushed.
    func acquire(_ permits: Int) {
        guard limited.load(ordering: .relaxed), permits > 0 else { return }
        let now = Double(time.now())
        let wait = state.withLock { s -> Double in
            guard let rate = s.rate else { return 0 }
            resync(&s, now: now)
            let moment = s.nextFree
            let fromStore = min(Double(permits), s.storedPermits)
            let fresh = Double(permits) - fromStore
            s.nextFree += fresh * (1e9 / rate)
            s.storedPermits -= fromStore
            return max(0, moment - now)
        }
        if wait > 0 { time.sleep(UInt64(wait)) }
    }

    /// Sets the rate to `newRate` records per second (capped at `maxRate`); ignored unless positive (Spark's
    /// `updateRate`).
    func setRate(_ newRate: Double) {
        guard newRate > 0, newRate.isFinite else { return }
        let rate = min(newRate, maxRate ?? .infinity)
        let now = Double(time.now())
        state.withLock { s in
            resync(&s, now: now)
            let oldMax = s.maxPermits
            s.rate = rate
            s.interval = 1e9 / rate
            s.maxPermits = rate  // one second's worth
            s.storedPermits = oldMax == 0 ? 0 : s.storedPermits * s.maxPermits / oldMax
        }
        limited.store(true, ordering: .relaxed)
    }

    /// Banks the permits of the time since the next permit was free.
    private func resync(_ s: inout State, now: Double) {
        guard now > s.nextFree else { return }
        if s.interval > 0 {
            s.storedPermits = min(s.maxPermits, s.storedPermits + (now - s.nextFree) / s.interval)
        }
        s.nextFree = now
    }
}
