import SluiceColumnar
import SluiceExecution
import Synchronization

/// A node of the stream graph, untyped: what the graph and the job generator need of every stream.
@usableFromInline
protocol GraphNode: AnyObject, Sendable {
    var id: Int { get }
    var name: String { get }
    var slideDuration: Duration { get }
    var parents: [any GraphNode] { get }
    /// Sets `zeroTime` here and in every parent.
    func initialize(zeroTime: Time)
    /// Makes the stream keep its RDDs for at least `duration` (and its parents as long as it needs them).
    func remember(_ duration: Duration)
    /// Checks the stream's settings once its graph is complete; throws a clear error otherwise.
    func validateAtStart() throws
    /// Drops RDDs older than the remember duration, here and in every parent.
    func clearMetadata(_ time: Time)
    /// The longest duration a parent of this stream must remember (windows need their window's worth).
    var parentRememberDuration: Duration { get }
    /// Settings that shape the stream's saved data (a window's length), for checkpoints' graph
    /// description.
    var checkpointDetail: String { get }
}

/// A stream whose RDDs are consumed by an output operation: one job per batch.
protocol OutputNode: GraphNode {
    /// The job for batch `time`, or nil when the stream has no RDD at that time.
    func generateJob(_ time: Time) throws -> StreamingJob?
}

/// A discretized stream (Spark's DStream): a sequence of RDDs, one per batch time at which the stream is
/// valid (every `slideDuration` after the context's zero time). Transformations make new streams; output
/// operations (`print`, `foreachRDD`, `saveAsTextFiles`, ...) make the context run jobs.
///
/// Streams are built before the context starts; one built after `start()` is an error reported through
/// ``StreamingContext/awaitTermination()`` (Spark throws there; Swift operators do not throw).
public class DStream<Element: Sendable>: @unchecked Sendable, GraphNode {
    // @unchecked Sendable: the mutable state (`meta`, `generated`) is behind locks.

    /// The context the stream belongs to.
    public let context: StreamingContext
    @usableFromInline
    let id: Int
    @usableFromInline
    let name: String
    /// How often the stream has an RDD: its parents' slide (or the batch interval for inputs).
    public let slideDuration: Duration
    @usableFromInline
    let parents: [any GraphNode]

    struct Meta {
        var zeroTime: Time?
        var rememberDuration: Duration?
        var storageLevel: StorageLevel = .none
        var checkpointInterval: Duration?
        /// Set when the stream's remembered RDDs are read again later (a window's batches), each first read
        /// within this duration of its time: they keep their own partitions (at a level that uses disk) and let
        /// go of their parents', which need be remembered only that long.
        var keepsDataReadWithin: Duration?
    }

    let meta = Mutex(Meta())
    private let generated = Mutex<[Time: RDD<Element>]>([:])

    /// A stream named `name`, sliding every `slideDuration`, computed from `parents`.
    init(context: StreamingContext, name: String, slideDuration: Duration, parents: [any GraphNode]) {
        self.context = context
        self.id = context.makeStreamId()
        self.name = name
        self.slideDuration = slideDuration
        self.parents = parents
        context.checkCanAddStreams(name)
    }

    /// A stream computed from one parent, sliding as it does.
    init<P>(parent: DStream<P>, name: String) {
        self.context = parent.context
        self.id = context.makeStreamId()
        self.name = name
        self.slideDuration = parent.slideDuration
        self.parents = [parent]
        context.checkCanAddStreams(name)
    }

    /// The stream's RDD at `time`: computed by the subclass. Nil when the stream has no data at that time.
    func compute(_ time: Time) throws -> RDD<Element>? { nil }

    /// Whether the stream keeps state between batches, so that it needs a checkpoint directory (Spark's
    /// `mustCheckpoint`).
    var mustCheckpoint: Bool { false }

    @usableFromInline
    var checkpointDetail: String { "" }

    // MARK: Time rules

    var zeroTime: Time? { meta.withLock { $0.zeroTime } }

    /// Whether the stream has an RDD at `time`: after zeroTime, on its slide grid.
    func isTimeValid(_ time: Time) throws -> Bool {
        guard let zero = zeroTime else {
            throw StreamingError(.illegalState, "\(name) stream \(id) has not been initialized: start the context first")
        }
        return time > zero && (time - zero).isMultiple(of: slideDuration)
    }

    /// The RDD at `time`: the one generated before, or a new one (persisted at the stream's storage level and
    /// kept until it is older than the remember duration). Nil at an invalid time or when there is no data.
    @usableFromInline
    func getOrCompute(_ time: Time) throws -> RDD<Element>? {
        if let existing = generated.withLock({ $0[time] }) { return existing }
        guard try isTimeValid(time) else { return nil }
        guard var rdd = try compute(time) else { return nil }
        let (level, keeps) = meta.withLock { ($0.storageLevel, $0.keepsDataReadWithin != nil) }
        if level != .none { rdd = rdd.persist(level, releasingLineage: keeps, category: memoryCategory(keeps: keeps)) }
        return generated.withLock { generated in
            if let raced = generated[time] { return raced }
            generated[time] = rdd
            return rdd
        }
    }

    /// Makes `rdd` the stream's RDD at `time` (restored from a checkpoint), persisted at the stream's level.
    func restoreRDD(_ rdd: RDD<Element>, at time: Time) {
        let (level, keeps) = meta.withLock { ($0.storageLevel, $0.keepsDataReadWithin != nil) }
        let kept = level == .none ? rdd : rdd.persist(level, releasingLineage: false, category: memoryCategory(keeps: keeps))
        generated.withLock { $0[time] = kept }
    }

    /// What the stream's persisted RDDs count as in memory reports: state, a window's batches, or a cache.
    private func memoryCategory(keeps: Bool) -> MemoryCategory {
        if self is any StatefulNode { return .state }
        return keeps ? .window : .cache
    }

    /// The times this stream has RDDs for now (for tests and monitoring).
    var generatedTimes: [Time] { generated.withLock { $0.keys.sorted() } }

    // MARK: GraphNode

    @usableFromInline
    func initialize(zeroTime: Time) {
        let already = meta.withLock { meta -> Bool in
            if meta.zeroTime != nil { return true }
            meta.zeroTime = zeroTime
            var minimum = slideDuration
            if let checkpoint = meta.checkpointInterval, minimum <= checkpoint { minimum = checkpoint * 2 }
            if meta.rememberDuration.map({ $0 < minimum }) ?? true { meta.rememberDuration = minimum }
            return false
        }
        if !already { for parent in parents { parent.initialize(zeroTime: zeroTime) } }
    }

    @usableFromInline
    func remember(_ duration: Duration) {
        meta.withLock { meta in
            if meta.rememberDuration.map({ duration > $0 }) ?? true { meta.rememberDuration = duration }
        }
        let forParents = parentRememberDuration
        for parent in parents { parent.remember(forParents) }
    }

    @usableFromInline
    var parentRememberDuration: Duration {
        meta.withLock { meta in
            // A stream whose RDDs keep their own data needs its parents only until each RDD is first computed.
            if let within = meta.keepsDataReadWithin, meta.storageLevel.useDisk { return max(slideDuration, within) }
            return meta.rememberDuration ?? slideDuration
        }
    }

    /// Marks the stream's RDDs as read again later, each first read within `readWithin` of its time (see
    /// `Meta.keepsDataReadWithin`), persisted at `level`.
    func keepData(at level: StorageLevel, readWithin: Duration) {
        meta.withLock { meta in
            meta.storageLevel = level
            meta.keepsDataReadWithin = max(meta.keepsDataReadWithin ?? .zero, readWithin)
        }
    }

    var rememberDuration: Duration? { meta.withLock { $0.rememberDuration } }

    @usableFromInline
    func validateAtStart() throws {
        if mustCheckpoint { try context.checkCheckpointDirectory(for: "\(name) stream \(id)") }
        let (level, checkpoint) = meta.withLock { ($0.storageLevel, $0.checkpointInterval) }
        if let checkpoint {
            guard checkpoint >= slideDuration, checkpoint.isMultiple(of: slideDuration) else {
                throw StreamingError(
                    .invalidGraph,
                    "the checkpoint interval of \(name) stream \(id) (\(checkpoint.sparkDescription)) must be a "
                        + "multiple of its slide duration (\(slideDuration.sparkDescription))")
            }
            guard level != .none else {
                throw StreamingError(.invalidGraph, "\(name) stream \(id) is checkpointed but its storage level is NONE")
            }
        }
        for parent in parents { try parent.validateAtStart() }
    }

    @usableFromInline
    func clearMetadata(_ time: Time) {
        let remember = rememberDuration ?? slideDuration
        let cutoff = time - remember
        let old = generated.withLock { generated -> [RDD<Element>] in
            let expired = generated.filter { $0.key <= cutoff }
            for key in expired.keys { generated[key] = nil }
            return Array(expired.values)
        }
        // Only RDDs this stream persisted: a stream may hand on a parent's RDD as its own (a window of one batch),
        // which the parent still remembers.
        if context.unpersistOldRDDs && storageLevel != .none { for rdd in old { rdd.unpersist() } }
        for parent in parents { parent.clearMetadata(time) }
    }

    /// Drops every generated RDD (when the context stops).
    func clearAll() {
        let all = generated.withLock { g in defer { g = [:] }; return Array(g.values) }
        for rdd in all { rdd.unpersist() }
    }

    // MARK: Persistence

    /// Keeps every RDD the stream generates at `level` until it is older than the remember duration.
    @discardableResult
    public func persist(_ level: StorageLevel) -> Self {
        meta.withLock { $0.storageLevel = level }
        return self
    }

    /// Persists at `.memoryOnlySer` (Spark's DStream default).
    @discardableResult
    public func persist() -> Self { persist(.memoryOnlySer) }

    /// Persists at `.memoryOnlySer` (Spark's DStream default).
    @discardableResult
    public func cache() -> Self { persist() }

    /// The storage level of the stream's RDDs.
    public var storageLevel: StorageLevel { meta.withLock { $0.storageLevel } }

    /// Checkpoints the stream every `interval` (a multiple of the slide duration, checked at `start()`); like
    /// Spark, this also persists its RDDs (at `.memoryOnlySer` unless a level was set) and remembers them for at
    /// least twice the interval. On a stream that keeps data between batches (state, windows, a file stream)
    /// it replaces Spark's default interval; the context checkpoints at the shortest interval such streams ask
    /// for (or every `sluice.checkpoint.interval`).
    @discardableResult
    public func checkpoint(_ interval: Duration) -> Self {
        meta.withLock { meta in
            meta.checkpointInterval = interval
            if meta.storageLevel == .none { meta.storageLevel = .memoryOnlySer }
        }
        return self
    }

    /// The checkpoint interval, if set.
    public var checkpointInterval: Duration? { meta.withLock { $0.checkpointInterval } }

    // MARK: Slices

    /// The RDDs of every valid time in `[from, to]`, both ends aligned down to the slide grid (Spark's
    /// `slice`). Computes the RDDs not generated yet.
    /// - Throws: ``StreamingError`` before the context started, or when an RDD cannot be computed.
    public func slice(from: Time, to: Time) throws -> [RDD<Element>] {
        guard let zero = zeroTime else {
            throw StreamingError(.illegalState, "slice of \(name) stream \(id): the context has not been started")
        }
        let slide = slideDuration.wholeMilliseconds
        func alignDown(_ t: Time) -> Time {
            let offset = t.milliseconds - zero.milliseconds
            let aligned = offset >= 0 ? offset / slide * slide : -((-offset + slide - 1) / slide) * slide
            return Time(milliseconds: zero.milliseconds + aligned)
        }
        var rdds: [RDD<Element>] = []
        var time = alignDown(from)
        let last = alignDown(to)
        while time <= last {
            if let rdd = try getOrCompute(time) { rdds.append(rdd) }
            time = time + slideDuration
        }
        return rdds
    }
}
