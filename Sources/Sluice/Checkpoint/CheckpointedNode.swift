import SluiceColumnar
import SluiceExecution

/// A stream that keeps data from batch to batch (state, window contents, file or block bookkeeping) and so
/// writes a section of every checkpoint.
protocol CheckpointedNode: GraphNode {
    /// How often the stream wants a checkpoint (nil: it follows the context's interval).
    var dataCheckpointInterval: Duration? { get }
    /// Checks at `start()` that the stream's data can be written (its types have a block encoding).
    /// - Throws: ``StreamingError`` (`invalidGraph`) naming the stream and the type.
    func checkCheckpointable() throws
    /// Writes what the stream needs to go on after batch `time` (every batch up to it is complete).
    func writeCheckpoint(at time: Time, to writer: inout BinaryWriter) throws
    /// Restores what ``writeCheckpoint(at:to:)`` wrote at `time`; the stream is initialized, not started.
    func restoreCheckpoint(from reader: inout BinaryReader, at time: Time) throws
}

/// Spark's default checkpoint interval of a stateful stream: the first multiple of its slide of at least 10 s.
func defaultStateCheckpointInterval(slide: Duration) -> Duration {
    let slideMs = max(1, slide.wholeMilliseconds)
    return .milliseconds(slideMs * max(1, (10_000 + slideMs - 1) / slideMs))
}

/// Encodings of stream data in checkpoints: dictionaries and partitioned RDD contents, with the element types'
/// block encodings.
enum CheckpointCoding {
    /// The block encoding of `type`.
    /// - Throws: ``StreamingError`` (`invalidGraph`) naming `what` when `type` has none.
    static func codec<T>(_ type: T.Type, for what: String) throws -> ElementCodec<T> {
        guard let codec = ElementCodecs.lookup(T.self) else {
            throw StreamingError(
                .invalidGraph,
                "\(what) cannot be checkpointed: \(T.self) has no encoding; make it Codable (or BlockSerializable, "
                    + "for a column mapping of its own), or use Int, String, Double, Bool, arrays, optionals and "
                    + "tuples of them")
        }
        return codec
    }

    /// The encodings of a keyed stream's keys and values (`values`: what they are, e.g. "state").
    /// - Throws: as ``codec(_:for:)``, naming the stream.
    static func codecs<K, V>(_: K.Type, _: V.Type, of stream: String, values: String) throws -> (ElementCodec<K>, ElementCodec<V>) {
        (try codec(K.self, for: "the keys of \(stream)"), try codec(V.self, for: "the \(values) of \(stream)"))
    }

    /// Writes an RDD's contents partition by partition (computing it if needed), with whether it was
    /// hash-partitioned.
    static func write<T>(_ rdd: RDD<T>, _ codec: ElementCodec<T>, to writer: inout BinaryWriter) throws {
        let partitions = try rdd.glom().collect()
        writer.writeBool(rdd.partitioner != nil)
        writer.writeVarUInt(UInt64(partitions.count))
        for partition in partitions {
            writer.writeVarUInt(UInt64(partition.count))
            for element in partition { try codec.encode(element, to: &writer) }
        }
    }

    /// An RDD of the contents ``write(_:_:to:)`` wrote. A hash-partitioned one is placed anew (see
    /// ``rehomed(_:into:)``), into `partitions` partitions when given (the number its reader now uses), else
    /// into as many as were written.
    static func readRDD<T: Sendable>(
        _ codec: ElementCodec<T>, engine: ExecutionEngine, partitions target: Int? = nil,
        from reader: inout BinaryReader
    ) throws -> RDD<T> {
        let hashed = try reader.readBool()
        var partitions: [[T]] = []
        for _ in 0..<(try reader.readCount(for: "RDD partitions")) {
            var partition: [T] = []
            for _ in 0..<(try reader.readCount(for: "a partition's elements")) {
                partition.append(try codec.decode(from: &reader))
            }
            partitions.append(partition)
        }
        let restored = hashed ? rehomed(partitions, into: target ?? partitions.count) : partitions
        return RDD.custom(
            engine: engine, numPartitions: restored.count,
            partitioner: hashed ? HashPartitioner(numPartitions: restored.count) : nil, lineage: Lineage()
        ) { p, sink in
            try restored[p].withUnsafeBufferPointer { try emitChunks($0, to: sink) }
        }
    }

    /// Hash-partitioned pairs restored from a checkpoint, each placed in the partition of `count` that this
    /// process gives its key. A key whose hash code is seeded per process (see
    /// `SparkHashCode.isProcessIndependent`) may belong elsewhere than in the run that wrote it, and the
    /// number of partitions may have changed (`spark.default.parallelism`, a machine with other cores).
    /// Unchanged when the count is the same and the keys hash alike in every process, or the elements are not
    /// pairs.
    static func rehomed<T>(_ partitions: [[T]], into count: Int) -> [[T]] {
        guard let first = partitions.lazy.flatMap({ $0 }).first else {
            return Array(repeating: [], count: max(1, count))
        }
        guard let pair = first as? (any Hashable, Any) else { return partitions }
        let partitioner = HashPartitioner(numPartitions: max(1, count))
        if placementHolds(keys: type(of: pair.0), written: partitions.count, now: partitioner) { return partitions }
        var moved = Array(repeating: [T](), count: partitioner.numPartitions)
        for partition in partitions {
            for element in partition {
                // Every element has the first's type, so the cast holds; were it not to, the element would go to
                // the first partition rather than be lost.
                let key: (any Hashable)? = (element as? (any Hashable, Any))?.0
                moved[key.map { partitioner.partition(for: $0) } ?? 0].append(element)
            }
        }
        return moved
    }

    /// Per-partition key-value states restored from a checkpoint, each key moved to the partition `partitioner`
    /// gives it in this process (see ``rehomed(_:into:)``); unchanged when there are as many partitions as
    /// written and the keys hash alike in every process.
    static func rehomed<K: Hashable, V>(_ states: [[K: V]], by partitioner: HashPartitioner) -> [[K: V]] {
        if placementHolds(keys: K.self, written: states.count, now: partitioner) { return states }
        var moved = Array(repeating: [K: V](), count: partitioner.numPartitions)
        for state in states {
            for (key, value) in state { moved[partitioner.partition(for: key)][key] = value }
        }
        return moved
    }

    /// Writes encoded partitions, each length-prefixed.
    static func write(_ partitions: [[UInt8]], to writer: inout BinaryWriter) {
        writer.writeVarUInt(UInt64(partitions.count))
        for partition in partitions { partition.withUnsafeBytes { writer.writeBytes($0) } }
    }

    /// The partitions ``write(_:to:)-([[UInt8]],_)`` wrote.
    static func readPartitions(from reader: inout BinaryReader) throws -> [[UInt8]] {
        try (0..<(try reader.readCount(for: "state partitions"))).map { _ in Array(try reader.readBytes()) }
    }

    static func write(_ time: Time?, to writer: inout BinaryWriter) {
        writer.writeBool(time != nil)
        if let time { writer.writeVarInt(time.milliseconds) }
    }

    static func readTime(from reader: inout BinaryReader) throws -> Time? {
        try reader.readBool() ? Time(milliseconds: try reader.readVarInt()) : nil
    }
}

extension DStream {
    /// Writes the stream's RDDs at its valid times from `first` through `last` (the batches a window still
    /// covers), each with its time, for a checkpoint.
    func writeBatches(from first: Time, through last: Time, codec: ElementCodec<Element>, to writer: inout BinaryWriter)
        throws
    {
        var batches: [(Time, RDD<Element>)] = []
        var time = first
        while time <= last {
            if let rdd = try getOrCompute(time) { batches.append((time, rdd)) }
            time = time + slideDuration
        }
        writer.writeVarUInt(UInt64(batches.count))
        for (time, rdd) in batches {
            writer.writeVarInt(time.milliseconds)
            try CheckpointCoding.write(rdd, codec, to: &writer)
        }
    }

    /// Makes the batches ``writeBatches(from:through:codec:to:)`` wrote the stream's RDDs at their times
    /// (hash-partitioned ones placed anew, into `partitions` partitions when given).
    func restoreBatches(codec: ElementCodec<Element>, partitions: Int? = nil, from reader: inout BinaryReader) throws {
        for _ in 0..<(try reader.readCount(for: "window batches")) {
            let time = Time(milliseconds: try reader.readVarInt())
            let rdd = try CheckpointCoding.readRDD(codec, engine: context.engine, partitions: partitions, from: &reader)
            restoreRDD(rdd, at: time)
        }
    }
}

/// How a stateful stream's per-partition store goes into checkpoints: written and read with the key and value
/// encodings, and re-placed after a restart (see `CheckpointCoding.rehomed`). Made where a stateful operator is
/// called, so that the loops are specialized for the program's types (several times faster than generic code
/// on a million keys).
@usableFromInline
struct StateCoding<K: Hashable & Sendable, V: Sendable, Store: Sendable>: Sendable {
    let save: @Sendable (Store, ElementCodec<K>, ElementCodec<V>, inout BinaryWriter) throws -> Void
    let load: @Sendable (inout BinaryReader, ElementCodec<K>, ElementCodec<V>) throws -> Store
    /// The stores restored, each key moved to the partition of the given partitioner that this process gives it.
    let rehome: @Sendable ([Store], HashPartitioner) -> [Store]

    @usableFromInline
    init(
        save: @escaping @Sendable (Store, ElementCodec<K>, ElementCodec<V>, inout BinaryWriter) throws -> Void,
        load: @escaping @Sendable (inout BinaryReader, ElementCodec<K>, ElementCodec<V>) throws -> Store,
        rehome: @escaping @Sendable ([Store], HashPartitioner) -> [Store]
    ) {
        self.save = save
        self.load = load
        self.rehome = rehome
    }
}

extension StateCoding where Store == [K: V] {
    /// The coding of a `[K: V]` store.
    @inlinable
    static func dictionary() -> StateCoding {
        StateCoding(
            save: { dictionary, key, value, writer in
                writer.writeVarUInt(UInt64(dictionary.count))
                for (k, v) in dictionary {
                    try key.encode(k, to: &writer)
                    try value.encode(v, to: &writer)
                }
            },
            load: { reader, key, value in
                let count = try reader.readCount(for: "a state of key-value pairs")
                var dictionary: [K: V] = [:]
                dictionary.reserveCapacity(count)
                for _ in 0..<count {
                    let k = try key.decode(from: &reader)
                    dictionary[k] = try value.decode(from: &reader)
                }
                return dictionary
            },
            rehome: { rehomedDictionaries($0, by: $1) })
    }
}

/// Whether data a run placed by key over `written` partitions is where `partitioner` looks for it in this one:
/// as many partitions, and keys of `keyType` hash alike in every process (see
/// `SparkHashCode.isProcessIndependent`).
@usableFromInline
func placementHolds(keys keyType: Any.Type, written: Int, now partitioner: HashPartitioner) -> Bool {
    written == partitioner.numPartitions && SparkHashCode.isProcessIndependent(keyType)
}

/// `CheckpointCoding.rehomed(_:by:)`, for the inlinable ``StateCoding/dictionary()``.
@usableFromInline
func rehomedDictionaries<K: Hashable, V>(_ states: [[K: V]], by partitioner: HashPartitioner) -> [[K: V]] {
    CheckpointCoding.rehomed(states, by: partitioner)
}

extension DStream {
    /// The block encodings of a stateful stream's keys and values (`values`: what they are, e.g. "state").
    /// - Throws: ``StreamingError`` (`invalidGraph`) naming the stream and the type without one.
    func keyedCodecs<K, V>(_: K.Type, _: V.Type, values: String) throws -> (ElementCodec<K>, ElementCodec<V>) {
        try CheckpointCoding.codecs(K.self, V.self, of: "\(name) stream \(id)", values: values)
    }

    /// Writes `timeline`'s state after the stream's last batch at or before `time` (computed first if need be);
    /// returns that batch's time, nil when the stream had no batch yet.
    @discardableResult
    func writeState<K, V, Store, Output>(
        _ timeline: StateTimeline<Store, Output>, _ coding: StateCoding<K, V, Store>,
        codecs: (ElementCodec<K>, ElementCodec<V>), at time: Time, to writer: inout BinaryWriter
    ) throws -> Time? {
        guard let zero = zeroTime else { return nil }
        let (key, value, save) = (codecs.0, codecs.1, coding.save)
        return try timeline.writeCheckpoint(
            at: time, zero: zero, engine: context.engine, to: &writer, computing: { _ = try getOrCompute($0) }
        ) { store, out in try save(store, key, value, &out) }
    }

    /// Restores what ``writeState(_:_:codecs:at:to:)`` wrote, each key placed by `partitioner` (with `output` as
    /// the restored batch's output); returns the batch's time, nil when there was no state.
    @discardableResult
    func restoreState<K, V, Store, Output>(
        _ timeline: StateTimeline<Store, Output>, _ coding: StateCoding<K, V, Store>,
        codecs: (ElementCodec<K>, ElementCodec<V>), partitioner: HashPartitioner, output: Output,
        from reader: inout BinaryReader
    ) throws -> Time? {
        let (key, value, load, rehome) = (codecs.0, codecs.1, coding.load, coding.rehome)
        return try timeline.restoreCheckpoint(
            from: &reader, engine: context.engine, output: output, rehome: { rehome($0, partitioner) }
        ) { try load(&$0, key, value) }
    }
}
