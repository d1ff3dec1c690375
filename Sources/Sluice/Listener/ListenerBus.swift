import DequeModule
import Glibc
import SluiceExecution
import Synchronization

/// An event for the listeners (what ``EventLog`` writes and reads back, one per line).
public enum StreamingEvent: Sendable, Equatable {
    case streamingStarted(StreamingStarted)
    case receiverStarted(ReceiverInfo)
    case receiverError(ReceiverInfo)
    case receiverStopped(ReceiverInfo)
    case batchSubmitted(BatchInfo)
    case batchStarted(BatchInfo)
    case batchCompleted(BatchInfo)
    case outputOperationStarted(OutputOperationInfo)
    case outputOperationCompleted(OutputOperationInfo)

    /// Calls the listener's method for this event.
    public func deliver(to listener: any StreamingListener) {
        switch self {
        case .streamingStarted(let e): listener.onStreamingStarted(e)
        case .receiverStarted(let e): listener.onReceiverStarted(e)
        case .receiverError(let e): listener.onReceiverError(e)
        case .receiverStopped(let e): listener.onReceiverStopped(e)
        case .batchSubmitted(let e): listener.onBatchSubmitted(e)
        case .batchStarted(let e): listener.onBatchStarted(e)
        case .batchCompleted(let e): listener.onBatchCompleted(e)
        case .outputOperationStarted(let e): listener.onOutputOperationStarted(e)
        case .outputOperationCompleted(let e): listener.onOutputOperationCompleted(e)
        }
    }
}

/// Delivers events to the listeners, in order, on a thread of its own, from a bounded queue: a slow listener
/// delays events, never the context; events arriving at a full queue are dropped and counted (as Spark's bus
/// does).
final class ListenerBus: Sendable {
    private struct State {
        var queue = Deque<StreamingEvent>()
        var listeners: [any StreamingListener] = []
        var started = false
        var stopping = false
        var delivering = false
        var dropped = 0
    }

    let capacity: Int
    private let state = Mutex(State())
    private let wake = PthreadCondition()
    private let thread = Mutex<JoinableThread?>(nil)

    init(capacity: Int) {
        self.capacity = capacity
    }

    func add(_ listener: any StreamingListener) {
        state.withLock { $0.listeners.append(listener) }
    }

    /// Events dropped because the queue was full.
    var droppedEvents: Int { state.withLock { $0.dropped } }

    func post(_ event: StreamingEvent) {
        let posted = state.withLock { s -> Bool in
            // With no listener there is nobody to deliver to (a listener added later sees later events only).
            guard !s.stopping, !s.listeners.isEmpty else { return false }
            guard s.queue.count < capacity else {
                s.dropped += 1
                return false
            }
            s.queue.append(event)
            return true
        }
        if posted { wake.locked { wake.signal() } }
    }

    /// Starts the delivery thread.
    func start() throws {
        state.withLock { $0.started = true }
        let started = try JoinableThread(name: "listener") { [self] in run() }
        thread.withLock { $0 = started }
    }

    private func run() {
        while true {
            let next = wake.locked { () -> (StreamingEvent, [any StreamingListener])? in
                while true {
                    let taken = state.withLock { s -> (StreamingEvent, [any StreamingListener])?? in
                        if let event = s.queue.popFirst() {
                            s.delivering = true
                            return .some((event, s.listeners))
                        }
                        s.delivering = false
                        return s.stopping ? .some(nil) : nil
                    }
                    if let taken { return taken }
                    wake.wait()
                }
            }
            guard let (event, listeners) = next else { return }
            for listener in listeners { event.deliver(to: listener) }
            wake.locked { wake.broadcast() }  // wakes waitUntilEmpty
        }
    }

    /// Blocks until every posted event was delivered, or `timeoutMilliseconds` passed; true if empty.
    @discardableResult
    func waitUntilEmpty(timeoutMilliseconds: Int = 10_000) -> Bool {
        let deadline = monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        return wake.locked {
            while true {
                if state.withLock({ $0.queue.isEmpty && !$0.delivering }) { return true }
                let now = monotonicNanoseconds()
                if now >= deadline { return false }
                wake.wait(nanoseconds: Int(min(deadline - now, 10_000_000)))
            }
        }
    }

    /// Delivers what is queued, then stops the thread and waits for it.
    func stop() {
        state.withLock { $0.stopping = true }
        wake.locked { wake.broadcast() }
        thread.withLock { t in defer { t = nil }; return t }?.join()
    }
}

extension StreamingEvent: Codable {
    private enum CodingKeys: String, CodingKey { case event, started, receiver, batch, outputOperation }

    /// The event's name in the log (`batchCompleted`, ...).
    public var name: String {
        switch self {
        case .streamingStarted: "streamingStarted"
        case .receiverStarted: "receiverStarted"
        case .receiverError: "receiverError"
        case .receiverStopped: "receiverStopped"
        case .batchSubmitted: "batchSubmitted"
        case .batchStarted: "batchStarted"
        case .batchCompleted: "batchCompleted"
        case .outputOperationStarted: "outputOperationStarted"
        case .outputOperationCompleted: "outputOperationCompleted"
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .event)
        switch self {
        case .streamingStarted(let e): try c.encode(e, forKey: .started)
        case .receiverStarted(let r), .receiverError(let r), .receiverStopped(let r): try c.encode(r, forKey: .receiver)
        case .batchSubmitted(let b), .batchStarted(let b), .batchCompleted(let b): try c.encode(b, forKey: .batch)
        case .outputOperationStarted(let o), .outputOperationCompleted(let o): try c.encode(o, forKey: .outputOperation)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .event)
        switch name {
        case "streamingStarted": self = .streamingStarted(try c.decode(StreamingStarted.self, forKey: .started))
        case "receiverStarted": self = .receiverStarted(try c.decode(ReceiverInfo.self, forKey: .receiver))
        case "receiverError": self = .receiverError(try c.decode(ReceiverInfo.self, forKey: .receiver))
        case "receiverStopped": self = .receiverStopped(try c.decode(ReceiverInfo.self, forKey: .receiver))
        case "batchSubmitted": self = .batchSubmitted(try c.decode(BatchInfo.self, forKey: .batch))
        case "batchStarted": self = .batchStarted(try c.decode(BatchInfo.self, forKey: .batch))
        case "batchCompleted": self = .batchCompleted(try c.decode(BatchInfo.self, forKey: .batch))
        case "outputOperationStarted":
            self = .outputOperationStarted(try c.decode(OutputOperationInfo.self, forKey: .outputOperation))
        case "outputOperationCompleted":
            self = .outputOperationCompleted(try c.decode(OutputOperationInfo.self, forKey: .outputOperation))
        default:
            throw DecodingError.dataCorruptedError(forKey: .event, in: c, debugDescription: "unknown event '\(name)'")
        }
    }
}
