import Logging

/// Where in Sluice a message comes from: each layer logs through a swift-log `Logger` labelled
/// `sluice.<layer>`, so a program that bootstraps its own handler (`LoggingSystem.bootstrap`) gets Sluice's
/// messages there; without one, swift-log writes them to standard error.
public enum LogLayer: String, Sendable, CaseIterable {
    /// The context: start, stop, settings.
    case context
    /// Checkpoints: writing, recovering.
    case checkpoint
    /// Receivers and their supervisors.
    case receiver
    /// The receivers' write-ahead log.
    case wal
    /// Input streams (file streams).
    case stream
    /// Listeners and the event log.
    case listener
    /// The monitoring page's server.
    case ui
    /// The Kafka client (librdkafka's own messages).
    case kafka

    /// The logger label (`sluice.context`, ...).
    public var label: String { "sluice.\(rawValue)" }
}

/// A context's loggers, at the level `sluice.log.level` sets.
struct Loggers: Sendable {
    let level: Logger.Level
    private let loggers: [LogLayer: Logger]

    init(level: Logger.Level) {
        self.level = level
        var loggers: [LogLayer: Logger] = [:]
        for layer in LogLayer.allCases {
            var logger = Logger(label: layer.label)
            logger.logLevel = level
            loggers[layer] = logger
        }
        self.loggers = loggers
    }

    subscript(layer: LogLayer) -> Logger { loggers[layer] ?? Logger(label: layer.label) }
}
