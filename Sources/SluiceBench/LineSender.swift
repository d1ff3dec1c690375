import Glibc
import Sluice
import SluiceTesting

/// The peer of the socket workload: a separate process (streambench itself, run with `--serve-lines`) that
/// listens on 127.0.0.1, accepts the receiver's connection and writes lines of 10 words, paced to a rate, as
/// `nc -lk` fed by a program would for the guide's `socketTextStream` example.
final class LineSender {
    let port: Int
    private let child: ChildProcess

    /// Listens on an ephemeral port of 127.0.0.1 and starts the sender process on it: `executable` (by default
    /// this program, streambench) run with `--serve-lines`.
    /// - Throws: ``StreamingError`` when the socket or the process cannot be made.
    init(rate: Int, executable: String = "/proc/self/exe") throws {
        let (fd, port) = try Self.listen()
        // The child inherits the listening socket; this process keeps no copy.
        defer { close(fd) }
        self.port = port
        child = try ChildProcess(executable, ["--serve-lines", String(fd), "--rate", String(rate)], logPath: "/dev/null")
    }

    /// A socket listening on an ephemeral port of 127.0.0.1, and the port.
    static func listen() throws -> (fd: Int32, port: Int) {
        do {
            return try LoopbackServer.listeningSocket(backlog: 1)
        } catch {
            throw StreamingError(.internalFailure, "socket workload: \(error)")
        }
    }

    /// Stops the sender and reaps it.
    func stop() { child.killAndWait() }

    /// The sender process's loop: accepts one connection on `listening` and writes `rate` lines a second (the
    /// embedded generator's lines, same seed) until the connection closes.
    static func serve(listening: Int32, rate: Int) -> Int32 {
        let connection = accept(listening, nil, nil)
        guard connection >= 0 else { return 1 }
        close(listening)
        let maker = LineMaker(wordsPerLine: 10, vocabulary: 10_000)
        var random = WyRand(seed: 1)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(max(1, rate / 1_000) * (maker.maxLineBytes + 1))
        sendPaced(rate: rate) { n in
            buffer.removeAll(keepingCapacity: true)
            maker.lines(n, &random) { line in
                buffer.append(contentsOf: line)
                buffer.append(UInt8(ascii: "\n"))
            }
            return buffer.withUnsafeBytes { bytes -> Bool in
                var offset = 0
                while offset < bytes.count {
                    // MSG_NOSIGNAL: a closed peer is an EPIPE error here, not a SIGPIPE that ends the process.
                    let written = send(connection, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { return false }
                    offset += written
                }
                return true
            }
        }
        // The receiver went away: the run is over.
        close(connection)
        return 0
    }
}

/// A feeder process's loop: calls `send` with how many records are due at `rate` a second (at most 64 ms of
/// them at once), sleeping while none are, until `send` says to stop (returns false).
func sendPaced(rate: Int, _ send: (Int) -> Bool) {
    let pacer = Pacer(ratePerSecond: Double(rate))
    let chunk = 64 * max(1, rate / 1_000)
    var sent = 0
    while true {
        let due = pacer.due(after: sent)
        if due == 0 { continue }  // slept
        let n = min(due, chunk)
        guard send(n) else { return }
        sent += n
    }
}
