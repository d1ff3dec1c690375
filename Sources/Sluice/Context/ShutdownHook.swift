import Glibc
import Synchronization

/// `spark.streaming.stopGracefullyOnShutdown`: SIGTERM or SIGINT stops the active context gracefully (every
/// received block processed, output finished, a final checkpoint written, within
/// `spark.streaming.gracefulStopTimeout`), then the process ends by the signal as it would have.
///
/// The signal handler only writes the signal's number to a pipe (all a handler may safely do); a thread of its
/// own reads the pipe and does the stopping.
enum ShutdownHook {
    private struct Installed {
        weak var context: StreamingContext?
        var watching = false
    }

    private static let installed = Mutex(Installed())
    /// The pipe's write end, for the signal handler (set once, before the handler is installed).
    nonisolated(unsafe) private static var signalPipe: Int32 = -1

    /// Makes SIGTERM and SIGINT stop `context` gracefully.
    /// - Throws: ``StreamingError`` when the pipe or the watching thread cannot be made.
    static func install(for context: StreamingContext) throws {
        let startWatcher = installed.withLock { s -> Bool in
            s.context = context
            defer { s.watching = true }
            return !s.watching
        }
        if startWatcher {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else {
                installed.withLock { $0.watching = false }
                throw StreamingError(.internalFailure, "cannot make the shutdown hook's pipe (errno \(errno))")
            }
            signalPipe = fds[1]
            let readEnd = fds[0]
            DetachedThread.run { watch(readEnd) }
        }
        signal(SIGTERM) { number in
            var byte = UInt8(truncatingIfNeeded: number)
            _ = write(ShutdownHook.signalPipe, &byte, 1)
        }
        signal(SIGINT) { number in
            var byte = UInt8(truncatingIfNeeded: number)
            _ = write(ShutdownHook.signalPipe, &byte, 1)
        }
    }

    /// Gives SIGTERM and SIGINT back their default action if `context` installed the hook.
    static func remove(_ context: StreamingContext) {
        let mine = installed.withLock { s -> Bool in
            guard s.context === context else { return false }
            s.context = nil
            return true
        }
        guard mine else { return }
        signal(SIGTERM, SIG_DFL)
        signal(SIGINT, SIG_DFL)
    }

    private static func watch(_ readEnd: Int32) {
        while true {
            var byte: UInt8 = 0
            let n = read(readEnd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            guard n == 1 else { return }
            let number = Int32(byte)
            if let context = installed.withLock({ $0.context }) {
                context.log("signal \(number): stopping gracefully (spark.streaming.stopGracefullyOnShutdown)")
                context.stop(gracefully: true)
            }
            signal(number, SIG_DFL)
            raise(number)
        }
    }
}
