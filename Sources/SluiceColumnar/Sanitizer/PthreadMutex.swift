#if SLUICE_SYSTEM_ALLOCATOR
import Glibc

/// `Synchronization.Mutex`'s `withLock` over a pthread mutex, for sanitizer builds (`SLUICE_SYSTEM_ALLOCATOR=1`):
/// on Linux `Mutex` waits with raw futex system calls, which ThreadSanitizer does not see as synchronization,
/// so it reports races that the lock prevents; it intercepts pthread mutexes. In those builds every module
/// names this type `Mutex` (its `SanitizerMutex.swift`), and the code is unchanged.
package final class PthreadMutex<Value: ~Copyable>: @unchecked Sendable {
    // @unchecked: `value` is only touched with `mutex` held. The value lives behind a pointer rather than in a
    // stored property: ThreadSanitizer checks a property's exclusive access by its address, and an empty value
    // (`Mutex(())`) shares its address with the next field, which other threads read before they lock.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    package init(_ initialValue: consuming sending Value) {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        value = .allocate(capacity: 1)
        value.initialize(to: initialValue)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with the value, the lock held.
    package func withLock<Result: ~Copyable, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}

/// In sanitizer builds, `Mutex` is ``PthreadMutex``.
typealias Mutex<Value: ~Copyable> = PthreadMutex<Value>
#endif
