import Logging
import SluiceTesting
import Synchronization
import Testing

@testable import Sluice

/// What every logger of the test process wrote, with its label (a program's own handler, as
/// `LoggingSystem.bootstrap` installs one).
final class CapturedLogs: Sendable {
    struct Entry: Sendable {
        var label: String
        var level: Logger.Level
        var message: String
    }

    static let shared: CapturedLogs = {
        let logs = CapturedLogs()
        LoggingSystem.bootstrap { label in Handler(label: label, logs: logs) }
        return logs
    }()

    let entries = Mutex<[Entry]>([])

    func matching(_ text: String) -> [Entry] { entries.withLock { $0.filter { $0.message.contains(text) } } }

    struct Handler: LogHandler {
        let label: String
        let logs: CapturedLogs
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            logs.entries.withLock { $0.append(Entry(label: label, level: event.level, message: "\(event.message)")) }
        }
    }
}

@Suite struct LoggingTests {
    /// Sluice's messages go through swift-log, labelled by layer, to the handler the program bootstrapped.
    @Test func messagesGoThroughTheProgramsHandlerLabelledByLayer() throws {
        let logs = CapturedLogs.shared
        _ = try StreamingContext(
            conf: StreamingConf().setMaster("local[1]").set("spark.streaming.blockIntervalll", "1s"),
            batchDuration: .seconds(1))
        let entries = logs.matching("spark.streaming.blockIntervalll")
        #expect(entries.count == 1)
        #expect(entries.first?.label == "sluice.context" && entries.first?.level == .warning)
    }

    /// `sluice.log.level` is the least severe level passed on.
    @Test func theLevelKeyFiltersMessages() throws {
        let logs = CapturedLogs.shared
        _ = try StreamingContext(
            conf: StreamingConf().setMaster("local[1]").set("sluice.log.level", "error")
                .set("spark.streaming.receiverRestartDelayy", "1s"),
            batchDuration: .seconds(1))
        #expect(logs.matching("spark.streaming.receiverRestartDelayy").isEmpty, "a warning under level error")
        #expect(throws: ConfigurationError.self) {
            _ = try StreamingContext(conf: StreamingConf().set("sluice.log.level", "loud"), batchDuration: .seconds(1))
        }
    }
}
