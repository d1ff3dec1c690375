import FoundationEssentials

/// What the monitoring page, its JSON API and `/metrics` read: a running context, or a finished run read back
/// from its event log (`streambench --history`).
public struct MonitoringSource: Sendable {
    /// The batches, receivers and totals, in Spark's REST model.
    public let status: StreamingStatus
    /// Whether the run is over.
    let completed: @Sendable () -> Bool
    /// The Prometheus text (nil: a run read back from its event log has no live metrics).
    let metrics: @Sendable () -> String?
    /// Sluice's additions (nil: not recorded in an event log).
    let engine: @Sendable () -> EngineStatus?

    init(
        status: StreamingStatus, completed: @escaping @Sendable () -> Bool, metrics: @escaping @Sendable () -> String?,
        engine: @escaping @Sendable () -> EngineStatus?
    ) {
        self.status = status
        self.completed = completed
        self.metrics = metrics
        self.engine = engine
    }

    /// A running context's.
    public init(context: StreamingContext) {
        self.init(
            status: context.status, completed: { [weak context] in context?.state != .active },
            metrics: { [weak context] in context?.prometheusMetrics() },
            engine: { [weak context] in context?.engineStatus })
    }

    /// A finished run's, from the events ``EventLog/read(directory:calls:)`` gave back, keeping the last
    /// `spark.streaming.ui.retainedBatches` of `conf` completed batches.
    /// - Throws: ``ConfigurationError`` for a bad setting.
    public static func history(events: [StreamingEvent], conf: StreamingConf = StreamingConf()) throws -> MonitoringSource {
        try conf.validate()
        return history(events: events, retainedBatches: try conf.int("spark.streaming.ui.retainedBatches") ?? 1_000)
    }

    static func history(events: [StreamingEvent], retainedBatches: Int) -> MonitoringSource {
        let status = StreamingStatus(batchDuration: .milliseconds(batchDuration(of: events)), retainedBatches: retainedBatches)
        for event in events { event.deliver(to: status) }
        return MonitoringSource(status: status, completed: { true }, metrics: { nil }, engine: { nil })
    }

    /// The batch interval the run recorded at its start; in logs without it, the smallest gap between batches.
    private static func batchDuration(of events: [StreamingEvent]) -> Int64 {
        var times: [Int64] = []
        for event in events {
            switch event {
            case .streamingStarted(let started): if let ms = started.batchDuration { return ms }
            case .batchSubmitted(let batch): times.append(batch.batchTime.milliseconds)
            default: break
            }
        }
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }.filter { $0 > 0 }
        return gaps.min() ?? 1_000
    }
}

/// One response of the monitoring server.
struct MonitoringResponse: Sendable, Equatable {
    var status: Int
    var contentType: String
    var body: [UInt8]
    /// Where a redirect (status 302) points.
    var location: String?

    static func text(_ status: Int, _ text: String) -> MonitoringResponse {
        MonitoringResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
    }
}

/// The monitoring server's routes, as a function of a request's method and target (no network here):
/// - `/streaming/` (the Streaming page) and `/streaming/batch/?id=<batchId>` (a batch's page), with their
///   script and style sheet under `/static/`;
/// - `/api/v1/applications[/{appId}]` and `/api/v1/applications/{appId}/streaming/{statistics, receivers,
///   receivers/{streamId}, batches[?status=], batches/{batchId}, batches/{batchId}/operations}` in Spark's
///   shape, plus Sluice's `streaming/sluice` and `streaming/batches/{batchId}/inputs`
///   (`docs/monitoring-api.yaml` describes them all);
/// - `/metrics`, Prometheus's text format.
struct MonitoringRoutes: Sendable {
    let source: MonitoringSource

    func respond(method: String, target: String) -> MonitoringResponse {
        guard method == "GET" || method == "HEAD" else { return .text(405, "only GET and HEAD are served\n") }
        let (path, query) = split(target)
        let parts = path.split(separator: "/").map(String.init)
        switch parts.first {
        case nil:
            return MonitoringResponse(status: 302, contentType: "text/plain", body: [], location: "/streaming/")
        case "streaming" where parts.count == 1:
            return html(StreamingPage.streaming(appName: appName))
        case "streaming" where parts == ["streaming", "batch"]:
            return html(StreamingPage.batch(appName: appName))
        case "static" where parts.count == 2:
            return StreamingPage.asset(parts[1]).map {
                MonitoringResponse(status: 200, contentType: $0.contentType, body: Array($0.text.utf8))
            } ?? .text(404, "no such file: \(path)\n")
        case "metrics" where parts.count == 1:
            guard let metrics = source.metrics() else {
                return .text(404, "no metrics: this run was read back from its event log\n")
            }
            return MonitoringResponse(
                status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: Array(metrics.utf8))
        case "api" where parts.count >= 3 && parts[1] == "v1" && parts[2] == "applications":
            return api(Array(parts.dropFirst(3)), query: query)
        default:
            return .text(404, "no such page: \(path)\n")
        }
    }

    private var appName: String { source.status.application(completed: false).name }

    private func api(_ parts: [String], query: [String: String]) -> MonitoringResponse {
        let application = source.status.application(completed: source.completed())
        guard let appId = parts.first else { return json([application]) }
        guard appId == application.id else { return .text(404, "unknown app: \(appId)\n") }
        let rest = Array(parts.dropFirst())
        if rest.isEmpty { return json(application) }
        guard rest.first == "streaming", rest.count >= 2 else { return .text(404, "no such resource\n") }
        let status = source.status
        switch (rest[1], rest.count) {
        case ("statistics", 2):
            return json(status.statistics())
        case ("sluice", 2):
            guard let engine = source.engine() else { return .text(404, "no engine figures for this run\n") }
            return json(engine)
        case ("receivers", 2):
            return json(status.receivers())
        case ("receivers", 3):
            guard let id = Int(rest[2]) else { return .text(400, "the stream id '\(rest[2])' is not a number\n") }
            return status.receiver(streamId: id).map(json) ?? .text(404, "unknown receiver: \(id)\n")
        case ("batches", 2):
            var batches = status.batches()
            if let wanted = query["status"] {
                let statuses = wanted.split(separator: ",").map { $0.uppercased() }
                let known = ["QUEUED", "PROCESSING", "COMPLETED"]
                if let bad = statuses.first(where: { !known.contains($0) }) {
                    return .text(400, "unknown batch status '\(bad)': use one of \(known.joined(separator: ", "))\n")
                }
                batches = batches.filter { statuses.contains($0.status) }
            }
            return json(batches)
        case ("batches", 3), ("batches", 4):
            guard let id = Int64(rest[2]) else { return .text(400, "the batch id '\(rest[2])' is not a number\n") }
            if rest.count == 3 { return status.batch(id: id).map(json) ?? .text(404, "unknown batch: \(id)\n") }
            switch rest[3] {
            case "operations": return status.operations(batchId: id).map(json) ?? .text(404, "unknown batch: \(id)\n")
            case "inputs": return status.inputs(batchId: id).map(json) ?? .text(404, "unknown batch: \(id)\n")
            default: return .text(404, "no such resource\n")
            }
        default:
            return .text(404, "no such resource\n")
        }
    }

    private func json(_ value: some Encodable) -> MonitoringResponse {
        let encoder = EventLog.encoder()
        encoder.outputFormatting.insert(.prettyPrinted)
        do {
            return MonitoringResponse(
                status: 200, contentType: "application/json", body: Array(try encoder.encode(value)))
        } catch {
            return .text(500, "could not encode the response: \(error)\n")
        }
    }

    private func html(_ page: String) -> MonitoringResponse {
        MonitoringResponse(status: 200, contentType: "text/html; charset=utf-8", body: Array(page.utf8))
    }

    /// The path, percent-decoded, and the query's parameters.
    private func split(_ target: String) -> (String, [String: String]) {
        guard let components = URLComponents(string: target) else { return (target, [:]) }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
        return (components.path, query)
    }
}
