import Logging
import Glibc
import Synchronization

/// `spark.streaming.stopGracefullyOnShutdown`: SIGTERM or SIGINT stops the active context gracefully (every
/// received block processed, output finished, a final checkpoint written, within
/// `spark.streaming.gracefulStopTimeout`), then the signal takes the action it had before the hook (the
/// default ends the process, as it would have).
///
/// The signal handler only writes the signal's number to a pipe (all a handler may safely do); a thread of its
/// own reads the pipe and does the stopping. Removing the hook puts back the handlers it replaced.
enum ShutdownHook {
    private struct Installed {
        weak var context: StreamingContext?
        var watching = false
        /// The actions SIGTERM and SIGINT had before the hook, put back by `remove`.
        var previous: [Int32: sigaction] = [:]
    }

    private static let installed = Mutex(Installed())
    /// The pipe's write end, for the signal handler (set once, before the handler is installed).
    nonisolated(unsafe) private static var signalPipe: Int32 = -1
    static let signals = [SIGTERM, SIGINT]

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
            do {
                try DetachedThread.run("shutdown hook") { watch(readEnd) }
            } catch {
                close(fds[0])
                close(fds[1])
                signalPipe = -1
                installed.withLock { $0.watching = false }
                throw error
            }
        }
        installed.withLock { s in
            for number in signals where s.previous[number] == nil {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = { number in
                    var byte = UInt8(truncatingIfNeeded: number)
                    _ = write(ShutdownHook.signalPipe, &byte, 1)
                }
                sigemptyset(&action.sa_mask)
                action.sa_flags = SA_RESTART
                var previous = sigaction()
                if sigaction(number, &action, &previous) == 0 { s.previous[number] = previous }
            }
        }
    }

    /// Puts back the actions SIGTERM and SIGINT had before `context` installed the hook.
    static func remove(_ context: StreamingContext) {
        installed.withLock { s in
            guard s.context === context else { return }
            s.context = nil
            restorePrevious(&s)
        }
    }

    private static func restorePrevious(_ s: inout Installed) {
        for (number, var previous) in s.previous { sigaction(number, &previous, nil) }
        s.previous = [:]
    }

    private static func watch(_ readEnd: Int32) {
        while true {
            var byte: UInt8 = 0
            let n = read(readEnd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            guard n == 1 else { return }
            let number = Int32(byte)
            if let context = installed.withLock({ $0.context }) {
                context.log(.notice, .context, "signal \(number): stopping gracefully (spark.streaming.stopGracefullyOnShutdown)")
                context.stop(gracefully: true)
            }
            // The signal again, with the action it had before the hook. The default ends the process, without
            // the exit handlers that remove the engines' spill directories: removed here first (a handler of the
            // program's own may go on running, and spilling).
            let ends = installed.withLock { s in
                s.previous[number].map { previous in
                    previous.__sigaction_handler.sa_handler == nil && previous.sa_flags & SA_SIGINFO == 0
                } ?? true
            }
            if ends { SpillDirectory.removeLiveDirectories() }
            installed.withLock { restorePrevious(&$0) }
            raise(number)
        }
    }
}
