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
                "\(what) cannot be checkpointed: \(T.self) has no block encoding; use a BlockSerializable type "
                    + "(Int, String, Double, Bool, arrays and optionals of them, or a Codable type declared "
                    + "BlockSerializable)")
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

    /// An RDD of the contents ``write(_:_:to:)`` wrote.
    static func readRDD<T: Sendable>(
        _ codec: ElementCodec<T>, engine: ExecutionEngine, from reader: inout BinaryReader
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
        let restored = hashed ? rehomed(partitions) : partitions
        return RDD.custom(
            engine: engine, numPartitions: restored.count,
            partitioner: hashed ? HashPartitioner(numPartitions: restored.count) : nil, lineage: Lineage()
        ) { p, sink in
            try restored[p].withUnsafeBufferPointer { try emitChunks($0, to: sink) }
        }
    }

    /// Hash-partitioned pairs restored from a checkpoint, each moved to the partition this process gives its
    /// key: a key whose hash code is seeded per process (see `SparkHashCode.isProcessIndependent`) may belong
    /// elsewhere than in the run that wrote it. Unchanged when the elements are not pairs or their keys hash
    /// the same in every process.
    static func rehomed<T>(_ partitions: [[T]]) -> [[T]] {
        guard let first = partitions.lazy.flatMap({ $0 }).first,
            let pair = first as? (any Hashable, Any), !SparkHashCode.isProcessIndependent(type(of: pair.0))
        else { return partitions }
        let partitioner = HashPartitioner(numPartitions: partitions.count)
        var moved = partitions.map { _ in [T]() }
        for (p, partition) in partitions.enumerated() {
            for element in partition {
                // Every element has the first's type; the fallback keeps an element where it was.
                guard let pair = element as? (any Hashable, Any) else {
                    moved[p].append(element)
                    continue
                }
                let key: any Hashable = pair.0
                moved[partitioner.partition(for: key)].append(element)
            }
        }
        return moved
    }

    /// Per-partition key-value states restored from a checkpoint, each key moved to the partition `partitioner`
    /// gives it in this process (see ``rehomed(_:)``); unchanged when the keys hash the same in every process.
    static func rehomed<K: Hashable, V>(_ states: [[K: V]], by partitioner: HashPartitioner) -> [[K: V]] {
        guard !SparkHashCode.isProcessIndependent(K.self) else { return states }
        var moved = states.map { _ in [K: V]() }
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

    /// Makes the batches ``writeBatches(from:through:codec:to:)`` wrote the stream's RDDs at their times.
    func restoreBatches(codec: ElementCodec<Element>, from reader: inout BinaryReader) throws {
        for _ in 0..<(try reader.readCount(for: "window batches")) {
            let time = Time(milliseconds: try reader.readVarInt())
            restoreRDD(try CheckpointCoding.readRDD(codec, engine: context.engine, from: &reader), at: time)
        }
    }
}

/// Writes and reads a partition's `[K: V]` state for checkpoints. Made where a stateful operator is called,
/// so that the loops are specialized for the program's types (several times faster than generic code on a
/// million keys).
@usableFromInline
struct DictionaryCheckpoint<K: Hashable & Sendable, V: Sendable>: Sendable {
    let save: @Sendable ([K: V], ElementCodec<K>, ElementCodec<V>, inout BinaryWriter) throws -> Void
    let load: @Sendable (inout BinaryReader, ElementCodec<K>, ElementCodec<V>) throws -> [K: V]

    @usableFromInline
    init(
        save: @escaping @Sendable ([K: V], ElementCodec<K>, ElementCodec<V>, inout BinaryWriter) throws -> Void,
        load: @escaping @Sendable (inout BinaryReader, ElementCodec<K>, ElementCodec<V>) throws -> [K: V]
    ) {
        self.save = save
        self.load = load
    }

    @inlinable
    static func make() -> DictionaryCheckpoint {
        DictionaryCheckpoint(
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
            })
    }
}
