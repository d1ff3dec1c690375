import SluiceColumnar
import Synchronization

/// A table smaller than this is not worth a spill file: it keeps growing past its reservation instead.
let minimumSpillBytes = 256 << 10
/// Reservations grow by at least this much, so that the budget's lock is taken rarely.
let reservationStep = 1 << 20

/// One parent of a shuffle's map side: its partitions, its own stages, and how a map task feeds one of its
/// partitions into a combine table (a closure built where the element types are known, so it is specialized).
@usableFromInline
struct ShuffleInput<Keys: KeyColumn, C: Sendable>: Sendable {
    @usableFromInline let numPartitions: Int
    @usableFromInline let lineage: Lineage
    /// Whether a map task may feed a slice of a partition (``TaskContext/slice``): the parent can produce one
    /// and the combine does not depend on the order of the pairs.
    @usableFromInline let sliceable: Bool
    /// Feeds partition `partition` into `table`, calling `stage.chunkDone(&table)` after every chunk.
    @usableFromInline let run: @Sendable (
        _ partition: Int, _ table: inout CombineTable<Keys, C>, _ stage: ShuffleStage<Keys, C>
    ) throws -> Void

    @inlinable
    init(
        numPartitions: Int, lineage: Lineage, sliceable: Bool = false,
        run: @escaping @Sendable (Int, inout CombineTable<Keys, C>, ShuffleStage<Keys, C>) throws -> Void
    ) {
        self.numPartitions = numPartitions
        self.lineage = lineage
        self.sliceable = sliceable
        self.run = run
    }
}

/// How a shuffle's combiners are measured and stored.
@usableFromInline
struct CombinerTraits<C>: Sendable {
    /// Bytes per value a grouping combiner holds (0 for combiners of fixed size).
    @usableFromInline let bytesPerValue: Int
    /// The number of values a combiner holds (for grouping combiners).
    @usableFromInline let valueCount: @Sendable (C) -> Int
    /// The combiners' block encoding, found from a sample combiner; nil when there is none (then the shuffle
    /// cannot spill).
    @usableFromInline let codec: @Sendable (C) -> ElementCodec<C>?

    @inlinable
    init(
        bytesPerValue: Int = 0, valueCount: @escaping @Sendable (C) -> Int = { _ in 1 },
        codec: @escaping @Sendable (C) -> ElementCodec<C>?
    ) {
        self.bytesPerValue = bytesPerValue
        self.valueCount = valueCount
        self.codec = codec
    }
}

/// A shuffle: the map side combines its inputs' (key, value) pairs into one hash table per worker (each
/// table reused by every task that runs on that worker, so partial aggregates merge once, at the reduce side,
/// with no lock on the hot path); the reduce side merges, for its partition, the entries of every table and
/// of every spill file.
///
/// Map tasks reserve memory as their tables grow. When the budget refuses, the table spills: its entries,
/// grouped by reduce partition, go to a spill file as compressed blocks and the table starts empty again.
/// A reduce task that runs out of budget spills its table sorted by hash and finishes with an external merge,
/// as Spark's `ExternalAppendOnlyMap` does. The map output (tables and spill files) stays until the stage is
/// released with the last RDD that reads it; its spill files are then removed.
@usableFromInline
final class ShuffleStage<Keys: KeyColumn, C: Sendable>: StageNode {
    let id: Int
    let engine: ExecutionEngine
    @usableFromInline let partitioner: HashPartitioner
    /// The map side's inputs, dropped once the map output is made: they hold the parent RDDs and, through them,
    /// their data (a window's raw input would otherwise stay as long as the window keeps this stage).
    private let inputs: Mutex<[ShuffleInput<Keys, C>]>
    let mergeCombiners: @Sendable (inout C, C) throws -> Void
    let traits: CombinerTraits<C>
    /// What the map side's tables hold of the memory budget.
    let memory: MemoryReservation
    private let state = Mutex(State.pending)
    /// Spills made by the map tasks of the run in progress.
    private let pendingSpills = Mutex<[MapSpill<Keys, C>]>([])

    enum State {
        case pending
        case running
        case done(MapOutput<Keys, C>)
    }

    @usableFromInline
    init(
        engine: ExecutionEngine, partitioner: HashPartitioner, inputs: [ShuffleInput<Keys, C>],
        mergeCombiners: @escaping @Sendable (inout C, C) throws -> Void, traits: CombinerTraits<C>
    ) {
        let id = engine.makeId()
        self.id = id
        self.engine = engine
        self.partitioner = partitioner
        self.inputs = Mutex(inputs)
        self.mergeCombiners = mergeCombiners
        self.traits = traits
        self.memory = engine.memory.reservation(for: "shuffle \(id) map", category: .shuffle)
    }

    /// An RDD of the reduce side's partitions, keyed by `K` (the same type as `Keys.Key`). `merging`: each key
    /// once, its combiners from every map table and spill merged; else each map table's and spill's entries as
    /// they are, one after another (a key may come several times), for a reader that only concatenates them.
    @usableFromInline
    func rdd<K: Sendable>(keyedBy: K.Type, merging: Bool = true) -> RDD<(K, C)> {
        RDD(
            engine: engine, numPartitions: partitioner.numPartitions, partitioner: partitioner,
            lineage: Lineage([self])
        ) { r, sink in
            let typed: (UnsafeBufferPointer<(Keys.Key, C)>) throws -> Void = { chunk in try sink(chunk.same(as: (K, C).self)) }
            if merging { try self.read(partition: r, into: typed) } else { try self.readEntries(partition: r, into: typed) }
        }
    }

    // MARK: Map side

    @usableFromInline
    func materialize() throws {
        while true {
            let next = state.withLock { state -> MaterializeStep in
                switch state {
                case .done: return .finished
                case .running: return .wait
                case .pending:
                    state = .running
                    return .run
                }
            }
            switch next {
            case .finished: return
            case .wait:
                // Another job runs the map side; a failed run puts the stage back to pending and the loop
                // runs it here.
                engine.pool.wait { self.isSettled }
            case .run:
                do {
                    let output = try runMapTasks()
                    state.withLock { $0 = .done(output) }
                    inputs.withLock { $0 = [] }
                    engine.pool.wakeWaiters()
                    return
                } catch {
                    state.withLock { $0 = .pending }
                    engine.pool.wakeWaiters()
                    throw error
                }
            }
        }
    }

    /// Whether no run of the map side is in progress.
    private var isSettled: Bool {
        state.withLock { if case .running = $0 { false } else { true } }
    }

    private func runMapTasks() throws -> MapOutput<Keys, C> {
        let tables = WorkerTables<Keys, C>(workers: engine.pool.workerCount)
        var kept: [CombineTable<Keys, C>] = []
        do {
            for input in inputs.withLock({ $0 }) {
                try input.lineage.prepare()
                let slices = input.sliceable ? slicesPerPartition(input.numPartitions) : 1
                try engine.pool.run(tasks: input.numPartitions * slices) { task in
                    let (p, slice) = (task / slices, PartitionSlice(index: task % slices, count: slices))
                    var table = tables.checkOut()
                    defer { tables.checkIn(table) }
                    try TaskContext.withPartition(p, slice: slice) { try input.run(p, &table, self) }
                }
            }
            kept = tables.drain().filter { $0.count > 0 }
            // A map output holding much of a limited budget moves to disk now, leaving the reduce side room.
            if memory.budget.limit != .max && memory.size > memory.budget.limit / 2 {
                for i in kept.indices { try spill(&kept[i]) }
                kept = []
            }
        } catch {
            for spill in pendingSpills.withLock({ s in defer { s = [] }; return s }) {
                engine.spill.remove(spill.file.path)
            }
            memory.free()
            throw error
        }
        let spills = pendingSpills.withLock { s in defer { s = [] }; return s }
        return MapOutput(
            tables: kept, index: kept.map(partitionIndex), spills: spills, directory: engine.spill)
    }

    /// How many tasks share each of `partitions` partitions: the fewest that give every worker at least eight
    /// tasks and all of them the same number (a batch of three received blocks on two workers: 18 tasks, not
    /// three, of which the last would run alone). A batch ends when its last task does, so the smaller the tasks
    /// the less a worker waits for the other at the end: with two tasks a worker, the word count's batches took
    /// 5% longer on average over six alternated runs, and the slowest of each run 6% longer.
    func slicesPerPartition(_ partitions: Int) -> Int {
        let workers = max(1, engine.pool.workerCount)
        guard partitions > 0, workers > 1 else { return 1 }
        var slices = 1
        while slices < 64 && (partitions * slices < 8 * workers || (partitions * slices) % workers != 0) { slices += 1 }
        return slices
    }

    /// Called by map tasks after each chunk: reserves memory for the table's growth, or spills it.
    @usableFromInline
    func chunkDone(_ table: inout CombineTable<Keys, C>) throws {
        let estimate = table.estimatedBytes(bytesPerValue: traits.bytesPerValue)
        if estimate > table.reservedBytes {
            let step = max(estimate - table.reservedBytes, reservationStep)
            if memory.tryGrow(by: step) {
                table.reservedBytes += step
            } else if estimate >= minimumSpillBytes {
                try spill(&table)
            }
        }
        WorkStealingPool.yieldPoint()
    }

    /// The reduce partition of each entry of `table`, as lists of entries per partition.
    func partitionIndex(_ table: CombineTable<Keys, C>) -> [[Int32]] {
        var index = [[Int32]](repeating: [], count: partitioner.numPartitions)
        for e in 0..<table.count {
            index[partitioner.partition(forHashCode: table.keys.hashCode(at: e))].append(Int32(e))
        }
        return index
    }

    /// Writes `table`'s entries to a spill file, grouped by reduce partition, and empties it.
    private func spill(_ table: inout CombineTable<Keys, C>) throws {
        guard table.count > 0 else { return }
        let codec = try rowCodec(table)
        let index = partitionIndex(table)
        var frames = [[Int]](repeating: [], count: partitioner.numPartitions)
        let file = try engine.spill.write(
            "shuffle-\(id)-map", what: "shuffle \(id)'s map output", codec: codec, level: engine.compressionLevel
        ) { writer in
            for (r, entries) in index.enumerated() where !entries.isEmpty {
                let first = writer.frameOffsets.count
                for e in entries { try writer.append((table.keys.key(at: Int(e)), table.combiners[Int(e)])) }
                try writer.endFrame()
                frames[r] = Array(writer.frameOffsets[first...])
            }
        }
        pendingSpills.withLock { $0.append(MapSpill(file: file, frames: frames, codec: codec)) }
        memory.shrink(by: table.reservedBytes)
        table.reservedBytes = 0
        table.removeAll()
    }

    /// The block encoding of (key, combiner) rows, found from `table`'s first entry.
    /// - Throws: ``StorageError`` (`notSerializable`) when the key or combiner type has none.
    func rowCodec(_ table: CombineTable<Keys, C>) throws -> ElementCodec<(Keys.Key, C)> {
        guard let key = ElementCodecs.lookup(Keys.Key.self, sample: table.keys.key(at: 0)),
            let combiner = traits.codec(table.combiners[0])
        else {
            throw StorageError(
                .notSerializable,
                "shuffle \(id) needs more memory than sluice.memory.limit allows (\(engine.memory.limit) bytes) and "
                    + "cannot spill: its keys (\(Keys.Key.self)) or values (\(C.self)) have no block encoding; "
                    + "make them Codable (or BlockSerializable) or raise sluice.memory.limit")
        }
        return ElementCodecs.pair(key, combiner)
    }

    // MARK: Reduce side

    /// Pushes reduce partition `r`'s (key, combiner) pairs into `sink`, running the map side first if needed.
    func read(partition r: Int, into sink: (UnsafeBufferPointer<(Keys.Key, C)>) throws -> Void) throws {
        let output = try mapOutput()
        if output.spills.isEmpty && output.tables.count <= 1 {
            // One source: its entries are already combined.
            return try readEntries(of: output, partition: r, into: sink)
        }
        let merger = ReduceMerger(stage: self, partition: r)
        defer { merger.close() }
        for (t, table) in output.tables.enumerated() {
            for e in output.index[t][r] { try merger.add(entry: Int(e), of: table) }
        }
        for spill in output.spills where !spill.frames[r].isEmpty {
            let reader = try SpillReader(
                spill.file, frames: spill.frames[r], codec: spill.codec, directory: engine.spill,
                what: "shuffle \(id)'s map output")
            while let rows = try reader.nextFrame() {
                for (key, combiner) in rows { try merger.add(key: key, combiner: combiner) }
            }
        }
        try merger.finish(into: sink)
    }

    /// Pushes every map spill's and map table's entries for reduce partition `r` into `sink` as they are, not
    /// merged by key, running the map side first if needed. Spills come first, in the order they were written,
    /// then the tables: a map task's entries for `r` then come in the order the task added them (its earlier
    /// ones went to disk first, the rest stayed in its table).
    func readEntries(partition r: Int, into sink: (UnsafeBufferPointer<(Keys.Key, C)>) throws -> Void) throws {
        try readEntries(of: try mapOutput(), partition: r, into: sink)
    }

    private func readEntries(
        of output: MapOutput<Keys, C>, partition r: Int, into sink: (UnsafeBufferPointer<(Keys.Key, C)>) throws -> Void
    ) throws {
        var out = ChunkBuffer<(Keys.Key, C)>()
        for spill in output.spills where !spill.frames[r].isEmpty {
            let reader = try SpillReader(
                spill.file, frames: spill.frames[r], codec: spill.codec, directory: engine.spill,
                what: "shuffle \(id)'s map output")
            while let rows = try reader.nextFrame() {
                for row in rows { try out.append(row, flushingFullTo: sink) }
            }
        }
        for (t, table) in output.tables.enumerated() {
            for e in output.index[t][r] {
                try out.append((table.keys.key(at: Int(e)), table.combiners[Int(e)]), flushingFullTo: sink)
            }
        }
        try out.flush(to: sink)
    }

    private func mapOutput() throws -> MapOutput<Keys, C> {
        if case .done(let output) = state.withLock({ $0 }) { return output }
        try materialize()
        guard case .done(let output) = state.withLock({ $0 }) else {
            throw StorageError(.readFailed, "shuffle \(id)'s map output is not available")
        }
        return output
    }
}

/// What `materialize` does next.
private enum MaterializeStep { case finished, wait, run }

/// A map-side spill file: rows grouped by reduce partition, with each partition's frames.
struct MapSpill<Keys: KeyColumn, C>: Sendable {
    let file: SpillFile
    /// Frame offsets per reduce partition.
    let frames: [[Int]]
    let codec: ElementCodec<(Keys.Key, C)>
}

/// What a shuffle's map side produced: tables in memory (with their entries listed per reduce partition) and
/// spill files. The spill files go when it does.
final class MapOutput<Keys: KeyColumn, C: Sendable>: Sendable {
    let tables: [CombineTable<Keys, C>]
    let index: [[[Int32]]]
    let spills: [MapSpill<Keys, C>]
    let directory: SpillDirectory

    init(tables: [CombineTable<Keys, C>], index: [[[Int32]]], spills: [MapSpill<Keys, C>], directory: SpillDirectory) {
        self.tables = tables
        self.index = index
        self.spills = spills
        self.directory = directory
    }

    deinit {
        for spill in spills { directory.remove(spill.file.path) }
    }
}

/// One combine table per worker for the map tasks of one stage; a task takes its worker's table and gives it
/// back when done, so the tasks of a worker share one table. A task that runs nested in another (a yield, an
/// action inside a closure) finds the table taken and starts a table of its own.
final class WorkerTables<Keys: KeyColumn, C: Sendable>: Sendable {
    final class Slot: Sendable {
        let tables = Mutex<[CombineTable<Keys, C>]>([])
    }

    private let slots: [Slot]

    init(workers: Int) {
        slots = (0..<max(1, workers)).map { _ in Slot() }
    }

    private var slot: Slot { slots[(WorkerThread.current?.worker.index ?? 0) % slots.count] }

    func checkOut() -> CombineTable<Keys, C> {
        slot.tables.withLock { $0.popLast() } ?? CombineTable()
    }

    func checkIn(_ table: CombineTable<Keys, C>) {
        slot.tables.withLock { $0.append(table) }
    }

    /// Every table, taken out.
    func drain() -> [CombineTable<Keys, C>] {
        slots.flatMap { slot in slot.tables.withLock { tables in defer { tables = [] }; return tables } }
    }
}
