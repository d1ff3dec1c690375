import HeapModule
import SluiceColumnar
import SluiceExecution

/// One partition of `mapWithState`'s state: each key's state and when it was last updated (a ``StateTable``),
/// and the timer index: keys bucketed by a time at or before which they could time out. A batch visits only
/// the buckets that came due, never the whole state.
///
/// A key waits in one bucket however often it is touched: a touch only moves `updated`, and when the key's
/// bucket comes due a key touched since moves on to the bucket of its new expiry instead of timing out (lazy
/// re-arming, as timer wheels do). A key removed and added again gains a second entry; copies that meet in a
/// bucket merge, so a key never waits in more buckets than the timeout spans batches (the bound of arming on
/// every touch), and a key that is not re-added waits in exactly one. Nothing is stored per key for this, so
/// the table's slots stay 32 bytes for `Int` keys and states.
@usableFromInline
struct MapWithStateStore<K: Hashable & Sendable, S: Sendable>: Sendable {
    @usableFromInline
    struct Entry: Sendable {
        @usableFromInline var state: S
        @usableFromInline var updated: Time

        @inlinable init(state: S, updated: Time) {
            self.state = state
            self.updated = updated
        }
    }

    @usableFromInline var entries = StateTable<K, Entry>()
    /// Keys by the bucket time they wait for.
    @usableFromInline var timers: [Time: [K]] = [:]
    /// The bucket times, earliest first.
    @usableFromInline var timerTimes = Heap<Time>()

    @inlinable init() {}

    /// Puts `keys` in the bucket of `time` (one bucket lookup for many keys).
    @inlinable
    mutating func arm(_ keys: [K], at time: Time) {
        guard !keys.isEmpty else { return }
        if timers[time] == nil {
            timerTimes.insert(time)
            timers[time] = keys
        } else {
            timers[time]!.append(contentsOf: keys)  // Safe: the bucket exists (checked just above).
        }
    }

    /// Arms every key at its last update plus `timeout`: the timer index of a state restored from a checkpoint.
    @inlinable
    mutating func armEveryKey(timeout: Duration) {
        var expiries: [Time: [K]] = [:]
        entries.forEach { key, entry in expiries[entry.updated + timeout, default: []].append(key) }
        for (expiry, keys) in expiries { arm(keys, at: expiry) }
    }

    /// Removes and returns the keys of the earliest bucket if it is due before `time`.
    @inlinable
    mutating func takeBucket(dueBefore time: Time) -> [K]? {
        guard let due = timerTimes.min, due < time else { return nil }
        _ = timerTimes.removeMin()
        return timers.removeValue(forKey: due) ?? []
    }
}

/// The per-record work of `mapWithState`, built where the operator is called so that it is specialized for
/// the program's types.
@usableFromInline
struct MapWithStateKernel<K: Hashable & Sendable, V: Sendable, S: Sendable, Mapped: Sendable>: Sendable {
    @usableFromInline typealias Store = MapWithStateStore<K, S>
    /// Runs the function for each record of a chunk, in order.
    let records: @Sendable (UnsafeBufferPointer<(K, V)>, inout Store, State<S>, Time, inout [Mapped]) throws -> Void
    /// Runs the function for each key whose timeout expired by the time given.
    let timeouts: @Sendable (inout Store, State<S>, Time, inout [Mapped]) throws -> Void
    /// Loads initial state.
    let load: @Sendable (UnsafeBufferPointer<(K, S)>, inout Store, Time) -> Void
    /// Emits every (key, state).
    let snapshot: @Sendable (Store, (UnsafeBufferPointer<(K, S)>) throws -> Void) throws -> Void
    /// Moves records, and initial state, to the state's partitions.
    let partitionRecords: @Sendable (RDD<(K, V)>, Int) -> RDD<(K, V)>
    let partitionStates: @Sendable (RDD<(K, S)>, Int) -> RDD<(K, S)>
    /// A partition's keys with their state and last update in checkpoints (the timer index rebuilt from the
    /// update times and the timeout).
    let checkpoint: StateCoding<K, S, Store>

    @usableFromInline
    init(
        records: @escaping @Sendable (UnsafeBufferPointer<(K, V)>, inout Store, State<S>, Time, inout [Mapped]) throws -> Void,
        timeouts: @escaping @Sendable (inout Store, State<S>, Time, inout [Mapped]) throws -> Void,
        load: @escaping @Sendable (UnsafeBufferPointer<(K, S)>, inout Store, Time) -> Void,
        snapshot: @escaping @Sendable (Store, (UnsafeBufferPointer<(K, S)>) throws -> Void) throws -> Void,
        partitionRecords: @escaping @Sendable (RDD<(K, V)>, Int) -> RDD<(K, V)>,
        partitionStates: @escaping @Sendable (RDD<(K, S)>, Int) -> RDD<(K, S)>,
        checkpoint: StateCoding<K, S, Store>
    ) {
        self.records = records
        self.timeouts = timeouts
        self.load = load
        self.snapshot = snapshot
        self.partitionRecords = partitionRecords
        self.partitionStates = partitionStates
        self.checkpoint = checkpoint
    }

    /// Records looked up together in a table past the last-level cache (see ``runRecords``).
    @inlinable static var lookupRun: Int { 32 }

    /// Runs the function (`call`) for each record of a chunk, in order, and updates the store.
    @inlinable @inline(__always)
    static func runRecords(
        _ chunk: UnsafeBufferPointer<(K, V)>, _ store: inout Store, _ state: State<S>, _ time: Time,
        _ mapped: inout [Mapped], _ timeout: Duration?, _ call: (Time, K, V?, State<S>) throws -> Mapped?
    ) throws {
        // Hashes first, so that each record's slot can be prefetched a few records ahead: in a state far
        // larger than the cache the lookups' misses then overlap instead of following one another. In a state
        // the cache holds, a prefetch is only work (a tenth of the 1k-key benchmark's kernel samples).
        let hashes = [Int](unsafeUninitializedCapacity: chunk.count) { hashes, initialized in
            for i in chunk.indices { hashes.initializeElement(at: i, to: stateHash(chunk[i].0)) }
            initialized = chunk.count
        }
        let (prefetching, ahead) = (store.entries.outgrowsCache, 16)
        if prefetching { for i in chunk.indices.prefix(ahead) { store.entries.prefetch(hash: hashes[i]) } }
        var armed: [K] = []
        if timeout != nil { armed.reserveCapacity(chunk.count) }
        // Once per chunk: found slots then change in place (an insert or removal checks again).
        store.entries.makeUnique()
        // The chunk's outputs are written to a buffer of their own and appended at once: an array's append checks
        // its uniqueness and capacity on every output. Safe: at most one output a record, chunk.count in all.
        let outputs = UnsafeMutablePointer<Mapped>.allocate(capacity: chunk.count)
        var produced = 0
        defer {
            mapped.append(contentsOf: UnsafeBufferPointer(start: outputs, count: produced))
            outputs.deinitialize(count: produced)
            outputs.deallocate()
        }
        /// Runs the function for record i, whose key was found in `slot` (or would go there), and changes the
        /// store; whether the table changed shape (an insert or a removal moves keys).
        @inline(__always)
        func apply(_ i: Int, _ found: Bool, _ slot: Int) throws -> Bool {
            let (key, value) = chunk[i]
            state.reset(found ? store.entries.value(at: slot).state : nil, timingOut: false)
            if let output = try call(time, key, value, state) {
                (outputs + produced).initialize(to: output)
                produced &+= 1
            }
            if state.removed {
                if found {
                    store.entries.remove(at: slot)
                    return true
                }
            } else if state.updated, let newState = state.value {
                if found {
                    store.entries.modifyUniqueValue(at: slot) { entry in
                        entry.state = newState
                        entry.updated = time
                    }
                } else {
                    store.entries.insert(key, .init(state: newState, updated: time), at: slot)
                    if timeout != nil { armed.append(key) }
                    return true
                }
            } else if found, timeout != nil {
                store.entries.modifyUniqueValue(at: slot) { $0.updated = time }  // a record refreshes the idle clock
            }
            return false
        }
        if store.entries.outgrowsLastLevelCache {
            // A table past the last-level cache: the slots of a run of records are looked up first, then the function
            // runs for them. The lookup loop, with no call in it, keeps several misses in flight where a prefetch came
            // too late; across the function's call each one stalled the loop (42% of the kernel's samples sat on a
            // prefetch). The 10M-key batch's extra over the 100k-key one went from 0.96-1.06 ms to 0.77-0.86 ms, the C
            // floor's 0.65-0.72 ms, in 4 alternated rounds; tables the cache holds keep the loop below, as the runs
            // cost them (a 100k-key batch 1.25 -> 1.35 ms). A located slot holds until the table changes shape; after
            // that the run's records are looked up again.
            let located = UnsafeMutablePointer<Int>.allocate(capacity: lookupRun)  // a slot found, or ~slot
            defer { located.deallocate() }
            var runStart = 0
            while runStart < chunk.count {
                let runEnd = min(runStart &+ lookupRun, chunk.count)
                for j in runStart..<runEnd {
                    if j &+ ahead < chunk.count { store.entries.prefetch(hash: hashes[j &+ ahead]) }
                    let (found, slot) = store.entries.find(chunk[j].0, hash: hashes[j])
                    located[j &- runStart] = found ? slot : ~slot
                }
                var shapeKept = true
                for i in runStart..<runEnd {
                    let (found, slot): (Bool, Int)
                    if shapeKept {
                        let place = located[i &- runStart]
                        (found, slot) = place >= 0 ? (true, place) : (false, ~place)
                    } else {
                        (found, slot) = store.entries.find(chunk[i].0, hash: hashes[i])
                    }
                    if try apply(i, found, slot) { shapeKept = false }
                }
                runStart = runEnd
            }
        } else {
            for i in chunk.indices {
                if prefetching && i &+ ahead < chunk.count { store.entries.prefetch(hash: hashes[i &+ ahead]) }
                let (found, slot) = store.entries.find(chunk[i].0, hash: hashes[i])
                _ = try apply(i, found, slot)
            }
        }
        if let timeout { store.arm(armed, at: time + timeout) }
    }

    /// The kernel of `spec`.
    @inlinable
    static func make(_ spec: StateSpec<K, V, S, Mapped>) -> MapWithStateKernel {
        let (function, form, timeout) = (spec.function, spec.form, spec.idleTimeout)
        return MapWithStateKernel(
            records: { chunk, store, state, time, mapped in
                // The program's function called directly, whichever form it has (one call a record).
                switch form {
                case .keyed(let f):
                    try runRecords(chunk, &store, state, time, &mapped, timeout) { _, key, value, state in
                        try f(key, value, state)
                    }
                case .timed(let f):
                    try runRecords(chunk, &store, state, time, &mapped, timeout, f)
                }
            },
            timeouts: { store, state, time, mapped in
                // Keys idle past the timeout: updated before time - timeout. A key in a due bucket that was touched
                // since it was put there moves on to the bucket of its new expiry.
                guard let timeout else { return }
                while let keys = store.takeBucket(dueBefore: time) {
                    var moved = Set<K>()
                    for key in keys {
                        let (found, slot) = store.entries.find(key)
                        guard found else { continue }  // removed since
                        let entry = store.entries.value(at: slot)
                        let expiry = entry.updated + timeout
                        if expiry < time {
                            state.reset(entry.state, timingOut: true)
                            if let output = try function(time, key, nil, state) { mapped.append(output) }
                            store.entries.remove(at: slot)
                        } else {
                            moved.insert(key)  // a second copy of the key in this bucket merges here
                        }
                    }
                    var later: [Time: [K]] = [:]
                    for key in moved {
                        guard let entry = store.entries[key] else { continue }
                        later[entry.updated + timeout, default: []].append(key)
                    }
                    for (expiry, keys) in later { store.arm(keys, at: expiry) }
                }
            },
            load: { chunk, store, time in
                var armed: [K] = []
                for (key, state) in chunk {
                    let (found, slot) = store.entries.find(key)
                    if found {
                        store.entries.setValue(.init(state: state, updated: time), at: slot)  // the key came twice
                    } else {
                        store.entries.insert(key, .init(state: state, updated: time), at: slot)
                        armed.append(key)
                    }
                }
                if let timeout { store.arm(armed, at: time + timeout) }
            },
            snapshot: { store, sink in
                var out = ChunkBuffer<(K, S)>()
                try store.entries.forEach { key, entry in
                    out.append((key, entry.state))
                    if out.isFull { try out.flush(to: sink) }
                }
                try out.flush(to: sink)
            },
            partitionRecords: { $0.partitionBy($1) },
            partitionStates: { $0.partitionBy($1) },
            checkpoint: StateCoding(save: { store, key, state, out in
                out.writeVarUInt(UInt64(store.entries.count))
                try store.entries.forEach { k, entry in
                    try key.encode(k, to: &out)
                    try state.encode(entry.state, to: &out)
                    out.writeVarInt(entry.updated.milliseconds)
                }
            },
            load: { reader, key, state in
                var store = Store()
                for _ in 0..<(try reader.readCount(for: "a partition's keys")) {
                    let k = try key.decode(from: &reader)
                    let entry = Store.Entry(
                        state: try state.decode(from: &reader), updated: Time(milliseconds: try reader.readVarInt()))
                    let (found, slot) = store.entries.find(k)
                    if found { store.entries.setValue(entry, at: slot) } else { store.entries.insert(k, entry, at: slot) }
                }
                if let timeout { store.armEveryKey(timeout: timeout) }
                return store
            },
            rehome: { stores, partitioner in
                if placementHolds(keys: K.self, written: stores.count, now: partitioner) { return stores }
                var moved = Array(repeating: Store(), count: partitioner.numPartitions)
                for store in stores {
                    store.entries.forEach { key, entry in moved[partitioner.partition(for: key)].entries.set(key, entry) }
                }
                if let timeout { for p in moved.indices { moved[p].armEveryKey(timeout: timeout) } }
                return moved
            }))
    }
}

/// The state machine of `mapWithState`, shared by the mapped stream and its state snapshots: per batch and
/// partition, the function runs once per record in order, then for each key whose idle timeout expired at that
/// batch (found through the timer index, in the batch in which it expires, with or without input, where Spark
/// finds them only on checkpoint batches).
final class MapWithStateCore<K: Hashable & Sendable, V: Sendable, S: Sendable, Mapped: Sendable>: @unchecked Sendable {
    let parent: DStream<(K, V)>
    let spec: StateSpec<K, V, S, Mapped>
    let kernel: MapWithStateKernel<K, V, S, Mapped>
    let partitioner: HashPartitioner
    let timeline: StateTimeline<MapWithStateStore<K, S>, [Mapped]>

    init(parent: DStream<(K, V)>, spec: StateSpec<K, V, S, Mapped>, kernel: MapWithStateKernel<K, V, S, Mapped>) {
        self.parent = parent
        self.spec = spec
        self.kernel = kernel
        let n = parent.partitions(spec.partitionCount, for: "mapWithState")
        self.partitioner = HashPartitioner(numPartitions: n)
        self.timeline = StateTimeline(
            name: "mapWithState", partitions: n, slide: parent.slideDuration, empty: MapWithStateStore(),
            memory: parent.context.engine.memory,
            bytesPerKey: StateTimeline<MapWithStateStore<K, S>, Void>.estimatedBytesPerKey(K.self, MapWithStateStore<K, S>.Entry.self),
            keyCount: { $0.entries.count })
    }

    /// Records the batches up to `time`, from the parent's zero time.
    func record(through time: Time, zero: Time) throws {
        try timeline.recordSteps(through: time, zero: zero) { next, first in try step(next, first: first) }
    }

    /// Batch `time`'s records and timeouts (the first batch loads the initial state).
    private func step(_ time: Time, first: Bool) throws -> StateStep<MapWithStateStore<K, S>, [Mapped]> {
        let n = partitioner.numPartitions
        let kernel = self.kernel
        let records = try parent.getOrCompute(time).map { kernel.partitionRecords($0, n) }
        let initial = first ? spec.initialStateRDD.map { kernel.partitionStates($0, n) } : nil
        var lineage = records?.stages ?? Lineage()
        if let initial { lineage = lineage.merged(with: initial.stages) }
        return StateStep(time: time, lineage: lineage) { p, store in
            try initial?.computePartition(p) { chunk in kernel.load(chunk, &store, time) }
            var mapped: [Mapped] = []
            let state = State<S>()
            try records?.computePartition(p) { chunk in try kernel.records(chunk, &store, state, time, &mapped) }
            try kernel.timeouts(&store, state, time, &mapped)
            return mapped
        }
    }

    /// The values the function returned in batch `time`.
    func mapped(at time: Time, engine: ExecutionEngine) -> RDD<Mapped> {
        timeline.rdd(engine: engine, at: time) { _, mapped, sink in
            try mapped.withUnsafeBufferPointer { try emitChunks($0, to: sink) }
        }
    }

    /// Every key's state after batch `time`.
    func snapshots(at time: Time, engine: ExecutionEngine) -> RDD<(K, S)> {
        let kernel = self.kernel
        return timeline.rdd(engine: engine, at: time, partitioner: partitioner) { store, _, sink in
            try kernel.snapshot(store, sink)
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

    @usableFromInline
    init(parent: DStream<(K, V)>, spec: StateSpec<K, V, S, Mapped>, kernel: MapWithStateKernel<K, V, S, Mapped>) {
        core = MapWithStateCore(parent: parent, spec: spec, kernel: kernel)
        super.init(parent: parent, name: "mapWithState")
    }

    override func compute(_ time: Time) throws -> RDD<Mapped>? {
        guard let zero = zeroTime else { return nil }
        try core.record(through: time, zero: zero)
        return core.mapped(at: time, engine: context.engine)
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

extension MapWithStateDStream: CheckpointedNode {
    /// Spark's default for `mapWithState`: ten slides.
    var dataCheckpointInterval: Duration? { checkpointInterval ?? slideDuration * 10 }

    private func codecs() throws -> (ElementCodec<K>, ElementCodec<S>) { try keyedCodecs(K.self, S.self, values: "state") }

    func checkCheckpointable() throws { _ = try codecs() }

    /// Writes each partition's keys with their state and last update after the last batch at or before `time`
    /// (the timer index is rebuilt from the update times).
    func writeCheckpoint(at time: Time, to writer: inout BinaryWriter) throws {
        try writeState(core.timeline, core.kernel.checkpoint, codecs: try codecs(), at: time, to: &writer)
    }

    func restoreCheckpoint(from reader: inout BinaryReader, at time: Time) throws {
        try restoreState(
            core.timeline, core.kernel.checkpoint, codecs: try codecs(), partitioner: core.partitioner, output: [],
            from: &reader)
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
        try source.core.record(through: time, zero: zero)
        return source.core.snapshots(at: time, engine: context.engine)
    }

    override func remember(_ duration: Duration) {
        source.core.timeline.keepStates(for: duration)
        super.remember(duration)
    }
}
