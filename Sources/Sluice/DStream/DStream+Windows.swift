import SluiceColumnar

// Window operations (the guide's table). Window and slide durations must be multiples of the parent's slide;
// `start()` says so otherwise.

extension DStream {
    /// The union of the stream's RDDs over the last `windowDuration`, every `slideDuration` (default: this
    /// stream's slide).
    public func window(windowDuration: Duration, slideDuration: Duration? = nil) -> DStream<Element> {
        WindowedDStream(
            parent: self, windowDuration: windowDuration, slideDuration: slideDuration ?? self.slideDuration,
            codec: ElementCodecs.lookup(Element.self))
    }

    /// The number of elements in each window, computed incrementally (`map { 1 }`, then `reduceByWindow` with
    /// + and -, as Spark does: a window emptied after data emits 0).
    public func countByWindow(windowDuration: Duration, slideDuration: Duration) -> DStream<Int> {
        map { _ in 1 }.reduceByWindow(+, inverse: -, windowDuration: windowDuration, slideDuration: slideDuration)
    }

    /// Each window's elements combined with `f`: each batch is reduced, then the window's batch results.
    @inlinable
    public func reduceByWindow(
        _ f: @escaping @Sendable (Element, Element) throws -> Element, windowDuration: Duration, slideDuration: Duration
    ) -> DStream<Element> {
        reduce(f).window(windowDuration: windowDuration, slideDuration: slideDuration).reduce(f)
    }

    /// Each window's elements combined with `f`, incrementally: `inverse` removes the batches that leave the
    /// window (Spark runs it on one key in one partition, as here).
    public func reduceByWindow(
        _ f: @escaping @Sendable (Element, Element) throws -> Element,
        inverse: @escaping @Sendable (Element, Element) throws -> Element,
        windowDuration: Duration, slideDuration: Duration
    ) -> DStream<Element> {
        map { (1, $0) }.reduceByKeyAndWindow(
            f, inverse: inverse, windowDuration: windowDuration, slideDuration: slideDuration, numPartitions: 1
        ).map { $0.1 }
    }

    /// Each distinct element of each window with its count, computed incrementally; elements whose count
    /// falls to 0 leave the result.
    public func countByValueAndWindow(
        windowDuration: Duration, slideDuration: Duration, numPartitions: Int? = nil
    ) -> DStream<(Element, Int)> where Element: Hashable {
        map { ($0, 1) }.reduceByKeyAndWindow(
            +, inverse: -, windowDuration: windowDuration, slideDuration: slideDuration,
            numPartitions: numPartitions, filter: { $0.1 != 0 })
    }

    /// Each key's values over each window merged with `f`. With `inverse` the window is maintained
    /// incrementally (a key's value has leaving batches removed with `inverse`, entering ones added with `f`;
    /// needs a checkpoint directory, as in Spark); without it each batch is reduced and the window's results
    /// merged. `filter` drops pairs from the result (and, with `inverse`, from the window's state).
    @inlinable
    public func reduceByKeyAndWindow<K: Hashable & Sendable, V: Sendable>(
        _ f: @escaping @Sendable (V, V) throws -> V, inverse: (@Sendable (V, V) throws -> V)? = nil,
        windowDuration: Duration, slideDuration: Duration? = nil, numPartitions: Int? = nil,
        filter: (@Sendable ((K, V)) throws -> Bool)? = nil
    ) -> DStream<(K, V)> where Element == (K, V) {
        let n = partitions(numPartitions, for: "reduceByKeyAndWindow")
        let slide = slideDuration ?? self.slideDuration
        guard let inverse else {
            let windowed = reduceByKey(f, numPartitions: n).window(windowDuration: windowDuration, slideDuration: slide)
                .reduceByKey(f, numPartitions: n)
            guard let filter else { return windowed }
            return windowed.filter(filter)
        }
        return makeReducedWindow(
            reduced: reduceByKey(f, numPartitions: n), kernel: .make(reduce: f, inverse: inverse, filter: filter),
            windowDuration, slide, n)
    }

    @usableFromInline
    func makeReducedWindow<K: Hashable & Sendable, V: Sendable>(
        reduced: DStream<(K, V)>, kernel: WindowKernel<K, V>, _ window: Duration, _ slide: Duration, _ n: Int
    ) -> DStream<(K, V)> where Element == (K, V) {
        ReducedWindowedDStream(
            parent: self, reduced: reduced, kernel: kernel, windowDuration: window, slideDuration: slide,
            numPartitions: n)
    }

    /// Each key with all its values over each window.
    @inlinable
    public func groupByKeyAndWindow<K: Hashable & Sendable, V: Sendable>(
        windowDuration: Duration, slideDuration: Duration? = nil, numPartitions: Int? = nil
    ) -> DStream<(K, [V])> where Element == (K, V) {
        window(windowDuration: windowDuration, slideDuration: slideDuration).groupByKey(numPartitions: numPartitions)
    }
}
