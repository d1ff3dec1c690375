// Narrow transformations: each wraps its parent's producer and handles a chunk at a time.

extension RDD {
    /// Applies `f` to every element.
    @inlinable
    public func map<U: Sendable>(_ f: @escaping @Sendable (Element) throws -> U) -> RDD<U> {
        mapped(by: ElementFunction(f: f))
    }

    /// Applies `f` to every element, where `f` makes pairs (`map { ($0 % 1000, 1) }` before a `reduceByKey`): the
    /// generic ``map(_:)`` for a pair-making `f`, which hands back the pair's two halves each in its own memory.
    /// As one generic result, the pair is written a half at a time and copied out at once, wider than either
    /// write, which the processor cannot forward from the stores: a stall of some 15 cycles a pair.
    /// `f` owns the element it is handed, so that a pair holding it (`map { ($0, 1) }`) needs no copy of it: where
    /// the parent hands its elements over (`flatMap`'s), each is moved to `f`.
    @inlinable
    public func map<K: Sendable, V: Sendable>(
        _ f: @escaping @Sendable (consuming Element) throws -> (K, V)
    ) -> RDD<(K, V)> {
        if let parent = produceHandingOver {
            return derive(elementwise: true) { p, sink in try mapTaking(from: parent, p, to: sink, f) }
        }
        return mapped(by: PairFunction(f: f))
    }

    /// Applies `f` to every element and flattens the sequences it returns.
    /// Elements that hold references (`String`s, say) are also handed over to a consumer that takes them (the
    /// pair-making ``map(_:)``): see ``produceHandingOver``.
    @inlinable
    public func flatMap<S: Sequence & SendableMetatype>(
        _ f: @escaping @Sendable (Element) throws -> S
    ) -> RDD<S.Element> where S.Element: Sendable {
        let parent = produce
        if S.self == ASCIIWords.self {
            // The word path: a line's words cut out in one pass over its bytes, straight into the buffer (the type
            // check is resolved where the call is specialized; S is ASCIIWords, so its elements are words).
            return derive(elementwise: true) { p, sink in
                var out = ChunkBuffer<S.Element>()
                try parent(p) { chunk in
                    for i in chunk.indices {
                        try unsafeBitCast(f(chunk[i]), to: ASCIIWords.self).appendWords(to: &out, sink)
                    }
                    try out.flush(to: sink)
                }
            }
        }
        // Elements with no references gain nothing from being taken: nobody copies or drops them.
        var handingOver: RDD<S.Element>.HandingProducer?
        if !_isPOD(S.Element.self) {
            handingOver = { @Sendable p, sink in
                try flatMapChunks(of: parent, p, f) { try $0.flush(handingOverTo: sink) }
            }
        }
        return derive(elementwise: true, handingOver: handingOver) { p, sink in
            try flatMapChunks(of: parent, p, f) { try $0.flush(to: sink) }
        }
    }

    /// Keeps the elements for which `predicate` is true (the partitioner is kept).
    @inlinable
    public func filter(_ predicate: @escaping @Sendable (Element) throws -> Bool) -> RDD<Element> {
        let parent = produce
        return derive(keepingPartitioner: true, elementwise: true) { p, sink in
            var out = ChunkBuffer<Element>()
            try parent(p) { chunk in
                for i in chunk.indices where try chunk.apply(predicate, at: i) {
                    if out.isFull { try out.flush(to: sink) }
                    out.append(chunk[i])
                }
                try out.flush(to: sink)
            }
        }
    }

    /// Applies `f` to each whole partition (handed over as a ``Partition``, with its index).
    @inlinable
    public func mapPartitions<S: Sequence & SendableMetatype>(
        _ f: @escaping @Sendable (Partition<Element>) throws -> S
    ) -> RDD<S.Element> where S.Element: Sendable {
        let parent = produce
        return derive { p, sink in
            var elements: [Element] = []
            try parent(p) { elements.append(contentsOf: $0) }
            var out = ChunkBuffer<S.Element>()
            for y in try f(Partition(elements: elements, index: p)) {
                out.append(y)
                if out.isFull { try out.flush(to: sink) }
            }
            try out.flush(to: sink)
        }
    }

    /// Each partition as one array element.
    @inlinable
    public func glom() -> RDD<[Element]> {
        mapPartitions { [$0.elements] }
    }

    /// The partitions of `self` followed by those of `other` (Spark's union: no shuffle).
    @inlinable
    public func union(_ other: RDD<Element>) -> RDD<Element> {
        let (first, second, split) = (produce, other.produce, numPartitions)
        return RDD(
            engine: engine, numPartitions: numPartitions + other.numPartitions,
            lineage: lineage.merged(with: other.lineage), sliceable: isSliceable && other.isSliceable
        ) { p, sink in
            if p < split { try first(p, sink) } else { try second(p - split, sink) }
        }
    }
}

extension RDD where Element == Word {
    /// Applies `f` to every word: the generic ``map(_:)`` for an RDD of words, taking `f` as a function of a
    /// ``Word``, so that the word goes to `f` in registers. Through the generic form, it goes through memory the
    /// caller writes just before `f` reads it, and `f` reads the word's one-byte case tag wider than it was
    /// written, which the processor cannot forward from the store: a stall of some 15 cycles a word, most of a
    /// word count's `map { ($0, 1) }`.
    @inlinable
    public func map<U: Sendable>(_ f: @escaping @Sendable (Word) throws -> U) -> RDD<U> {
        mapped(by: WordFunction(f: f))
    }

    /// Applies `f` to every word, where `f` makes a pair keyed by a word (a word count's `map { ($0, 1) }`): the
    /// form of ``map(_:)`` whose `f` hands back its pair's word in registers too (a generic result comes back
    /// through memory, and copying it out reads wider than `f` wrote it: a stall a word again). `f` owns the word
    /// it is handed, so that handing it back is no copy (for `f` to make and the loop to drop).
    @inlinable
    public func map<V: Sendable>(_ f: @escaping @Sendable (consuming Word) throws -> (Word, V)) -> RDD<(Word, V)> {
        mapped(by: WordPairFunction(f: f))
    }

    /// Applies `f` to every word, where `f` makes pairs of another key (`map { ($0.string, 1) }`): the word form of
    /// the pair-making ``map(_:)`` (the word in registers, the pair's halves each in its own memory).
    @inlinable
    public func map<K: Sendable, V: Sendable>(_ f: @escaping @Sendable (Word) throws -> (K, V)) -> RDD<(K, V)> {
        mapped(by: WordToPairFunction(f: f))
    }
}

extension RDD where Element == String {
    /// The words of each line (`flatMap { $0.split(ascii: " ") }`): the generic ``flatMap(_:)`` for a closure that
    /// splits a line, cutting each line's words in one pass over its bytes straight into the output. Taking `f` as
    /// a function to ``ASCIIWords`` passes the line and its words in registers; through the generic form they go
    /// through memory, and the words are copied out of `f`'s result (two retains and two releases a line).
    @inlinable
    public func flatMap(_ f: @escaping @Sendable (consuming String) throws -> ASCIIWords) -> RDD<Word> {
        let parent = produce
        return derive(elementwise: true) { p, sink in
            var out = ChunkBuffer<Word>()
            try parent(p) { chunk in
                for i in chunk.indices { try f(chunk[i]).appendWords(to: &out, sink) }
                try out.flush(to: sink)
            }
        }
    }
}

/// A function of a chunk's element `i`, called in the loop of `map`: a struct rather than a closure, so that the
/// loop, specialized for it, calls the user's function directly (a closure around it is a second indirect call
/// per element, its result copied out through memory once more).
@usableFromInline
protocol ChunkElementFunction<Input, Output>: Sendable {
    associatedtype Input
    associatedtype Output
    func callAsFunction(_ chunk: UnsafeBufferPointer<Input>, _ i: Int) throws -> Output
}

/// `f` of an element, as the generic ``RDD/map(_:)`` calls it.
@usableFromInline
struct ElementFunction<Input, Output>: ChunkElementFunction {
    @usableFromInline let f: @Sendable (Input) throws -> Output
    @inlinable init(f: @escaping @Sendable (Input) throws -> Output) { self.f = f }
    @inlinable @inline(__always)
    func callAsFunction(_ chunk: UnsafeBufferPointer<Input>, _ i: Int) throws -> Output { try chunk.apply(f, at: i) }
}

/// `f` of a word, as the word form of ``RDD/map(_:)`` calls it.
@usableFromInline
struct WordFunction<Output>: ChunkElementFunction {
    @usableFromInline let f: @Sendable (Word) throws -> Output
    @inlinable init(f: @escaping @Sendable (Word) throws -> Output) { self.f = f }
    @inlinable @inline(__always)
    func callAsFunction(_ chunk: UnsafeBufferPointer<Word>, _ i: Int) throws -> Output {
        try chunk.withWord(at: i) { try f($0) }
    }
}

/// `f` of an element, where `f` makes a pair, as the pair-making generic ``RDD/map(_:)`` calls it (`f` kept with
/// its own type: as an `(Input) throws -> Output`, it would be called through a thunk that puts its pair in
/// memory as one value).
@usableFromInline
struct PairFunction<Input, K, V>: ChunkElementFunction {
    @usableFromInline let f: @Sendable (consuming Input) throws -> (K, V)
    @inlinable init(f: @escaping @Sendable (consuming Input) throws -> (K, V)) { self.f = f }
    @inlinable @inline(__always)
    func callAsFunction(_ chunk: UnsafeBufferPointer<Input>, _ i: Int) throws -> (K, V) { try f(chunk[i]) }
}

/// `f` of a word, where `f` makes a pair of another key, as that word form of ``RDD/map(_:)`` calls it.
@usableFromInline
struct WordToPairFunction<K, V>: ChunkElementFunction {
    @usableFromInline let f: @Sendable (Word) throws -> (K, V)
    @inlinable init(f: @escaping @Sendable (Word) throws -> (K, V)) { self.f = f }
    @inlinable @inline(__always)
    func callAsFunction(_ chunk: UnsafeBufferPointer<Word>, _ i: Int) throws -> (K, V) {
        try chunk.withWord(at: i) { try f($0) }
    }
}

/// `f` of a word, where `f` makes a pair keyed by a word, as that form of ``RDD/map(_:)`` calls it (`f` kept with its
/// own type: as a `(Word) throws -> Output`, it would be called through a thunk that puts its pair in memory).
@usableFromInline
struct WordPairFunction<V>: ChunkElementFunction {
    @usableFromInline let f: @Sendable (consuming Word) throws -> (Word, V)
    @inlinable init(f: @escaping @Sendable (consuming Word) throws -> (Word, V)) { self.f = f }
    @inlinable @inline(__always)
    func callAsFunction(_ chunk: UnsafeBufferPointer<Word>, _ i: Int) throws -> (Word, V) {
        try chunk.withWord(at: i) { try f($0) }  // the word moves into f: handing it back is no copy
    }
}

extension RDD {
    /// The RDD of `call`'s results for each element: the body of every form of `map`.
    @inlinable
    func mapped<F: ChunkElementFunction>(by call: F) -> RDD<F.Output> where F.Input == Element {
        let parent = produce
        return derive(elementwise: true) { p, sink in try mapChunks(of: parent, p, to: sink, call) }
    }
}

/// The loop of `flatMap`: the elements of `f` of each element `parent` produces for partition `p`, gathered into
/// chunks that `flush` hands on (to a sink that reads them, or one that takes them).
@inlinable
func flatMapChunks<T, S: Sequence>(
    of parent: @escaping RDD<T>.Producer, _ p: Int, _ f: (T) throws -> S,
    flush: (inout ChunkBuffer<S.Element>) throws -> Void
) throws {
    var out = ChunkBuffer<S.Element>()
    try parent(p) { chunk in
        for i in chunk.indices {
            for y in try f(chunk[i]) {
                out.append(y)
                if out.isFull { try flush(&out) }
            }
        }
        try flush(&out)
    }
}

/// The loop of the pair-making `map` over a parent that hands its elements over: each element moved out of its
/// chunk into `f`. When `f` or `sink` throws, the chunk's elements not yet taken are dropped (the sink owns them).
@inlinable
func mapTaking<T, K, V>(
    from parent: @escaping RDD<T>.HandingProducer, _ p: Int, to sink: RDD<(K, V)>.Sink,
    _ f: (consuming T) throws -> (K, V)
) throws {
    var out = ChunkBuffer<(K, V)>()
    try parent(p) { chunk in
        guard let base = chunk.baseAddress else { return }
        var taken = 0
        defer { if taken < chunk.count { (base + taken).deinitialize(count: chunk.count &- taken) } }
        try mapChunk(count: chunk.count, into: &out, sink) { i in
            // Element i is the next one (mapChunk calls in order): initialized, and once moved out no longer the
            // chunk's to drop.
            taken = i &+ 1
            return try f((base + i).move())
        }
    }
}

/// Hands `sink` `call(chunk, i)` of each element `i` of each chunk `parent` produces for partition `p`: the loop of
/// `map`.
@inlinable
func mapChunks<T, U, F: ChunkElementFunction<T, U>>(
    of parent: @escaping RDD<T>.Producer, _ p: Int, to sink: RDD<U>.Sink, _ call: F
) throws {
    var out = ChunkBuffer<U>()
    try parent(p) { chunk in try mapChunk(count: chunk.count, into: &out, sink) { try call(chunk, $0) } }
}

/// Appends `call(i)` for each `i` of `0..<count`, in order, to `out`, handing it to `sink` whenever it fills and
/// at the end: the body of every form of `map`.
@inlinable @inline(__always)
func mapChunk<U>(
    count: Int, into out: inout ChunkBuffer<U>, _ sink: RDD<U>.Sink, _ call: (Int) throws -> U
) throws {
    // Four calls, then four appends: a closure's result comes back through memory it has just written a field at a
    // time, and copying it out at once (16 bytes wide) cannot be forwarded from those stores, a stall of some 15
    // cycles a call. Copied after the next three calls, the first three results are in cache by then.
    var i = 0
    while i &+ 4 <= count {
        if out.count &+ 4 > chunkCapacity { try out.flush(to: sink) }
        let r0 = try call(i)
        let r1 = try call(i &+ 1)
        let r2 = try call(i &+ 2)
        let r3 = try call(i &+ 3)
        out.append(r0)
        out.append(r1)
        out.append(r2)
        out.append(r3)
        i &+= 4
    }
    while i < count {
        if out.isFull { try out.flush(to: sink) }  // a producer's chunk may exceed the capacity
        out.append(try call(i))
        i &+= 1
    }
    try out.flush(to: sink)
}
