import Glibc

/// A mutex and a condition variable, for sleeping until something changes. Kept apart from `Mutex` because a
/// condition variable needs its mutex at a stable address. Timed waits run on the monotonic clock, so a change
/// of the wall clock neither cuts them short nor stretches them.
package final class PthreadCondition: @unchecked Sendable {
    // Safe (@unchecked Sendable): both objects are allocated once, never moved, used only through pthread calls,
    // and freed in deinit when no thread can still reach them.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    package init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Runs `body` holding the mutex.
    package func locked<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Sleeps until signalled; call inside `locked`.
    package func wait() {
        pthread_cond_wait(condition, mutex)
    }

    /// Sleeps until signalled or `nanoseconds` pass (on the monotonic clock); call inside `locked`.
    package func wait(nanoseconds: Int) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let total = Int(now.tv_nsec) + nanoseconds
        var deadline = timespec(tv_sec: now.tv_sec + total / 1_000_000_000, tv_nsec: total % 1_000_000_000)
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    /// Wakes one sleeper; call inside `locked`.
    package func signal() { pthread_cond_signal(condition) }

    /// Wakes every sleeper; call inside `locked`.
    package func broadcast() { pthread_cond_broadcast(condition) }
}
