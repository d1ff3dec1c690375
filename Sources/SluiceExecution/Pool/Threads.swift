import Glibc

/// A closure for a new thread, retained across `pthread_create`.
private final class ThreadBody {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// Starts a thread running `body` and returns its handle, to be joined or detached: the one place Sluice
/// makes threads (the pool's workers, the scheduler's, receivers', listeners').
/// - Throws: ``StreamingError`` (`internalFailure`) naming the thread (`name`) and the system's reason.
package func startThread(_ name: String, _ body: @escaping @Sendable () -> Void) throws(StreamingError) -> pthread_t {
    let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var handle = pthread_t()
    let rc = pthread_create(&handle, nil, { context in
        // Safe: the context is the body retained above, released here once.
        Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context)
    guard rc == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(context).release()
        throw StreamingError(
            .internalFailure, "could not start the \(name) thread: \(String(cString: strerror(rc))) (errno \(rc))")
    }
    return handle
}
