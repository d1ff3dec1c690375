import SluiceColumnar
import SluiceExecution
import Synchronization

/// One batch's change to a stateful stream's state, applied once per partition, in time order.
struct StateStep<State, Output>: @unchecked Sendable {
    // @unchecked: the closure only captures RDDs (Sendable) and the stream's own Sendable functions.
    let time: Time
    /// The stages of the RDDs the step reads.
    let lineage: Lineage
    /// Changes partition `partition`'s state; returns what the batch produced there.
    let apply: (_ partition: Int, _ state: inout State) throws -> Output
}

/// State kept from batch to batch by a stateful stream (windows with an inverse function, `updateStateByKey`,
/// `mapWithState`): one store per partition, changed in place by each batch's step, in time order, exactly
/// once. Reading partition p at time t first applies the steps recorded up to t for that partition.
///
/// The store is not copied per batch: a read at time t uses the live state when t is the last applied batch.
/// An older state is kept (a copy-on-write snapshot, which makes the next change copy) only while a downstream
/// stream may still read it (``keepStates(for:)``); a read of a state no longer kept is an error. A step that
/// throws leaves its partition unusable (its state may be half changed): later reads of it fail with that
/// error, rather than count something twice.
final class StateTimeline<State: Sendable, Output: Sendable>: @unchecked Sendable {
    // @unchecked: every field is behind a lock.

    struct Partition {
        var state: State
        var applied: Time?
        /// Per applied batch: its output, and its state when kept for later readers.
        var history: [Time: (state: State?, output: Output)] = [:]
        var failure: StreamingError?
    }

    final class Slot: Sendable {
        let partition: Mutex<Partition>
        /// Keys in the partition's live state after its last step (read by monitoring without the lock).
        let keys = Atomic<Int>(0)
        init(_ empty: State) { partition = Mutex(Partition(state: empty)) }
    }

    let name: String
    private let partitions: [Slot]
    private let steps = Mutex<(list: [StateStep<State, Output>], lastRecorded: Time?)>(([], nil))
    /// Held while steps are made, so that two streams reading one state record each batch once; whether the
    /// first step (which loads an initial state) was made.
    private let recording = Mutex(false)
    private let retention = Mutex<Duration>(.zero)
    private let slide: Duration
    /// How many keys a state holds.
    private let keyCount: @Sendable (State) -> Int
    /// The live state's estimated size, reserved from the memory budget (category `state`).
    private let memory: MemoryReservation
    private let bytesPerKey: Int
    private let accounting = Mutex(())

    /// A timeline of `partitions` states starting `empty`, each of `keyCount` keys of about `bytesPerKey` bytes
    /// (see ``estimatedBytesPerKey(_:_:)``), whose size is reserved from `memory`.
    init(
        name: String, partitions: Int, slide: Duration, empty: State, memory: MemoryBudget, bytesPerKey: Int,
        keyCount: @escaping @Sendable (State) -> Int
    ) {
        self.name = name
        self.slide = slide
        self.keyCount = keyCount
        self.bytesPerKey = bytesPerKey
        self.memory = memory.reservation(for: "state of \(name)", category: .state)
        self.partitions = (0..<partitions).map { _ in Slot(empty) }
    }

    /// The bytes a hash table entry of key `K` and value `V` takes, estimated from their inline sizes at the
    /// table's maximum load (3/4); what they own on the heap (long strings, arrays) is not counted.
    static func estimatedBytesPerKey<K, V>(_ key: K.Type, _ value: V.Type) -> Int {
        (MemoryLayout<K>.stride + MemoryLayout<V>.stride) * 4 / 3 + 1
    }

    /// Sets partition `slot`'s key count and resizes the budget's reservation to the state's estimated size.
    /// State cannot wait or spill: what the budget refuses is held over it (and shown), so that receivers and
    /// shuffles see less room.
    private func setKeys(_ count: Int, of slot: Slot) {
        slot.keys.store(count, ordering: .relaxed)
        accounting.withLock { _ in
            let wanted = keys * bytesPerKey
            do {
                try memory.resize(to: wanted)
            } catch {
                memory.overcommit(by: wanted - memory.size)
            }
        }
    }

    var partitionCount: Int { partitions.count }

    /// Keys in the live state, over every partition, as of each partition's last step.
    var keys: Int { partitions.reduce(0) { $0 + $1.keys.load(ordering: .relaxed) } }

    /// Keeps states for reads up to `duration` back (downstream windows, `remember`).
    func keepStates(for duration: Duration) {
        retention.withLock { $0 = max($0, duration) }
    }

    /// The time of the last step recorded (pruning applied steps does not change it).
    var lastRecorded: Time? { steps.withLock { $0.lastRecorded } }

    /// Records the step of batch `step.time` (after every earlier one).
    func record(_ step: StateStep<State, Output>) {
        steps.withLock { steps in
            guard steps.lastRecorded.map({ $0 < step.time }) ?? true else { return }
            steps.list.append(step)
            steps.lastRecorded = step.time
        }
    }

    /// Records the step of every batch up to `time` not recorded yet, one slide apart from `zero` (the first
    /// batch after it is the first step: `make`'s second argument).
    func recordSteps(through time: Time, zero: Time, _ make: (Time, _ first: Bool) throws -> StateStep<State, Output>) throws {
        try recording.withLock { startedSteps in
            var next = lastRecorded.map { $0 + slide } ?? zero + slide
            while next <= time {
                record(try make(next, !startedSteps))
                startedSteps = true
                next = next + slide
            }
        }
    }

    /// An RDD of the state at `time`: partition p brings its state up to `time` and `emit`s from it.
    func rdd<T: Sendable>(
        engine: ExecutionEngine, at time: Time, partitioner: HashPartitioner? = nil,
        _ emit: @escaping @Sendable (State, Output, (UnsafeBufferPointer<T>) throws -> Void) throws -> Void
    ) -> RDD<T> {
        RDD.custom(
            engine: engine, numPartitions: partitions.count, partitioner: partitioner, lineage: lineage(through: time)
        ) { [self] p, sink in
            try read(partition: p, at: time) { state, output in try emit(state, output, sink) }
        }
    }

    /// The stages of the steps up to `time` that some partition has not applied yet.
    func lineage(through time: Time) -> Lineage {
        let applied = partitions.map { slot in slot.partition.withLock { $0.applied } }
        // A partition that applied nothing yet needs every step.
        let oldest = applied.contains { $0 == nil } ? nil : applied.compactMap { $0 }.min()
        return steps.withLock { steps in
            steps.list.filter { step in step.time <= time && (oldest.map { step.time > $0 } ?? true) }
                .reduce(Lineage()) { $0.merged(with: $1.lineage) }
        }
    }

    /// Brings partition `partition` up to batch `time` and calls `body` with its state and output at `time`.
    /// - Throws: the error of a step, or ``StreamingError`` when the state at `time` is no longer kept.
    func read<R>(partition p: Int, at time: Time, _ body: (State, Output) throws -> R) throws -> R {
        let keep = retention.withLock { $0 }
        let pending = steps.withLock { $0.list }
        return try partitions[p].partition.withLock { partition in
            if let failure = partition.failure { throw failure }
            for step in pending where step.time <= time && partition.applied.map({ step.time > $0 }) ?? true {
                if let previous = partition.applied, keep > slide, previous > step.time - keep {
                    partition.history[previous]?.state = partition.state  // an older state someone may read
                }
                do {
                    let output = try step.apply(p, &partition.state)
                    partition.applied = step.time
                    partition.history[step.time] = (nil, output)
                } catch {
                    let failure = StreamingError(
                        .generationFailed,
                        "the state of \(name) (partition \(p)) is unusable after batch \(step.time) failed",
                        underlying: error)
                    partition.failure = failure
                    throw error
                }
            }
            setKeys(keyCount(partition.state), of: partitions[p])
            if partition.applied == time, let output = partition.history[time]?.output {
                return try body(partition.state, output)
            }
            if let kept = partition.history[time], let state = kept.state {
                return try body(state, kept.output)
            }
            throw StreamingError(
                .generationFailed,
                "the state of \(name) at \(time) is no longer kept (partition \(p) is at "
                    + "\(partition.applied.map { "\($0)" } ?? "no batch")): stateful streams are read in time order; "
                    + "keep spark.streaming.concurrentJobs at 1 or remember the stream longer")
        }
    }

    /// Every partition's state at the last batch on the slide grid at or before `time` that was recorded,
    /// encoded by `encode` (partitions in parallel, on the engine's workers), with that batch's time; nil when no
    /// batch was recorded yet.
    /// - Throws: the error of a step or of `encode`, or ``StreamingError`` when that state is no longer kept.
    func encodeStates(
        at time: Time, zero: Time, engine: ExecutionEngine,
        _ encode: @escaping @Sendable (State, inout BinaryWriter) throws -> Void
    ) throws -> (time: Time, partitions: [[UInt8]])? {
        guard let last = lastRecorded else { return nil }
        let at = min(last, gridTime(atOrBefore: time, zero: zero))
        guard at > zero else { return nil }
        let encoded = try RDD<[UInt8]>.custom(engine: engine, numPartitions: partitions.count, lineage: Lineage()) {
            [self] p, sink in
            let bytes = try read(partition: p, at: at) { state, _ in
                var writer = try BinaryWriter()
                try encode(state, &writer)
                return try writer.withWrittenBytes { Array($0) }
            }
            try [bytes].withUnsafeBufferPointer { try sink($0) }
        }.collect()
        return (at, encoded)
    }

    /// Writes the time of the last batch at or before `time` and every partition's state after it (`compute`
    /// first brings the stream to that batch); returns that time, nil when the stream had no batch yet.
    @discardableResult
    func writeCheckpoint(
        at time: Time, zero: Time, engine: ExecutionEngine, to writer: inout BinaryWriter,
        computing compute: (Time) throws -> Void, _ encode: @escaping @Sendable (State, inout BinaryWriter) throws -> Void
    ) throws -> Time? {
        let grid = gridTime(atOrBefore: time, zero: zero)
        if grid > zero { try compute(grid) }
        let saved = try encodeStates(at: time, zero: zero, engine: engine, encode)
        CheckpointCoding.write(saved?.time, to: &writer)
        if let saved { CheckpointCoding.write(saved.partitions, to: &writer) }
        return saved?.time
    }

    /// Reads what ``writeCheckpoint(at:zero:engine:to:computing:_:)`` wrote and makes it the state (with
    /// `output` as that batch's output), after `rehome` moved each key to the partition this process gives it;
    /// returns the batch's time, nil when there was no state.
    @discardableResult
    func restoreCheckpoint(
        from reader: inout BinaryReader, engine: ExecutionEngine, output: Output,
        rehome: ([State]) -> [State],
        _ decode: @escaping @Sendable (inout BinaryReader) throws -> State
    ) throws -> Time? {
        guard let at = try CheckpointCoding.readTime(from: &reader) else { return nil }
        let states = try Self.decodeStates(try CheckpointCoding.readPartitions(from: &reader), engine: engine, decode)
        try restore(states: rehome(states), at: at, output: output)
        return at
    }

    /// The states `encodeStates` encoded, decoded by `decode` (partitions in parallel).
    static func decodeStates(
        _ partitions: [[UInt8]], engine: ExecutionEngine,
        _ decode: @escaping @Sendable (inout BinaryReader) throws -> State
    ) throws -> [State] {
        try RDD<State>.custom(engine: engine, numPartitions: partitions.count, lineage: Lineage()) { p, sink in
            let state = try partitions[p].withUnsafeBytes { bytes in
                try BinaryReader.withReader(bytes) { reader -> State in
                    let state = try decode(&reader)
                    guard reader.isAtEnd else {
                        throw FormatError(.inconsistent, at: reader.offset, "\(reader.remaining) bytes left over")
                    }
                    return state
                }
            }
            try [state].withUnsafeBufferPointer { try sink($0) }
        }.collect()
    }

    /// The last time on the slide grid at or before `time`.
    func gridTime(atOrBefore time: Time, zero: Time) -> Time {
        let slideMs = max(1, slide.wholeMilliseconds)
        return Time(milliseconds: zero.milliseconds + (time.milliseconds - zero.milliseconds) / slideMs * slideMs)
    }

    /// Makes `states` the state after batch `time` (restored from a checkpoint), with `output` as that batch's
    /// output; the next step recorded is the batch one slide later.
    func restore(states: [State], at time: Time, output: Output) throws {
        guard states.count == partitions.count else {
            throw StreamingError(
                .checkpointMismatch,
                "the checkpoint holds \(states.count) partitions of \(name)'s state, the stream has \(partitions.count)")
        }
        for (slot, state) in zip(partitions, states) {
            slot.partition.withLock { partition in
                partition = Partition(state: state, applied: time, history: [time: (nil, output)])
            }
            setKeys(keyCount(state), of: slot)
        }
        steps.withLock { $0 = ([], time) }
        recording.withLock { $0 = true }
    }

    /// Forgets outputs and kept states of batches before `time`, and steps every partition applied.
    func prune(before time: Time) {
        var oldestApplied: Time?
        for slot in partitions {
            let applied = slot.partition.withLock { partition -> Time? in
                partition.history = partition.history.filter { $0.key >= time || $0.key == partition.applied }
                return partition.applied
            }
            guard let applied else { return }
            oldestApplied = oldestApplied.map { min($0, applied) } ?? applied
        }
        if let oldestApplied { steps.withLock { $0.list.removeAll { $0.time <= oldestApplied } } }
    }
}

extension StreamingContext {
    /// The error Spark gives a stateful stream started without a checkpoint directory.
    func checkCheckpointDirectory(for stream: String) throws {
        guard checkpointDirectory != nil else {
            throw StreamingError(
                .invalidGraph,
                "The checkpoint directory has not been set: \(stream) keeps state between batches and needs "
                    + "StreamingContext.checkpoint(directory) before start()")
        }
    }
}

/// Emits the key-value pairs of a dictionary as chunks.
@inlinable
func emitPairs<K, V>(_ dictionary: [K: V], to sink: (UnsafeBufferPointer<(K, V)>) throws -> Void) throws {
    var out = ChunkBuffer<(K, V)>()
    for (key, value) in dictionary {
        out.append((key, value))
        if out.isFull { try out.flush(to: sink) }
    }
    try out.flush(to: sink)
}

/// A stream that keeps state from batch to batch (what monitoring lists with its size).
protocol StatefulNode: GraphNode {
    /// Keys in its state now.
    var stateKeys: Int { get }
}

extension StateDStream: StatefulNode {
    var stateKeys: Int { timeline.keys }
}

extension ReducedWindowedDStream: StatefulNode {
    var stateKeys: Int { timeline.keys }
}

extension MapWithStateDStream: StatefulNode {
    var stateKeys: Int { core.timeline.keys }
}
