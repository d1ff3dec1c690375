import Glibc
import Synchronization

/// A TCP server on 127.0.0.1 for testing socket streams: it listens on a free port, accepts connections when
/// asked, and lets the test write to them and close them (as `nc -lk` would, under the test's control).
public final class LoopbackServer: Sendable {
    /// The port it listens on.
    public let port: Int
    private let listener: Int32

    /// Listens on a free port of 127.0.0.1.
    /// - Throws: ``TestServerError`` when no socket can be made.
    public init() throws {
        (listener, port) = try Self.listeningSocket()
    }

    /// A socket listening on a free port of 127.0.0.1, and the port: for a server of the caller's own (it owns
    /// the descriptor).
    /// - Throws: ``TestServerError`` when no socket can be made.
    public static func listeningSocket(backlog: Int32 = 16) throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestServerError("socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(fd)
            throw TestServerError("bind/listen on 127.0.0.1: \(message)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    deinit { Glibc.close(listener) }

    /// A port of 127.0.0.1 free a moment ago (for a server in another process; another program may take it
    /// first, rarely).
    public static func freePort() throws -> Int {
        let (fd, port) = try listeningSocket()
        Glibc.close(fd)
        return port
    }

    /// The address 127.0.0.1:`port`.
    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }

    /// A socket connected to 127.0.0.1:`port` (the caller closes it); nil when nothing accepts there.
    public static func connect(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        if connected { return fd }
        Glibc.close(fd)
        return nil
    }

    /// Whether something accepts connections on 127.0.0.1:`port`.
    public static func accepts(port: Int) -> Bool {
        guard let fd = connect(port: port) else { return false }
        Glibc.close(fd)
        return true
    }

    /// Waits up to `timeout` for a client to connect; nil if none did.
    public func accept(timeout: Duration = .seconds(10)) -> LoopbackConnection? {
        var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout.components.seconds * 1_000 + timeout.components.attoseconds / 1_000_000_000_000_000)) == 1 else {
            return nil
        }
        let fd = Glibc.accept(listener, nil, nil)
        return fd >= 0 ? LoopbackConnection(fd: fd) : nil
    }

    /// Stops listening: connecting to the port is refused from now on.
    public func close() {
        shutdown(listener, Int32(SHUT_RDWR))
    }
}

/// One accepted connection of a ``LoopbackServer``.
public final class LoopbackConnection: Sendable {
    private let fd: Mutex<Int32?>

    init(fd: Int32) { self.fd = Mutex(fd) }

    deinit { close() }

    /// Writes `text` (UTF-8).
    /// - Throws: ``TestServerError`` when the peer is gone.
    public func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    /// Writes `bytes`.
    /// - Throws: ``TestServerError`` when the peer is gone.
    public func send(_ bytes: [UInt8]) throws {
        try fd.withLock { fd in
            guard let fd else { throw TestServerError("the connection is closed") }
            var sent = 0
            while sent < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw TestServerError("send: \(String(cString: strerror(errno)))")
                }
                sent += n
            }
        }
    }

    /// Resets the connection (an RST, as a crashed peer's kernel sends): the client's next read fails.
    public func reset() {
        fd.withLock { fd in
            guard let open = fd else { return }
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(open, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            Glibc.close(open)
            fd = nil
        }
    }

    /// Stops sending (a half-close: the client reads the end of the data; this side could still read).
    public func shutdownWrite() {
        fd.withLock { fd in if let open = fd { _ = shutdown(open, Int32(SHUT_WR)) } }
    }

    /// Closes the connection (the client reads the end of the data).
    public func close() {
        fd.withLock { fd in
            if let open = fd { Glibc.close(open) }
            fd = nil
        }
    }
}

/// A test server could not do what it was asked.
public struct TestServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
