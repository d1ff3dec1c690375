import DequeModule
import SluiceExecution
import Synchronization

/// One partition of `mapWithState`'s state: each key's state and when it was last updated, and the keys
/// waiting to time out, bucketed by the time at which they would (a timer index: a batch visits only the
/// buckets that expire, never the whole state).
struct MapWithStateStore<K: Hashable & Sendable, S: Sendable>: Sendable {
    struct Entry: Sendable {
        var state: S
        var updated: Time
    }

    var entries: [K: Entry] = [:]
    /// Keys by `updated + timeout`; an entry may be stale (the key was touched since), so it is checked.
    var timers: [Time: [K]] = [:]
    /// The bucket times, increasing.
    var timerTimes = Deque<Time>()

    mutating func arm(_ key: K, at time: Time) {
        if timers[time] == nil {
            timerTimes.append(time)
            timers[time] = []
        }
        timers[time]!.append(key)  // Safe: the bucket was made just above if missing.
    }
}

/// The state machine of `mapWithState`, shared by the mapped stream and its state snapshots: per batch and
/// partition, the function runs once per record in order, then for each key whose idle timeout expired at that
/// batch (found through the timer index, in the batch in which it expires, with or without input, where Spark
/// finds them only on checkpoint batches).
final class MapWithStateCore<K: Hashable & Sendable, V: Sendable, S: Sendable, Mapped: Sendable>: @unchecked Sendable {
    let parent: DStream<(K, V)>
    let spec: StateSpec<K, V, S, Mapped>
    let partitioner: HashPartitioner
    let timeline: StateTimeline<MapWithStateStore<K, S>, [Mapped]>
    private let recording = Mutex(())

    init(parent: DStream<(K, V)>, spec: StateSpec<K, V, S, Mapped>) {
        self.parent = parent
        self.spec = spec
        let n = spec.partitionCount ?? parent.context.engine.defaultParallelism
        self.partitioner = HashPartitioner(numPartitions: n)
        self.timeline = StateTimeline(
            name: "mapWithState", partitions: n, slide: parent.slideDuration, empty: MapWithStateStore())
    }

    /// Records the batches up to `time`, from the parent's zero time.
    func record(through time: Time, zero: Time) throws {
        try recording.withLock { _ in
            var next = timeline.lastRecorded.map { $0 + parent.slideDuration } ?? zero + parent.slideDuration
            while next <= time {
                try recordStep(next, first: timeline.lastRecorded == nil)
                next = next + parent.slideDuration
            }
        }
    }

    private func recordStep(_ time: Time, first: Bool) throws {
        let n = partitioner.numPartitions
        let records = try parent.getOrCompute(time)?.partitionBy(n)
        let initial = first ? spec.initialStateRDD?.partitionBy(n) : nil
        let (function, timeout) = (spec.function, spec.idleTimeout)
        var lineage = records?.stages ?? Lineage()
        if let initial { lineage = lineage.merged(with: initial.stages) }
        timeline.record(StateStep(time: time, lineage: lineage) { p, store in
            if let initial {
                try initial.computePartition(p) { chunk in
                    for (key, state) in chunk {
                        store.entries[key] = .init(state: state, updated: time)
                        if let timeout { store.arm(key, at: time + timeout) }
                    }
                }
            }
            var mapped: [Mapped] = []
            let state = State<S>()
            try records?.computePartition(p) { chunk in
                for (key, value) in chunk {
                    let entry = store.entries[key]
                    state.reset(entry?.state, timingOut: false)
                    if let output = try function(time, key, value, state) { mapped.append(output) }
                    if state.removed {
                        store.entries[key] = nil
                    } else if state.updated, let newState = state.value {
                        store.entries[key] = .init(state: newState, updated: time)
                        if let timeout { store.arm(key, at: time + timeout) }
                    } else if entry != nil, let timeout {
                        store.entries[key]?.updated = time  // a record refreshes the idle clock
                        store.arm(key, at: time + timeout)
                    }
                }
            }
            // Keys idle past the timeout: updated before time - timeout, i.e. a bucket time before `time`.
            if let timeout {
                while let due = store.timerTimes.first, due < time {
                    store.timerTimes.removeFirst()
                    for key in store.timers.removeValue(forKey: due) ?? [] {
                        guard let entry = store.entries[key], entry.updated + timeout == due else { continue }
                        state.reset(entry.state, timingOut: true)
                        if let output = try function(time, key, nil, state) { mapped.append(output) }
                        store.entries[key] = nil
                    }
                }
            }
            return mapped
        })
    }

    func readMapped(_ p: Int, at time: Time, into sink: (UnsafeBufferPointer<Mapped>) throws -> Void) throws {
        try timeline.read(partition: p, at: time) { _, mapped in
            try mapped.withUnsafeBufferPointer { try emitChunks($0, to: sink) }
        }
    }

    func readState(_ p: Int, at time: Time, into sink: (UnsafeBufferPointer<(K, S)>) throws -> Void) throws {
        try timeline.read(partition: p, at: time) { store, _ in
            var out = ChunkBuffer<(K, S)>()
            for (key, entry) in store.entries {
                out.append((key, entry.state))
                if out.isFull { try out.flush(to: sink) }
            }
            try out.flush(to: sink)
        }
    }
}

/// The stream `mapWithState` returns (Spark's `MapWithStateDStream`): the values the mapping function
/// returned in each batch (nil returns dropped); ``stateSnapshots()`` is every key's state after each batch.
/// Needs a checkpoint directory, as in Spark.
public final class MapWithStateDStream<K: Hashable & Sendable, V: Sendable, S: Sendable, Mapped: Sendable>:
    DStream<Mapped>, @unchecked Sendable
{
    let core: MapWithStateCore<K, V, S, Mapped>

    init(parent: DStream<(K, V)>, spec: StateSpec<K, V, S, Mapped>) {
        core = MapWithStateCore(parent: parent, spec: spec)
        super.init(parent: parent, name: "mapWithState")
    }

    override func compute(_ time: Time) throws -> RDD<Mapped>? {
        guard let zero = zeroTime else { return nil }
        try core.record(through: time, zero: zero)
        let core = self.core
        return RDD.custom(
            engine: context.engine, numPartitions: core.partitioner.numPartitions,
            lineage: core.timeline.lineage(through: time)
        ) { p, sink in try core.readMapped(p, at: time, into: sink) }
    }

    /// Every key's state after each batch.
    public func stateSnapshots() -> DStream<(K, S)> {
        StateSnapshotDStream(source: self)
    }

    override var mustCheckpoint: Bool { true }

    override func remember(_ duration: Duration) {
        core.timeline.keepStates(for: duration)
        super.remember(duration)
    }

    override func clearMetadata(_ time: Time) {
        core.timeline.prune(before: time - max(rememberDuration ?? slideDuration, slideDuration))
        super.clearMetadata(time)
    }
}

/// The state snapshots of a ``MapWithStateDStream``: every (key, state) after each batch.
final class StateSnapshotDStream<K: Hashable & Sendable, V: Sendable, S: Sendable, Mapped: Sendable>:
    DStream<(K, S)>, @unchecked Sendable
{
    let source: MapWithStateDStream<K, V, S, Mapped>

    init(source: MapWithStateDStream<K, V, S, Mapped>) {
        self.source = source
        super.init(parent: source, name: "stateSnapshots")
    }

    override func compute(_ time: Time) throws -> RDD<(K, S)>? {
        guard let zero = zeroTime else { return nil }
        let core = source.core
        try core.record(through: time, zero: zero)
        return RDD.custom(
            engine: context.engine, numPartitions: core.partitioner.numPartitions, partitioner: core.partitioner,
            lineage: core.timeline.lineage(through: time)
        ) { p, sink in try core.readState(p, at: time, into: sink) }
    }

    override func remember(_ duration: Duration) {
        source.core.timeline.keepStates(for: duration)
        super.remember(duration)
    }
}
