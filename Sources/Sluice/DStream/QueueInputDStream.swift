import DequeModule
import Synchronization

/// A queue of RDDs for ``StreamingContext/queueStream(_:oneAtATime:defaultRDD:)``: each RDD enqueued becomes
/// a batch of the stream (for testing a program with prepared data).
public final class RDDQueue<T: Sendable>: Sendable {
    private let queue = Mutex(Deque<RDD<T>>())

    /// An empty queue.
    public init() {}

    /// Adds an RDD at the end.
    public func enqueue(_ rdd: RDD<T>) { queue.withLock { $0.append(rdd) } }

    /// The number of RDDs waiting.
    public var count: Int { queue.withLock { $0.count } }

    func dequeueOne() -> RDD<T>? { queue.withLock { $0.popFirst() } }

    func dequeueAll() -> [RDD<T>] { queue.withLock { q in defer { q.removeAll() }; return q.elements } }
}

/// Batches from an ``RDDQueue`` (Spark's `QueueInputDStream`): each batch takes the next RDD (or, with
/// `oneAtATime` false, all of them, as one union); an empty queue gives `defaultRDD`, or an empty RDD.
final class QueueInputDStream<T: Sendable>: InputDStream<T>, @unchecked Sendable {
    let queue: RDDQueue<T>
    let oneAtATime: Bool
    let defaultRDD: RDD<T>?

    init(context: StreamingContext, queue: RDDQueue<T>, oneAtATime: Bool, defaultRDD: RDD<T>?) {
        self.queue = queue
        self.oneAtATime = oneAtATime
        self.defaultRDD = defaultRDD
        super.init(context: context, name: "queueStream")
    }

    override func compute(_ time: Time) throws -> RDD<T>? {
        let taken = oneAtATime ? queue.dequeueOne().map { [$0] } ?? [] : queue.dequeueAll()
        if let first = taken.first { return taken.dropFirst().reduce(first) { $0.union($1) } }
        return defaultRDD ?? context.engine.emptyRDD(of: T.self)
    }
}
