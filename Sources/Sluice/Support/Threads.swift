import Glibc
import SluiceExecution
import Synchronization

/// A detached thread running one closure.
enum DetachedThread {
    /// Runs `body` on a new thread; `name` says what it is for in the error.
    /// - Throws: ``StreamingError`` (`internalFailure`) when the system refuses a thread (the body never runs).
    static func run(_ name: String, _ body: @escaping @Sendable () -> Void) throws {
        pthread_detach(try startThread(name, body))
    }
}

/// A thread that can be waited for.
final class JoinableThread: Sendable {
    private let handle: Mutex<UInt?>

    /// Starts `body` on a new thread; `name` says what it is for in the error.
    /// - Throws: ``StreamingError`` when the system refuses a thread.
    init(name: String, _ body: @escaping @Sendable () -> Void) throws {
        handle = Mutex(UInt(try startThread(name, body)))
    }

    /// Waits for the thread to finish (at most once; later calls return at once). Not from the thread itself.
    func join() {
        guard let thread = take() else { return }
        pthread_join(pthread_t(thread), nil)
    }

    /// Lets the thread finish on its own, unwaited (the way to let go of it from the thread itself).
    func detach() {
        guard let thread = take() else { return }
        pthread_detach(pthread_t(thread))
    }

    private func take() -> UInt? { handle.withLock { h in defer { h = nil }; return h } }
}
