import Glibc
import Sluice
import Synchronization

/// A Kafka-protocol broker in a process of its own (noida-db, from PyPI: `scripts/setup.sh` installs it),
/// on 127.0.0.1 at a free port with a temporary data directory, started and stopped by PID.
public final class NoidaBroker: Sendable {
    /// `bootstrap.servers` for it.
    public let bootstrapServers: String
    private let process: ChildProcess
    private let data: TemporaryDirectory
    private let stopped = Mutex(false)

    /// The noida-db executable: `$NOIDA_DB`, else the one in Debian python3's `noida_db` package.
    public static func executable() -> String? {
        if let path = getenv("NOIDA_DB").map({ String(cString: $0) }), access(path, X_OK) == 0 { return path }
        for base in ["/usr/local/lib", "/usr/lib"] {
            for python in ["python3.11", "python3.12", "python3.13", "python3"] {
                let path = "\(base)/\(python)/dist-packages/noida_db/noida-db"
                if access(path, X_OK) == 0 { return path }
            }
        }
        return nil
    }

    /// Starts a broker and waits (up to 20 s) until it accepts connections.
    /// - Throws: ``StreamingError`` when noida-db is not installed or does not come up.
    public init() throws {
        guard let executable = Self.executable() else {
            throw StreamingError(.internalFailure, "noida-db is not installed (scripts/setup.sh installs it with pip)")
        }
        let port = try LoopbackServer.freePort()
        data = try TemporaryDirectory(prefix: "sluice-noida")
        process = try ChildProcess(
            executable,
            ["start", "--only", "kafka", "--kafka-port", "\(port)", "--host", "127.0.0.1", "--data-dir", data.path],
            logPath: "\(data.path).log")
        bootstrapServers = "127.0.0.1:\(port)"
        for _ in 0..<400 {
            if LoopbackServer.accepts(port: port) { return }
            if process.wait(timeout: .zero) != nil { break }
            usleep(50_000)
        }
        process.killAndWait()
        data.remove()
        throw StreamingError(.internalFailure, "noida-db did not start on port \(port) (its output: \(data.path).log)")
    }

    /// Stops the broker (SIGTERM, then SIGKILL after 10 s) and removes its data; stopping it again does nothing.
    public func stop() {
        guard !stopped.withLock({ done in defer { done = true }; return done }) else { return }
        process.signal(SIGTERM)
        if process.wait(timeout: .seconds(10)) == nil { process.killAndWait() }
        data.remove()
        unlink("\(data.path).log")
    }
}
