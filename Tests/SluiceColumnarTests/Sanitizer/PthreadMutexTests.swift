#if SLUICE_SYSTEM_ALLOCATOR
import Dispatch
import Testing
@testable import SluiceColumnar

/// The sanitizer builds' `Mutex` (run by `scripts/sanitize.sh thread`, where a race is a failure).
@Suite struct PthreadMutexTests {
    @Test func everyIncrementFromManyThreadsCounts() {
        let counter = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 { counter.withLock { $0 += 1 } }
        }
        #expect(counter.withLock { $0 } == 80_000)
    }

    /// An empty value shares its object's address with the lock's pointer: ThreadSanitizer once reported every
    /// use of `Mutex(())` from two threads as a race (a write of the value against a read of the pointer).
    @Test func aLockOverNothingGuardsWhatItsBodyTouches() {
        let lock = Mutex(())
        let total = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        defer { total.deallocate() }
        total.initialize(to: 0)
        let address = Int(bitPattern: total)  // a pointer is not Sendable: the lock is what makes this safe
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<5_000 {
                lock.withLock { _ in UnsafeMutablePointer<Int>(bitPattern: address)?.pointee += 1 }
            }
        }
        #expect(total.pointee == 20_000)
    }

    @Test func aThrowingBodyUnlocks() {
        struct Refused: Error {}
        let lock = Mutex([Int]())
        #expect(throws: Refused.self) { try lock.withLock { (_: inout [Int]) throws(Refused) in throw Refused() } }
        lock.withLock { $0.append(1) }
        #expect(lock.withLock { $0 } == [1])
    }
}
#endif
