import Glibc
import SluiceExecution
import Synchronization

/// Where a streaming context reads the time: the system clock in production, a ``ManualClock`` in tests, so
/// that batch boundaries, windows and timeouts are tested without sleeping.
public protocol StreamingClock: Sendable {
    /// The current time.
    var time: Time { get }
}

/// The system's wall clock.
public struct SystemClock: StreamingClock {
    public init() {}

    public var time: Time {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Time(milliseconds: Int64(now.tv_sec) * 1_000 + Int64(now.tv_nsec) / 1_000_000)
    }
}

/// A clock that moves only when told to (Spark's `ManualClock`). A context on a manual clock generates a
/// batch when the clock reaches the batch's time.
public final class ManualClock: StreamingClock {
    private let now: Mutex<Time>
    /// Signalled whenever the time changes, for threads waiting for a time.
    let changed = PthreadCondition()

    /// A clock at `startTime`.
    public init(startTime: Time = Time(milliseconds: 0)) {
        now = Mutex(startTime)
    }

    public var time: Time { now.withLock { $0 } }

    /// Moves the clock forward by `duration`.
    public func advance(by duration: Duration) {
        now.withLock { $0 = $0 + duration }
        changed.locked { changed.broadcast() }
    }

    /// Sets the clock to `time`.
    public func set(to time: Time) {
        now.withLock { $0 = time }
        changed.locked { changed.broadcast() }
    }
}

/// Waits for a clock to reach a time, and can be woken early (to stop).
final class ClockWaiter: Sendable {
    let clock: any StreamingClock
    private let condition: PthreadCondition
    private let interrupted = Mutex(false)
    /// Whether the clock signals its changes (a ``ManualClock``) or is the system's.
    private let manual: Bool
    private let system: Bool

    init(clock: any StreamingClock) {
        self.clock = clock
        let manualClock = clock as? ManualClock
        self.condition = manualClock?.changed ?? PthreadCondition()
        self.manual = manualClock != nil
        self.system = clock is SystemClock
    }

    /// Blocks until the clock reads `target` or later (true), or until ``interrupt()`` (false).
    func wait(until target: Time) -> Bool {
        condition.locked {
            while true {
                if interrupted.withLock({ $0 }) { return false }
                let now = clock.time
                if now >= target { return true }
                if manual {
                    condition.wait(nanoseconds: 100_000_000)  // woken by the clock; the timeout is a safety net
                } else if system {
                    condition.wait(nanoseconds: Int(min(target.milliseconds - now.milliseconds, 100)) * 1_000_000)
                } else {
                    condition.wait(nanoseconds: 1_000_000)  // a clock of the program's own: poll every millisecond
                }
            }
        }
    }

    /// Wakes a waiting ``wait(until:)``, which then returns false; later waits return false at once.
    func interrupt() {
        interrupted.withLock { $0 = true }
        condition.locked { condition.broadcast() }
    }
}
