// Stateless per-batch transformations (the guide's table), each an RDD operation applied to every batch.

extension DStream {
    /// Applies `f` to every element.
    @inlinable
    public func map<U: Sendable>(_ f: @escaping @Sendable (Element) throws -> U) -> DStream<U> {
        MappedDStream(parent: self, name: "map") { $0.map(f) }
    }

    /// Applies `f` to every element, where `f` makes pairs (the pair-making form of `RDD.map`: the pair's halves
    /// come back each in its own memory; `f` owns the element, so that a pair holding it needs no copy).
    @inlinable
    public func map<K: Sendable, V: Sendable>(
        _ f: @escaping @Sendable (consuming Element) throws -> (K, V)
    ) -> DStream<(K, V)> {
        MappedDStream(parent: self, name: "map") { $0.map(f) }
    }

    /// Applies `f` to every element and flattens the sequences it returns.
    @inlinable
    public func flatMap<S: Sequence & SendableMetatype>(
        _ f: @escaping @Sendable (Element) throws -> S
    ) -> DStream<S.Element> where S.Element: Sendable {
        MappedDStream(parent: self, name: "flatMap") { $0.flatMap(f) }
    }

    /// Keeps the elements for which `predicate` is true.
    @inlinable
    public func filter(_ predicate: @escaping @Sendable (Element) throws -> Bool) -> DStream<Element> {
        MappedDStream(parent: self, name: "filter") { $0.filter(predicate) }
    }

    /// Applies `f` to each partition of each batch.
    @inlinable
    public func mapPartitions<S: Sequence & SendableMetatype>(
        _ f: @escaping @Sendable (Partition<Element>) throws -> S
    ) -> DStream<S.Element> where S.Element: Sendable {
        MappedDStream(parent: self, name: "mapPartitions") { $0.mapPartitions(f) }
    }

    /// Each partition of each batch as one array.
    @inlinable
    public func glom() -> DStream<[Element]> {
        MappedDStream(parent: self, name: "glom") { $0.glom() }
    }

    /// Each batch spread evenly over `numPartitions` partitions (a shuffle; Spark does it as a `transform`,
    /// so a batch with no RDD fails).
    public func repartition(_ numPartitions: Int) -> DStream<Element> {
        let n = partitions(numPartitions, for: "repartition")
        return TransformedDStream(context: context, parents: [self], name: "repartition") { [self] time in
            try requireRDD(at: time, for: "repartition").repartition(n)
        }
    }

    /// Each batch's elements with those of `other`'s batch at the same time (both streams must slide alike).
    public func union(_ other: DStream<Element>) -> DStream<Element> {
        UnionDStream(context: context, parents: [self, other])
    }

    /// A one-element RDD per batch: the number of elements (0 for an empty batch).
    public func count() -> DStream<Int> {
        TransformedDStream(context: context, parents: [self], name: "count") { [self] time in
            try requireRDD(at: time, for: "count").countAsRDD()
        }
    }

    /// A one-element RDD per batch: the elements combined with `f` (associative); nothing for an empty batch.
    @inlinable
    public func reduce(_ f: @escaping @Sendable (Element, Element) throws -> Element) -> DStream<Element> {
        MappedDStream(parent: self, name: "reduce") { $0.reduceAsRDD(f) }
    }

    /// Each distinct element of a batch with its number of occurrences.
    @inlinable
    public func countByValue(numPartitions: Int? = nil) -> DStream<(Element, Int)> where Element: Hashable {
        let n = partitions(numPartitions, for: "countByValue")
        return MappedDStream(parent: self, name: "countByValue") {
            $0.map { ($0, 1) }.reduceByKey(+, numPartitions: n)
        }
    }

    /// Each batch's RDD transformed by `f`, which may use any RDD operation (joins with a static dataset,
    /// ...). `f` runs when the batch is generated; a batch with no RDD fails.
    @inlinable
    public func transform<U: Sendable>(_ f: @escaping @Sendable (RDD<Element>) throws -> RDD<U>) -> DStream<U> {
        transform { rdd, _ in try f(rdd) }
    }

    /// As ``transform(_:)-...``, with the batch time.
    @inlinable
    public func transform<U: Sendable>(_ f: @escaping @Sendable (RDD<Element>, Time) throws -> RDD<U>) -> DStream<U> {
        TransformedDStream(context: context, parents: [self], name: "transform") { [self] time in
            try f(try requireRDD(at: time, for: "transform"), time)
        }
    }

    /// Each batch's RDD combined with `other`'s at the same time by `f` (both streams must slide alike).
    @inlinable
    public func transformWith<U: Sendable, V: Sendable>(
        _ other: DStream<U>, _ f: @escaping @Sendable (RDD<Element>, RDD<U>) throws -> RDD<V>
    ) -> DStream<V> {
        TransformedDStream(context: context, parents: [self, other], name: "transformWith") { [self] time in
            try f(try requireRDD(at: time, for: "transformWith"), try other.requireRDD(at: time, for: "transformWith"))
        }
    }
}

extension DStream where Element == Word {
    /// Applies `f` to every word (the word form of `RDD.map`: the word reaches `f` in registers).
    @inlinable
    public func map<U: Sendable>(_ f: @escaping @Sendable (Word) throws -> U) -> DStream<U> {
        MappedDStream(parent: self, name: "map") { $0.map(f) }
    }

    /// Applies `f` to every word, making pairs keyed by words (the word form of `RDD.map` for pairs: word and
    /// pair both pass in registers, and the word is `f`'s to hand back without a copy).
    @inlinable
    public func map<V: Sendable>(_ f: @escaping @Sendable (consuming Word) throws -> (Word, V)) -> DStream<(Word, V)> {
        MappedDStream(parent: self, name: "map") { $0.map(f) }
    }

    /// Applies `f` to every word, making pairs of another key (the word in registers, the pair's halves each in
    /// its own memory).
    @inlinable
    public func map<K: Sendable, V: Sendable>(_ f: @escaping @Sendable (Word) throws -> (K, V)) -> DStream<(K, V)> {
        MappedDStream(parent: self, name: "map") { $0.map(f) }
    }
}

extension DStream where Element == String {
    /// The words of each line, for a closure that splits a line (`flatMap { $0.split(ascii: " ") }`): the word
    /// path's form of `flatMap` (`RDD.flatMap` of a line-splitting closure).
    @inlinable
    public func flatMap(_ f: @escaping @Sendable (consuming String) throws -> ASCIIWords) -> DStream<Word> {
        MappedDStream(parent: self, name: "flatMap") { $0.flatMap(f) }
    }
}
