import Glibc
import Sluice

/// A program run as a child process, its output appended to a log file: for tests that kill a streaming
/// program at random points and start it again.
public final class ChildProcess: Sendable {
    /// The child's process id.
    public let pid: pid_t
    /// The file its standard output and error go to.
    public let logPath: String

    /// Starts `executable` with `arguments`, appending its output to `logPath`, in this process's environment
    /// with `environment`'s variables added (or replaced).
    /// - Throws: ``StreamingError`` when the process cannot be started.
    public init(
        _ executable: String, _ arguments: [String], logPath: String, environment: [String: String] = [:]
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        // The child starts with no signal blocked and default actions, whatever the test runner's threads set.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var inherited: [String] = []
        var entry = environ
        while let variable = entry.pointee {
            let text = String(cString: variable)
            if !environment.keys.contains(where: { text.hasPrefix("\($0)=") }) { inherited.append(text) }
            entry += 1
        }
        let envp = (inherited + environment.map { "\($0.key)=\($0.value)" }).map { strdup($0) } + [nil]
        defer { for variable in envp { free(variable) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            throw StreamingError(.internalFailure, "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        self.pid = child
        self.logPath = logPath
    }

    /// Sends `signal` to the child.
    public func signal(_ signal: Int32) { _ = kill(pid, signal) }

    /// Waits up to `timeout` for the child to end; its wait status, or nil if it is still running.
    public func wait(timeout: Duration) -> Int32? {
        let deadline = Int64(timeout.components.seconds) * 1_000 + timeout.components.attoseconds / 1_000_000_000_000_000
        var waited: Int64 = 0
        while true {
            var status: Int32 = 0
            let rc = waitpid(pid, &status, WNOHANG)
            if rc == pid || rc < 0 { return status }
            if waited >= deadline { return nil }
            usleep(10_000)
            waited += 10
        }
    }

    /// Kills the child with SIGKILL and reaps it.
    public func killAndWait() {
        signal(SIGKILL)
        _ = wait(timeout: .seconds(30))
    }

    /// The path of an executable product built beside the running test bundle (e.g. an example), if there.
    public static func builtProduct(_ name: String) -> String? {
        var directory = CommandLine.arguments.first ?? "."
        // Up from the test executable (or out of an .xctest bundle) to the build directory.
        repeat {
            directory = directory.contains("/") ? String(directory[..<directory.lastIndex(of: "/")!]) : "."  // Safe: contains "/".
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        } while directory.contains(".xctest")
        return nil
    }
}
