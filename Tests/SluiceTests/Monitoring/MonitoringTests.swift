import Foundation
import Glibc
import SluiceColumnar
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// The repository's root (for `docs/` and `Tests/Scripts/`), from this file's path.
let repositoryRoot: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(4)  // Tests/SluiceTests/Monitoring/MonitoringTests.swift
    return parts.joined(separator: "/")
}()

/// Runs a script of `Tests/Scripts` with python3; its exit status and output.
func runScript(_ name: String, _ arguments: [String], in directory: TemporaryDirectory, timeout: Duration = .seconds(120))
    throws -> (status: Int32?, log: String)
{
    let log = "\(directory.path)/\(name).log"
    let child = try ChildProcess("/usr/bin/python3", ["\(repositoryRoot)/Tests/Scripts/\(name)"] + arguments, logPath: log)
    let status = child.wait(timeout: timeout)
    if status == nil { child.killAndWait() }
    return (status, String(decoding: (try? SystemCalls.live.readFile(log)) ?? [], as: UTF8.self))
}

/// A JSON file a script wrote.
func readJSON(_ path: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(try SystemCalls.live.readFile(path))) as? [String: Any] ?? [:]
}

/// The job the monitoring tests watch, on the wall clock: a receiver (generated numbers), a window over it, and
/// an output operation that fails in its third batch; backpressure on, so that batches carry rate limits and PID
/// terms. The page listens on any free port.
func monitoredJob(appName: String, conf extra: [String: String] = [:]) throws -> StreamingContext {
    var conf = StreamingConf().setMaster("local[3]").setAppName(appName).set("spark.ui.port", "0")
        .set("spark.streaming.backpressure.enabled", "true")
    for (key, value) in extra { conf = conf.set(key, value) }
    let ssc = try StreamingContext(conf: conf, batchDuration: .milliseconds(200))
    let numbers = ssc.generatedIntStream(ratePerSecond: 5_000, distinctValues: 100)
    numbers.window(windowDuration: .milliseconds(600)).count().foreachRDD { _ in }
    let outputs = Atomic<Int>(0)
    numbers.foreachRDD { rdd in
        if outputs.add(1, ordering: .relaxed).newValue == 3 { throw Boom(value: 3) }
        _ = try rdd.count()
        usleep(3_000)  // every batch takes a few ms: the PID estimator skips batches processed in 0 ms
    }
    return ssc
}

/// Waits until the context completed `count` batches (within 30 s).
func waitForCompletedBatches(_ ssc: StreamingContext, _ count: Int64) {
    eventually(seconds: 30) { ssc.status.statistics().numTotalCompletedBatches >= count }
}

@Suite(.serialized) struct MonitoringTests {
    /// Every JSON response of a job with a receiver, a window and a failed batch matches docs/monitoring-api.yaml
    /// (checked by jsonschema), and /metrics parses with prometheus_client and agrees with the listeners.
    @Test func theAPIMatchesItsOpenAPIDocumentAndMetricsAgreeWithTheListeners() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-api")
        defer { directory.remove() }
        let (result, completedAfter) = try StreamTest.exclusively { () -> (Any, Int64) in
            let ssc = try monitoredJob(appName: "api test")
            try ssc.start()
            defer { ssc.stop() }
            waitForCompletedBatches(ssc, 6)
            // Until a kept batch carries the PID estimator's terms (from its second batch with data on).
            eventually(seconds: 30) {
                ssc.status.batches().contains { ssc.status.inputs(batchId: $0.batchId)?.first?.pidTerms != nil }
            }
            let url = try #require(ssc.uiWebURL)
            let output = "\(directory.path)/api.json"
            let run = try runScript("check_api.py", [url, "\(repositoryRoot)/docs/monitoring-api.yaml", output], in: directory)
            #expect(run.status == 0, "check_api.py: \(run.log)")
            return (try readJSON(output), ssc.status.statistics().numTotalCompletedBatches)
        }
        let report = try #require(result as? [String: Any])
        let errors = report["errors"] as? [String] ?? ["no report"]
        #expect(errors.isEmpty, "\(errors.joined(separator: "\n"))")
        let checked = report["checked"] as? [String] ?? []
        #expect(checked.count >= 20, "\(checked)")
        let responses = report["responses"] as? [String: Any] ?? [:]
        let batches = responses.first { $0.key.hasSuffix("/streaming/batches") }?.value as? [[String: Any]] ?? []
        let failed = batches.filter { ($0["numFailedOutputOps"] as? Int) == 1 }
        #expect(failed.count == 1, "the failed batch is listed once")
        #expect((failed.first?["firstFailureReason"] as? String)?.contains("Boom") == true)
        let inputs = responses.filter { $0.key.hasSuffix("/inputs") }.compactMap { ($0.value as? [[String: Any]])?.first }
        #expect(inputs.contains { $0["pidTerms"] != nil && $0["rateLimit"] != nil }, "PID terms and rate limits are shown")
        let receivers = responses.first { $0.key.hasSuffix("/streaming/receivers") }?.value as? [[String: Any]] ?? []
        #expect(receivers.count == 1 && receivers.first?["isActive"] as? Bool == true)
        let statistics = responses.first { $0.key.hasSuffix("/statistics") }?.value as? [String: Any] ?? [:]
        let completedBefore = statistics["numTotalCompletedBatches"] as? Int ?? -1

        // The metrics were read after the statistics and before the job stopped.
        let metrics = prometheusSamples(report["metrics"] as? [[Any]] ?? [])
        func value(_ name: String) -> Double? { metrics.first { $0.name == name && $0.labels.isEmpty }?.value }
        let completed = try #require(value("sluice_batches_completed_total"))
        #expect(completed >= Double(completedBefore) && completed <= Double(completedAfter))
        #expect(value("sluice_batches_failed_total") == 1)
        #expect(value("sluice_batch_processing_seconds_count") == completed)
        #expect(metrics.contains { $0.name == "sluice_input_records_per_second" && $0.labels["stream"] == "0" })
        #expect(metrics.allSatisfy { $0.name.hasPrefix("sluice_") })
    }

    /// The Streaming page in headless Chromium: it loads with no console error, its timelines show the running
    /// job's batches and grow while it runs, a batch's page opens from the table, and a hostile app name shows
    /// as text. Screenshots go to .build/test-artifacts/monitoring.
    @Test func theStreamingPageShowsTheRunningJobInABrowser() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-page")
        defer { directory.remove() }
        let hostile = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\"> & 'co'"
        let screenshots = "\(repositoryRoot)/.build/test-artifacts/monitoring"
        let seen = try StreamTest.exclusively { () -> [String: Any] in
            let ssc = try monitoredJob(appName: hostile)
            try ssc.start()
            defer { ssc.stop() }
            waitForCompletedBatches(ssc, 4)
            let url = try #require(ssc.uiWebURL)
            let output = "\(directory.path)/page.json"
            let run = try runScript("check_page.py", [url, screenshots, output], in: directory)
            #expect(run.status == 0, "check_page.py (needs chromium, chromium-driver, python3-selenium: scripts/setup.sh): \(run.log)")
            return try readJSON(output)
        }
        let console = seen["console"] as? [[String: Any]] ?? []
        let severe = console.filter { ($0["level"] as? String) == "SEVERE" || ($0["level"] as? String) == "WARNING" }
        #expect(severe.isEmpty, "console: \(severe)")
        #expect(seen["appName"] as? String == hostile, "the app name shows as the text it is")
        #expect((seen["title"] as? String)?.hasPrefix(hostile) == true)
        #expect(seen["injected"] is NSNull, "nothing from the app name ran")
        #expect(seen["scripts"] as? Int == 2, "no script element came from the app name")
        let charts = seen["charts"] as? [String: [String: Int]] ?? [:]
        #expect(charts.keys.sorted() == ["timeline-input-rate", "timeline-processing-time", "timeline-scheduling-delay", "timeline-total-delay"])
        for (id, chart) in charts {
            #expect((chart["points"] ?? 0) >= 2 && chart["circles"] == chart["points"], "\(id): \(chart)")
        }
        #expect((seen["histogramBars"] as? Int ?? 0) == 10)
        let first = seen["firstPoints"] as? Int ?? 0
        #expect((seen["laterPoints"] as? Int ?? 0) > first, "the timelines grew while the job ran")
        #expect((seen["laterRows"] as? Int ?? 0) >= (seen["laterPoints"] as? Int ?? 0))
        #expect((seen["receivers"] as? [String])?.first?.contains("ACTIVE") == true)
        #expect((seen["engine"] as? String)?.contains("Memory budget used") == true)
        #expect((seen["failedRows"] as? [String])?.count == 1, "the failed batch is marked in the table")
        #expect((seen["batchUrl"] as? String)?.contains("/streaming/batch/?id=") == true)
        #expect((seen["batchTitle"] as? String)?.hasPrefix("Details of batch at") == true)
        #expect((seen["operations"] as? [String])?.count == 2, "both output operations are listed")
        #expect((seen["inputs"] as? [String])?.count == 1, "the receiver's input is listed")
        for file in ["streaming-page.png", "batch-page.png"] {
            #expect(access("\(screenshots)/\(file)", R_OK) == 0, "screenshot \(file) saved")
        }
    }

    /// A port already taken: the next free one is used, as Spark does; with no retries left, a warning naming the
    /// port, and the job runs without its page.
    @Test func aTakenPortMovesToTheNextOrWarnsAndTheJobRuns() throws {
        let logs = CapturedLogs.shared
        let taken = try LoopbackServer()  // holds the port the page asks for
        try StreamTest.exclusively {
            let ssc = try monitoredJob(appName: "port test", conf: ["spark.ui.port": "\(taken.port)"])
            try ssc.start()
            defer { ssc.stop() }
            let url = try #require(ssc.uiWebURL)
            let port = Int(url.split(separator: ":").last ?? "") ?? 0
            #expect(port > taken.port && port <= taken.port + 16, "\(url) after \(taken.port)")
        }
        try StreamTest.exclusively {
            let ssc = try monitoredJob(
                appName: "port test", conf: ["spark.ui.port": "\(taken.port)", "spark.port.maxRetries": "0"])
            try ssc.start()
            defer { ssc.stop() }
            #expect(ssc.uiWebURL == nil)
            waitForCompletedBatches(ssc, 2)
            #expect(ssc.status.statistics().numTotalCompletedBatches >= 2, "the job runs")
            let warnings = logs.matching("cannot listen on 127.0.0.1, port \(taken.port)")
            #expect(warnings.contains { $0.level == .warning && $0.label == "sluice.ui" && $0.message.contains("all taken") })
        }
    }

    /// A host that is not an address of this machine: a warning naming it; the job runs.
    @Test func aBadHostIsAWarningAndTheJobRuns() throws {
        let logs = CapturedLogs.shared
        try StreamTest.exclusively {
            let ssc = try monitoredJob(appName: "host test", conf: ["sluice.ui.host": "192.0.2.1"])
            try ssc.start()
            defer { ssc.stop() }
            #expect(ssc.uiWebURL == nil)
            waitForCompletedBatches(ssc, 2)
            #expect(ssc.status.statistics().numTotalCompletedBatches >= 2, "the job runs")
            #expect(logs.matching("cannot listen on 192.0.2.1").contains {
                $0.level == .warning && $0.message.contains("sluice.ui.host")
            })
        }
    }

    /// The server starts with the context and stops with it; with spark.ui.enabled false there is none.
    @Test func theServerLivesAsLongAsTheContext() throws {
        let port = try StreamTest.exclusively { () -> Int in
            let ssc = try monitoredJob(appName: "life test")
            #expect(ssc.uiWebURL == nil, "no page before start()")
            try ssc.start()
            let url = try #require(ssc.uiWebURL)
            let port = Int(url.split(separator: ":").last ?? "") ?? 0
            #expect(LoopbackServer.accepts(port: port))
            ssc.stop()
            #expect(ssc.uiWebURL == nil)
            return port
        }
        #expect(!LoopbackServer.accepts(port: port), "the port is closed after stop()")
        try StreamTest.exclusively {
            let ssc = try monitoredJob(appName: "off", conf: ["spark.ui.enabled": "false"])
            try ssc.start()
            defer { ssc.stop() }
            #expect(ssc.uiWebURL == nil)
        }
    }

    /// A finished run's page from its event log (`streambench --history`): the same statistics and batches as
    /// the live run's, every response matching the document.
    @Test func aFinishedRunIsServedFromItsEventLog() throws {
        let directory = try TemporaryDirectory(prefix: "sluice-history")
        defer { directory.remove() }
        let (live, liveBatches, logDirectory) = try StreamTest.exclusively { () -> (SparkStreamingStatistics, [SparkBatch], String?) in
            let ssc = try monitoredJob(
                appName: "history test",
                conf: ["spark.eventLog.enabled": "true", "spark.eventLog.dir": directory.path, "spark.ui.enabled": "false"])
            try ssc.start()
            waitForCompletedBatches(ssc, 5)
            ssc.stop(gracefully: true)
            ssc.waitForListeners()
            return (ssc.status.statistics(), ssc.status.batches(), ssc.eventLogDirectory)
        }
        let source = try MonitoringSource.history(events: try EventLog.read(directory: try #require(logDirectory)))
        #expect(source.status.statistics() == live)
        #expect(source.status.batches() == liveBatches)
        #expect(source.status.application(completed: true).name == "history test")
        let server = try MonitoringServer.start(source: source, port: 0)
        defer { server.stop() }
        let output = "\(directory.path)/api.json"
        let run = try runScript(
            "check_api.py", [server.url, "\(repositoryRoot)/docs/monitoring-api.yaml", output, "history"], in: directory)
        #expect(run.status == 0, "check_api.py: \(run.log)")
        let errors = try readJSON(output)["errors"] as? [String] ?? ["no report"]
        #expect(errors.isEmpty, "\(errors.joined(separator: "\n"))")
    }

    /// The routes alone: Spark's answers for unknown ids, methods other than GET, the page's escaping.
    @Test func routesAnswerBadRequestsClearly() throws {
        let status = StreamingStatus(batchDuration: .seconds(1), retainedBatches: 10)
        status.onStreamingStarted(StreamingStarted(time: 1_000, appId: "local-1", appName: "a<b>&\"c\"", batchDuration: 1_000))
        let routes = MonitoringRoutes(
            source: MonitoringSource(status: status, completed: { false }, metrics: { nil }, engine: { nil }))
        func answer(_ target: String, method: String = "GET") -> (Int, String) {
            let response = routes.respond(method: method, target: target)
            return (response.status, String(decoding: response.body, as: UTF8.self))
        }
        #expect(answer("/api/v1/applications/local-2/streaming/statistics") == (404, "unknown app: local-2\n"))
        #expect(answer("/api/v1/applications/local-1/streaming/batches/abc").0 == 400)
        #expect(answer("/api/v1/applications/local-1/streaming/batches/5000").0 == 404)
        #expect(answer("/api/v1/applications/local-1/streaming/batches?status=DONE").1.contains("unknown batch status 'DONE'"))
        #expect(answer("/api/v1/applications/local-1/streaming/receivers/x").0 == 400)
        #expect(answer("/api/v1/applications", method: "POST").0 == 405)
        #expect(answer("/metrics").0 == 404)
        #expect(answer("/static/../../etc/passwd").0 == 404)
        #expect(routes.respond(method: "GET", target: "/").location == "/streaming/")
        let page = answer("/streaming/")
        #expect(page.0 == 200 && page.1.contains("a&lt;b&gt;&amp;&quot;c&quot;") && !page.1.contains("a<b>"))
        #expect(answer("/streaming/batch/?id=5").0 == 200)
        #expect(answer("/static/streaming.js").0 == 200)
    }
}
