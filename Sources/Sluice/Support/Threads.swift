import Glibc
import Synchronization

/// A closure for a new thread, retained across `pthread_create`.
private final class ThreadBody {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// Starts a thread running `body`; returns its handle, or nil when no thread could be made.
private func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var handle = pthread_t()
    let rc = pthread_create(&handle, nil, { context in
        // Safe: the context is the body retained above, released here once.
        Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context)
    guard rc == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        return nil
    }
    return handle
}

/// A detached thread running one closure.
enum DetachedThread {
    /// Runs `body` on a new thread (or here, if no thread can be made).
    static func run(_ body: @escaping @Sendable () -> Void) {
        if let handle = startThread(body) {
            pthread_detach(handle)
        } else {
            body()
        }
    }
}

/// A thread that can be waited for.
final class JoinableThread: Sendable {
    private let handle: Mutex<UInt?>

    /// Starts `body` on a new thread; `name` says what it is for in the error.
    /// - Throws: ``StreamingError`` when the system refuses a thread.
    init(name: String, _ body: @escaping @Sendable () -> Void) throws {
        guard let thread = startThread(body) else {
            throw StreamingError(.internalFailure, "could not start the \(name) thread (errno \(errno))")
        }
        handle = Mutex(UInt(thread))
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
