import SluiceColumnar

// Operations on RDDs of (key, value) pairs. Shuffles combine on the map side; keys of type `Int`, `String` and
// `Word` take fast paths (a bijective integer hash; byte-level hashing and key storage; the hash a word carries),
// other keys use `hashValue`.

extension RDD {
    /// The partitioner for a shuffle of this RDD (and `others`), as Spark's `defaultPartitioner` chooses it:
    /// `numPartitions` when given; else the partitioner of the input with the most partitions, if it has one;
    /// else `spark.default.parallelism` when set; else the largest input's partition count. Nil for a
    /// `numPartitions` outside ``HashPartitioner/validCounts`` (the operation then returns
    /// ``ExecutionEngine/refused(_:numPartitions:)``).
    @inlinable
    func shufflePartitioner(_ numPartitions: Int?, others: [(Int, HashPartitioner?)] = []) -> HashPartitioner? {
        if let numPartitions {
            guard HashPartitioner.validCounts.contains(numPartitions) else { return nil }
            return HashPartitioner(numPartitions: numPartitions)
        }
        let inputs = [(self.numPartitions, partitioner)] + others
        if let existing = inputs.filter({ $0.1 != nil }).max(by: { $0.0 < $1.0 })?.1 { return existing }
        if engine.parallelismIsConfigured { return HashPartitioner(numPartitions: engine.defaultParallelism) }
        return HashPartitioner(numPartitions: max(1, inputs.map(\.0).max() ?? 1))
    }

    // MARK: Aggregations

    /// Combines each key's values with `createCombiner`, `mergeValue` and `mergeCombiners` (Spark's
    /// `combineByKey`); map-side combining is on.
    @inlinable
    public func combineByKey<K: Hashable & Sendable, V: Sendable, C: Sendable>(
        createCombiner: @escaping @Sendable (V) throws -> C,
        mergeValue: @escaping @Sendable (C, V) throws -> C,
        mergeCombiners: @escaping @Sendable (C, C) throws -> C,
        numPartitions: Int? = nil
    ) -> RDD<(K, C)> where Element == (K, V) {
        guard let partitioner = shufflePartitioner(numPartitions) else {
            return engine.refused("combineByKey", numPartitions: numPartitions)
        }
        return combined(
            Aggregator(
                createCombiner: createCombiner, mergeValue: { $0 = try mergeValue($0, $1) },
                mergeCombiners: { $0 = try mergeCombiners($0, $1) }, reduce: mergeValue),
            by: partitioner,
            traits: CombinerTraits(codec: { ElementCodecs.lookup(C.self, sample: $0) }))
    }

    /// Merges each key's values with `f` (associative and commutative, as in Spark).
    @inlinable
    public func reduceByKey<K: Hashable & Sendable, V: Sendable>(
        _ f: @escaping @Sendable (V, V) throws -> V, numPartitions: Int? = nil
    ) -> RDD<(K, V)> where Element == (K, V) {
        reducedByKey(f, intReduce: nil, numPartitions: numPartitions)
    }

    /// `reduceByKey` of `Int` values (counts): the function is called as a function of `Int`s, its arguments in
    /// registers (see `Aggregator`). The compiler picks this form by itself.
    @inlinable
    public func reduceByKey<K: Hashable & Sendable>(
        _ f: @escaping @Sendable (Int, Int) throws -> Int, numPartitions: Int? = nil
    ) -> RDD<(K, Int)> where Element == (K, Int) {
        reducedByKey(f, intReduce: f, numPartitions: numPartitions)
    }

    @inlinable
    func reducedByKey<K: Hashable & Sendable, V: Sendable>(
        _ f: @escaping @Sendable (V, V) throws -> V, intReduce: (@Sendable (Int, Int) throws -> Int)?,
        numPartitions: Int?
    ) -> RDD<(K, V)> where Element == (K, V) {
        guard let partitioner = shufflePartitioner(numPartitions) else {
            return engine.refused("reduceByKey", numPartitions: numPartitions)
        }
        return combined(
            Aggregator(
                createCombiner: { $0 }, mergeValue: { $0 = try f($0, $1) }, mergeCombiners: { $0 = try f($0, $1) },
                reduce: f, intReduce: intReduce),
            by: partitioner,
            traits: CombinerTraits(codec: { ElementCodecs.lookup(V.self, sample: $0) }))
    }

    /// Each key with all its values (their order within a key is not defined, as in Spark).
    @inlinable
    public func groupByKey<K: Hashable & Sendable, V: Sendable>(numPartitions: Int? = nil) -> RDD<(K, [V])>
    where Element == (K, V) {
        guard let partitioner = shufflePartitioner(numPartitions) else {
            return engine.refused("groupByKey", numPartitions: numPartitions)
        }
        return combined(
            Aggregator(
                createCombiner: { [$0] }, mergeValue: { $0.append($1) }, mergeCombiners: { $0.append(contentsOf: $1) }),
            by: partitioner, traits: .grouping(V.self))
    }

    /// The pairs spread over `numPartitions` partitions by their keys' hash codes (see ``HashPartitioner``),
    /// keeping every pair (no combining): within a partition, the pairs of each input partition keep their
    /// order, as in Spark. An RDD already partitioned that way is returned as it is.
    @inlinable
    public func partitionBy<K: Hashable & Sendable, V: Sendable>(_ numPartitions: Int) -> RDD<(K, V)>
    where Element == (K, V) {
        guard let target = shufflePartitioner(numPartitions) else {
            return engine.refused("partitionBy", numPartitions: numPartitions)
        }
        if partitioner == target { return self }
        let moved = routed(into: target.numPartitions) { _ in KeyRouter<K, V>(target) }
        return RDD(
            engine: engine, numPartitions: target.numPartitions, partitioner: target, lineage: moved.lineage,
            produce: moved.produce)
    }

    /// The elements moved to the partition a router names (in `0..<n`) through a shuffle that keeps every
    /// element: the map side appends each chunk's elements to their targets' lists (one list per target, not
    /// per key), the reduce side of partition r emits every map spill's and table's list for r, one after
    /// another (not merged into one list first: that would copy every element once more), so that each input
    /// partition's elements keep their order even when the map side spilled. A list is a run of pieces of at
    /// most ``RoutedPieces/pieceBytes`` (see there). `makeRouter(p)` makes the router of input partition p, used
    /// by that partition's task only (so it may keep state, such as a round-robin position).
    @inlinable
    func routed<R: Router>(into n: Int, _ makeRouter: @escaping @Sendable (Int) -> R) -> RDD<Element>
    where R.Element == Element {
        let parent = produce
        let pieceCapacity = RoutedPieces.pieceCapacity(of: Element.self)
        let input = ShuffleInput<IntKeys, [[Element]]>(numPartitions: numPartitions, lineage: lineage) { p, table, stage in
            var router = makeRouter(p)
            var sorter = RouteSorter<Element>(targetCount: n)
            try parent(p) { chunk in
                sorter.sort(chunk, by: &router) { target, elements in
                    table.upsert(
                        target, create: { RoutedPieces.make(elements, pieceCapacity: pieceCapacity) },
                        merge: { RoutedPieces.append(elements, to: &$0, pieceCapacity: pieceCapacity) })
                    table.heldValues &+= elements.count &- 1  // upsert counted one
                }
                try stage.chunkDone(&table)
            }
        }
        // Keys below n are their own hash code, so key r lands in partition r.
        let stage = ShuffleStage(
            engine: engine, partitioner: HashPartitioner(numPartitions: n), inputs: [input],
            mergeCombiners: { $0.append(contentsOf: $1) }, traits: .routing(Element.self))
        let lists = stage.rdd(keyedBy: Int.self, merging: false)
        let produceLists = lists.produce
        return RDD(engine: engine, numPartitions: n, lineage: lists.lineage) { r, sink in
            try produceLists(r) { chunk in
                for (_, pieces) in chunk {
                    for piece in pieces { try piece.withUnsafeBufferPointer { try emitChunks($0, to: sink) } }
                }
            }
        }
    }

    /// Combines by key with `aggregator`: no shuffle when the RDD is already partitioned by `partitioner`.
    @inlinable
    func combined<K: Hashable & Sendable, V: Sendable, C: Sendable>(
        _ aggregator: Aggregator<V, C>, by partitioner: HashPartitioner, traits: CombinerTraits<C>
    ) -> RDD<(K, C)> where Element == (K, V) {
        if partitioner == self.partitioner { return combinedInPlace(aggregator) }
        if K.self == Int.self { return shuffled(IntKeys.self, aggregator, partitioner, traits) }
        if K.self == String.self { return shuffled(StringKeys.self, aggregator, partitioner, traits) }
        if K.self == Word.self { return shuffled(WordKeys.self, aggregator, partitioner, traits) }
        return shuffled(HashableKeys<K>.self, aggregator, partitioner, traits)
    }

    @inlinable
    func shuffled<Keys: KeyColumn, K: Sendable, V: Sendable, C: Sendable>(
        _ keys: Keys.Type, _ aggregator: Aggregator<V, C>, _ partitioner: HashPartitioner,
        _ traits: CombinerTraits<C>
    ) -> RDD<(K, C)> where Element == (K, V) {
        let input = combiningInput(keys, aggregator)
        return ShuffleStage(
            engine: engine, partitioner: partitioner, inputs: [input], mergeCombiners: aggregator.mergeCombiners,
            traits: traits
        ).rdd(keyedBy: K.self)
    }

    /// The map side of a shuffle of this RDD's pairs, combining values with `aggregator`.
    @inlinable
    func combiningInput<Keys: KeyColumn, V, C>(_ keys: Keys.Type, _ aggregator: Aggregator<V, C>) -> ShuffleInput<Keys, C> {
        let parent = produce
        // Combining does not depend on the order of a partition's pairs, so the stage may split partitions.
        return ShuffleInput(numPartitions: numPartitions, lineage: lineage, sliceable: isSliceable) { p, table, stage in
            try parent(p) { chunk in
                let pairs = chunk.same(as: (Keys.Key, V).self)
                if let reduce = aggregator.intReduce, V.self == Int.self, C.self == Int.self {
                    // Safe: V and C are Int here (checked just above), so each cast is the identity.
                    try table.upsert(pairs, create: aggregator.createCombiner) { c, v in
                        let sum = try reduce(unsafeBitCast(c, to: Int.self), unsafeBitCast(v, to: Int.self))
                        c = unsafeBitCast(sum, to: C.self)
                    }
                } else if let reduce = aggregator.reduce {
                    try table.upsert(pairs, create: aggregator.createCombiner, merge: { $0 = try reduce($0, $1) })
                } else {
                    try table.upsert(pairs, create: aggregator.createCombiner, merge: aggregator.mergeValue)
                }
                try stage.chunkDone(&table)
            }
        }
    }

    /// Combines each partition's pairs by key, for an RDD already partitioned as the combine asks.
    @inlinable
    func combinedInPlace<K: Hashable & Sendable, V: Sendable, C: Sendable>(
        _ aggregator: Aggregator<V, C>
    ) -> RDD<(K, C)> where Element == (K, V) {
        let parent = produce
        return derive(keepingPartitioner: true) { p, sink in
            var table = CombineTable<HashableKeys<K>, C>()
            try parent(p) { chunk in
                try table.upsert(
                    chunk.same(as: (K, V).self), create: aggregator.createCombiner, merge: aggregator.mergeValue)
            }
            var out = ChunkBuffer<(K, C)>()
            for e in 0..<table.count {
                out.append((table.keys.key(at: e), table.combiners[e]))
                if out.isFull { try out.flush(to: sink) }
            }
            try out.flush(to: sink)
        }
    }

    // MARK: Joins

    /// For each key in either RDD, its values in this one and in `other`.
    @inlinable
    public func cogroup<K: Hashable & Sendable, V: Sendable, W: Sendable>(
        _ other: RDD<(K, W)>, numPartitions: Int? = nil
    ) -> RDD<(K, ([V], [W]))> where Element == (K, V) {
        cogroup(other, numPartitions: numPartitions, as: "cogroup")
    }

    /// The cogroup under `operation`'s name (a join's refusal of a partition count names the join).
    @inlinable
    func cogroup<K: Hashable & Sendable, V: Sendable, W: Sendable>(
        _ other: RDD<(K, W)>, numPartitions: Int?, as operation: String
    ) -> RDD<(K, ([V], [W]))> where Element == (K, V) {
        guard let partitioner = shufflePartitioner(numPartitions, others: [(other.numPartitions, other.partitioner)])
        else { return engine.refused(operation, numPartitions: numPartitions) }
        if K.self == Int.self { return cogrouped(IntKeys.self, other, partitioner) }
        if K.self == String.self { return cogrouped(StringKeys.self, other, partitioner) }
        if K.self == Word.self { return cogrouped(WordKeys.self, other, partitioner) }
        return cogrouped(HashableKeys<K>.self, other, partitioner)
    }

    @inlinable
    func cogrouped<Keys: KeyColumn, K: Sendable, V: Sendable, W: Sendable>(
        _ keys: Keys.Type, _ other: RDD<(K, W)>, _ partitioner: HashPartitioner
    ) -> RDD<(K, ([V], [W]))> where Element == (K, V) {
        let left = combiningInput(
            keys,
            Aggregator<V, ([V], [W])>(
                createCombiner: { ([$0], []) }, mergeValue: { $0.0.append($1) }, mergeCombiners: { _, _ in }))
        let right = other.combiningInput(
            keys,
            Aggregator<W, ([V], [W])>(
                createCombiner: { ([], [$0]) }, mergeValue: { $0.1.append($1) }, mergeCombiners: { _, _ in }))
        return ShuffleStage(
            engine: engine, partitioner: partitioner, inputs: [left, right],
            mergeCombiners: { $0.0.append(contentsOf: $1.0); $0.1.append(contentsOf: $1.1) },
            traits: .cogrouping(V.self, W.self)
        ).rdd(keyedBy: K.self)
    }

    /// Pairs of values for each key in both RDDs: for each key, every value here with every value of `other`.
    @inlinable
    public func join<K: Hashable & Sendable, V: Sendable, W: Sendable>(
        _ other: RDD<(K, W)>, numPartitions: Int? = nil
    ) -> RDD<(K, (V, W))> where Element == (K, V) {
        cogroup(other, numPartitions: numPartitions, as: "join").flatMapValues { vs, ws in
            vs.flatMap { v in ws.map { w in (v, w) } }
        }
    }

    /// As ``join(_:numPartitions:)``, keeping keys absent from `other` with `nil`.
    @inlinable
    public func leftOuterJoin<K: Hashable & Sendable, V: Sendable, W: Sendable>(
        _ other: RDD<(K, W)>, numPartitions: Int? = nil
    ) -> RDD<(K, (V, W?))> where Element == (K, V) {
        cogroup(other, numPartitions: numPartitions, as: "leftOuterJoin").flatMapValues { vs, ws -> [(V, W?)] in
            ws.isEmpty ? vs.map { ($0, nil) } : vs.flatMap { v in ws.map { (v, $0) } }
        }
    }

    /// As ``join(_:numPartitions:)``, keeping keys absent from this RDD with `nil`.
    @inlinable
    public func rightOuterJoin<K: Hashable & Sendable, V: Sendable, W: Sendable>(
        _ other: RDD<(K, W)>, numPartitions: Int? = nil
    ) -> RDD<(K, (V?, W))> where Element == (K, V) {
        cogroup(other, numPartitions: numPartitions, as: "rightOuterJoin").flatMapValues { vs, ws -> [(V?, W)] in
            vs.isEmpty ? ws.map { (nil, $0) } : vs.flatMap { v in ws.map { (v, $0) } }
        }
    }

    /// As ``join(_:numPartitions:)``, keeping keys absent from either side with `nil`.
    @inlinable
    public func fullOuterJoin<K: Hashable & Sendable, V: Sendable, W: Sendable>(
        _ other: RDD<(K, W)>, numPartitions: Int? = nil
    ) -> RDD<(K, (V?, W?))> where Element == (K, V) {
        cogroup(other, numPartitions: numPartitions, as: "fullOuterJoin").flatMapValues { vs, ws -> [(V?, W?)] in
            if vs.isEmpty { return ws.map { (nil, $0) } }
            if ws.isEmpty { return vs.map { ($0, nil) } }
            return vs.flatMap { v in ws.map { (v, $0) } }
        }
    }

    // MARK: Narrow pair operations

    /// Applies `f` to each value, keeping keys (and the partitioner).
    @inlinable
    public func mapValues<K: Sendable, V: Sendable, U: Sendable>(
        _ f: @escaping @Sendable (V) throws -> U
    ) -> RDD<(K, U)> where Element == (K, V) {
        let parent = produce
        return derive(keepingPartitioner: true, elementwise: true) { p, sink in
            var out = ChunkBuffer<(K, U)>()
            try parent(p) { chunk in
                for (k, v) in chunk.same(as: (K, V).self) {
                    if out.isFull { try out.flush(to: sink) }
                    out.append((k, try f(v)))
                }
                try out.flush(to: sink)
            }
        }
    }

    /// Applies `f` to each value and pairs the key with each element it returns (keeping the partitioner).
    @inlinable
    public func flatMapValues<K: Sendable, V: Sendable, S: Sequence & SendableMetatype>(
        _ f: @escaping @Sendable (V) throws -> S
    ) -> RDD<(K, S.Element)> where Element == (K, V), S.Element: Sendable {
        let parent = produce
        return derive(keepingPartitioner: true, elementwise: true) { p, sink in
            var out = ChunkBuffer<(K, S.Element)>()
            try parent(p) { chunk in
                for (k, v) in chunk.same(as: (K, V).self) {
                    for u in try f(v) {
                        out.append((k, u))
                        if out.isFull { try out.flush(to: sink) }
                    }
                }
                try out.flush(to: sink)
            }
        }
    }

    /// The keys.
    @inlinable
    public func keys<K: Sendable, V: Sendable>() -> RDD<K> where Element == (K, V) { map { $0.0 } }

    /// The values.
    @inlinable
    public func values<K: Sendable, V: Sendable>() -> RDD<V> where Element == (K, V) { map { $0.1 } }

    // MARK: Pair actions

    /// The number of pairs per key.
    public func countByKey<K: Hashable & Sendable, V: Sendable>() throws -> [K: Int] where Element == (K, V) {
        try mapValues { _ in 1 }.reduceByKey(+).collectAsMap()
    }

    /// The pairs as a dictionary; for a key that appears more than once, the last pair collected wins (as in
    /// Spark).
    public func collectAsMap<K: Hashable & Sendable, V: Sendable>() throws -> [K: V] where Element == (K, V) {
        var map: [K: V] = [:]
        for (k, v) in try collect() { map[k] = v }
        return map
    }
}

extension RDD where Element: Hashable {
    /// The number of times each element occurs.
    public func countByValue() throws -> [Element: Int] {
        try map { ($0, 1) }.countByKey()
    }
}

/// A routing shuffle's list of one target's elements (see ``RDD/routed(into:_:)``), kept as pieces of at most
/// ``pieceBytes`` each rather than one array: a growing array copies its elements at every doubling, and past
/// jemalloc's 8 MiB `oversize_threshold` each new array is fresh memory that the kernel zeroes page by page
/// and takes back on free (a 10M-pair partitionBy spent about a third of its time in page faults).
@usableFromInline
enum RoutedPieces {
    /// A piece's most bytes: far under jemalloc's oversize allocations, big enough that the reduce side emits
    /// whole chunks from it.
    @usableFromInline static var pieceBytes: Int { 256 << 10 }

    /// The most elements of a piece.
    @inlinable
    static func pieceCapacity<E>(of _: E.Type) -> Int { max(chunkCapacity, pieceBytes / max(MemoryLayout<E>.stride, 1)) }

    /// A list of `elements`.
    @inlinable
    static func make<E>(_ elements: UnsafeBufferPointer<E>, pieceCapacity: Int) -> [[E]] {
        var pieces: [[E]] = []
        append(elements, to: &pieces, pieceCapacity: pieceCapacity)
        return pieces
    }

    /// Appends `elements` to `pieces`: the last piece fills up to `pieceCapacity` (growing as an array does, so
    /// that a target with few elements holds no more than an array would), then full-size pieces follow.
    @inlinable
    static func append<E>(_ elements: UnsafeBufferPointer<E>, to pieces: inout [[E]], pieceCapacity: Int) {
        var rest = elements[...]
        if !pieces.isEmpty {
            let room = pieceCapacity - pieces[pieces.count - 1].count
            if room > 0 {
                pieces[pieces.count - 1].append(contentsOf: rest.prefix(room))
                rest = rest.dropFirst(room)
            }
        }
        while !rest.isEmpty {
            var piece: [E] = []
            // The first piece grows as an array does; a target that filled one piece takes a whole piece's room
            // at once for the next.
            piece.reserveCapacity(pieces.isEmpty ? min(rest.count, pieceCapacity) : pieceCapacity)
            piece.append(contentsOf: rest.prefix(pieceCapacity))
            rest = rest.dropFirst(pieceCapacity)
            pieces.append(piece)
        }
    }
}

extension CombinerTraits {
    /// The traits of a routing shuffle's combiners, lists of `V` in pieces (see ``RoutedPieces``).
    @inlinable
    static func routing<V>(_: V.Type) -> CombinerTraits<[[V]]> where C == [[V]] {
        CombinerTraits<[[V]]>(
            bytesPerValue: MemoryLayout<V>.stride, valueCount: { $0.reduce(0) { $0 + $1.count } },
            codec: { pieces in
                // A piece is a grouping combiner: its codec, found from the first piece with a value, as an array.
                let sample = pieces.first { !$0.isEmpty } ?? []
                return ElementCodecs.lookup([[V]].self)
                    ?? CombinerTraits<[V]>.grouping(V.self).codec(sample).map(ElementCodecs.array)
            })
    }

    /// The traits of `groupByKey`'s combiners, arrays of `V`.
    @inlinable
    static func grouping<V>(_: V.Type) -> CombinerTraits<[V]> where C == [V] {
        CombinerTraits<[V]>(
            bytesPerValue: MemoryLayout<V>.stride, valueCount: { $0.count },
            codec: { values in
                ElementCodecs.lookup([V].self)
                    ?? values.first.flatMap { ElementCodecs.lookup(V.self, sample: $0) }.map(ElementCodecs.array)
            })
    }

    /// The traits of `cogroup`'s combiners, pairs of arrays.
    @inlinable
    static func cogrouping<V, W>(_: V.Type, _: W.Type) -> CombinerTraits<([V], [W])> where C == ([V], [W]) {
        CombinerTraits<([V], [W])>(
            bytesPerValue: max(MemoryLayout<V>.stride, MemoryLayout<W>.stride), valueCount: { $0.0.count + $0.1.count },
            codec: { _ in
                guard let vs = ElementCodecs.lookup([V].self), let ws = ElementCodecs.lookup([W].self) else { return nil }
                return ElementCodecs.pair(vs, ws)
            })
    }
}
