import FoundationEssentials
import Glibc
import SluiceColumnar
import Synchronization

/// The event log (`spark.eventLog.enabled`): every listener event of a run as one JSON line, in
/// `<spark.eventLog.dir>/<run>/events-NNNNNN.jsonl`, a new file past `spark.eventLog.rolling.maxFileSize`.
/// ``read(directory:)`` gives a run's events back after the program ended.
///
/// Writing never fails a job: a directory that cannot be made, or a disk that fills, stops the log with one
/// message on standard error naming the path, and the program carries on.
public enum EventLog {
    /// The name of file `index` of a run (in order when sorted).
    static func fileName(_ index: Int) -> String {
        let digits = String(index)
        return "events-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".jsonl"
    }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return decoder
    }

    /// The events of the run logged in `directory` (one run's directory), in the order they happened. A last
    /// line cut short (the program was killed while writing it) is left out.
    /// - Throws: ``StreamingError`` (`checkpointFailed`) naming the file and line of an event that cannot be
    ///   read, or the directory when it holds no event log.
    public static func read(directory: String, calls: SystemCalls = .live) throws -> [StreamingEvent] {
        let files = (directoryNames(directory) ?? [])
            .filter { $0.hasPrefix("events-") && $0.hasSuffix(".jsonl") }.sorted()
        guard !files.isEmpty else {
            throw StreamingError(.checkpointFailed, "no event log in '\(directory)' (no events-*.jsonl file)")
        }
        let decoder = decoder()
        var events: [StreamingEvent] = []
        for (index, name) in files.enumerated() {
            let path = "\(directory)/\(name)"
            let bytes = try calls.readFile(path)
            var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            // The file ends with a newline; anything after the last one is a line the program did not finish.
            let torn = lines.removeLast()
            if !torn.isEmpty && index != files.count - 1 {
                throw StreamingError(.checkpointFailed, "event log '\(path)' ends inside a line, and a later file follows")
            }
            for (number, line) in lines.enumerated() where !line.isEmpty {
                do {
                    events.append(try decoder.decode(StreamingEvent.self, from: Data(line)))
                } catch {
                    throw StreamingError(
                        .checkpointFailed, "event log '\(path)' line \(number + 1) is not an event", underlying: error)
                }
            }
        }
        return events
    }
}

/// Writes a context's events to its event log, on the listener bus's thread.
final class EventLogWriter: StreamingListener {
    private struct Output: ~Copyable {
        var sink: FileSink
        var index: Int
    }

    private struct State: ~Copyable {
        var output: Output?
        var failed = false
    }

    /// The run's directory.
    let directory: String
    private let maxFileBytes: Int
    private let calls: SystemCalls
    private let log: @Sendable (String) -> Void
    private let state: Mutex<State>
    private let encoder = Mutex(EventLog.encoder())

    /// Makes the run's directory under `parent` (named after the app and the start time) and opens its first
    /// file; `log` gets the one message a failure gives.
    /// - Throws: ``StreamingError`` naming the directory or file that cannot be made.
    init(parent: String, appName: String, maxFileBytes: Int, calls: SystemCalls, log: @escaping @Sendable (String) -> Void) throws {
        var base = parent
        if base.hasPrefix("file://") { base.removeFirst(7) } else if base.hasPrefix("file:") { base.removeFirst(5) }
        let name = appName.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }
        directory = "\(base)/\(String(name))-\(wallClockMilliseconds())-\(getpid())"
        self.maxFileBytes = max(1, maxFileBytes)
        self.calls = calls
        self.log = log
        do {
            try calls.makeDirectories(directory)
            let sink = try FileSink(creating: "\(directory)/\(EventLog.fileName(1))", calls: calls)
            state = Mutex(State(output: Output(sink: sink, index: 1)))
        } catch {
            throw StreamingError(.outputFailed, "cannot start the event log in '\(directory)'", underlying: error)
        }
    }

    private func write(_ event: StreamingEvent) {
        guard let line = try? encoder.withLock({ try $0.encode(event) }) + [UInt8(ascii: "\n")] else { return }
        let failure = state.withLock { state -> String? in
            guard !state.failed, var output = state.output.take() else { return nil }
            do {
                if output.sink.offset > 0 && output.sink.offset + line.count > maxFileBytes {
                    let next = output.index + 1
                    output = Output(
                        sink: try FileSink(creating: "\(directory)/\(EventLog.fileName(next))", calls: calls), index: next)
                }
                try line.withUnsafeBytes { try output.sink.write($0) }
                state.output = consume output
                return nil
            } catch {
                state.failed = true
                return "event log in '\(directory)' stopped (the job carries on): \(error)"
            }
        }
        if let failure { log(failure) }
    }

    func onStreamingStarted(_ event: StreamingStarted) { write(.streamingStarted(event)) }
    func onReceiverStarted(_ receiver: ReceiverInfo) { write(.receiverStarted(receiver)) }
    func onReceiverError(_ receiver: ReceiverInfo) { write(.receiverError(receiver)) }
    func onReceiverStopped(_ receiver: ReceiverInfo) { write(.receiverStopped(receiver)) }
    func onBatchSubmitted(_ batch: BatchInfo) { write(.batchSubmitted(batch)) }
    func onBatchStarted(_ batch: BatchInfo) { write(.batchStarted(batch)) }
    func onBatchCompleted(_ batch: BatchInfo) { write(.batchCompleted(batch)) }
    func onOutputOperationStarted(_ operation: OutputOperationInfo) { write(.outputOperationStarted(operation)) }
    func onOutputOperationCompleted(_ operation: OutputOperationInfo) { write(.outputOperationCompleted(operation)) }
}
