import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import SluiceExecution

/// The monitoring page's HTTP server (swift-nio), on one event-loop thread of its own: never on the compute
/// pool, so a busy job cannot stall the page and the page cannot slow a batch beyond that thread's share.
public final class MonitoringServer: Sendable {
    /// The page's address: `http://<host>:<port>`.
    public let url: String
    /// The port it listens on (the next free one after the one asked for, when that was taken).
    public let port: Int
    private let channel: any Channel
    private let group: MultiThreadedEventLoopGroup

    private init(url: String, port: Int, channel: any Channel, group: MultiThreadedEventLoopGroup) {
        self.url = url
        self.port = port
        self.channel = channel
        self.group = group
    }

    /// Serves `source` where `conf` says: `sluice.ui.host` (127.0.0.1), `spark.ui.port` (4040; 0: any free port)
    /// and up to `spark.port.maxRetries` (16) ports after it.
    /// - Throws: ``ConfigurationError`` for a bad setting; otherwise as ``start(source:host:port:maxRetries:)``.
    public static func start(source: MonitoringSource, conf: StreamingConf) throws -> MonitoringServer {
        try conf.validate()
        return try start(
            source: source, host: conf.get("sluice.ui.host") ?? "127.0.0.1", port: try conf.int("spark.ui.port") ?? 4040,
            maxRetries: try conf.int("spark.port.maxRetries") ?? 16)
    }

    /// Serves `source` on `host`:`port`; a port taken is followed by the next, up to `maxRetries` more (Spark's
    /// rule for `spark.ui.port`); port 0 takes any free port.
    /// - Throws: ``StreamingError`` (`invalidArgument`) naming the host and the ports tried when none can be
    ///   bound (the host is not an address of this machine, every port is taken, the name does not resolve).
    public static func start(
        source: MonitoringSource, host: String = "127.0.0.1", port: Int = 4040, maxRetries: Int = 16
    ) throws -> MonitoringServer {
        let routes = MonitoringRoutes(source: source)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MonitoringHandler(routes: routes))
                }
            }
        var candidate = port
        while true {
            do {
                let channel = try bootstrap.bind(host: host, port: candidate).wait()
                let bound = channel.localAddress?.port ?? candidate
                let shown = host.contains(":") ? "[\(host)]" : host
                return MonitoringServer(url: "http://\(shown):\(bound)", port: bound, channel: channel, group: group)
            } catch let error as IOError where error.errnoCode == EADDRINUSE && port != 0
                && candidate - port < maxRetries && candidate < 65_535
            {
                candidate += 1
            } catch {
                try? group.syncShutdownGracefully()
                let ports = candidate == port ? "port \(port)" : "ports \(port)-\(candidate)"
                let hint =
                    (error as? IOError)?.errnoCode == EADDRINUSE
                    ? " (all taken; set spark.ui.port to a free port, or 0 for any)"
                    : " (sluice.ui.host must be an address of this machine, such as 127.0.0.1)"
                throw StreamingError(
                    .invalidArgument, "the monitoring page cannot listen on \(host), \(ports)\(hint)", underlying: error)
            }
        }
    }

    /// Closes the listening socket and every connection, and ends the server's thread.
    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// Answers each request on a connection with ``MonitoringRoutes``.
private final class MonitoringHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: MonitoringRoutes
    private var head: HTTPRequestHead?

    init(routes: MonitoringRoutes) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            respond(to: request, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let response = routes.respond(method: request.method.rawValue, target: request.uri)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        // Scripts only from this server's own files: text from the program can never run as a script.
        headers.add(name: "Content-Security-Policy", value: "default-src 'self'; img-src 'self' data:")
        if let location = response.location { headers.add(name: "Location", value: location) }
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(
            version: request.version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
