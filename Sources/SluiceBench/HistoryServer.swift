import Glibc
import Sluice

/// `streambench --history DIR`: serves the Streaming page of a finished run from its event log until SIGINT or
/// SIGTERM, with `--conf`'s `spark.ui.port`, `sluice.ui.host` and `spark.streaming.ui.retainedBatches`.
struct HistoryServer {
    let directory: String
    let conf: StreamingConf

    func run() throws {
        let events = try EventLog.read(directory: directory)
        let source = try MonitoringSource.history(events: events, conf: conf)
        // The signals are taken by sigwait below: blocked first, so that the server's thread inherits the mask.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        let server = try MonitoringServer.start(source: source, conf: conf)
        let statistics = source.status.statistics()
        print(
            "Sluice history: \(events.count) events, \(statistics.numTotalCompletedBatches) completed batches from "
                + "'\(directory)'\nStreaming page: \(server.url)/streaming/ (Ctrl-C to stop)")
        fflush(nil)
        var received: Int32 = 0
        sigwait(&signals, &received)
        server.stop()
    }
}
