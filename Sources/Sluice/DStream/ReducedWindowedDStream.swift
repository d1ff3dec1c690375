import SluiceColumnar
import SluiceExecution

/// `reduceByKeyAndWindow` with an inverse function (Spark's `ReducedWindowedDStream`), computed incrementally:
/// each batch's values are reduced per key once (`reduceByKey`, kept while in the window), and the window's
/// per-key values live in a store updated in place at each slide, removing the batches that leave the window
/// with the inverse function and adding those that enter. The cost of a slide is proportional to the data
/// entering and leaving (plus the output itself), not to the window's length.
///
/// As in Spark: a key stays in the window with its inverse-reduced value (e.g. 0) unless `filter` removes it;
/// output at time t is every key in the window after the slide. A key in leaving data but not in the window
/// (a filter removed it) is skipped, where Spark would fail the batch.
final class ReducedWindowedDStream<K: Hashable & Sendable, V: Sendable>: DStream<(K, V)>, @unchecked Sendable {
    let parent: DStream<(K, V)>
    /// The parent's batches reduced per key, partitioned as the window's store.
    let reduced: DStream<(K, V)>
    let windowDuration: Duration
    let kernel: WindowKernel<K, V>
    let partitioner: HashPartitioner
    let timeline: StateTimeline<[K: V], Void>

    init(
        parent: DStream<(K, V)>, reduced: DStream<(K, V)>, kernel: WindowKernel<K, V>, windowDuration: Duration,
        slideDuration: Duration, numPartitions: Int
    ) {
        self.parent = parent
        self.reduced = reduced
        self.windowDuration = windowDuration
        self.kernel = kernel
        self.partitioner = HashPartitioner(numPartitions: numPartitions)
        self.timeline = StateTimeline(
            name: "reduceByKeyAndWindow", partitions: numPartitions, slide: slideDuration, empty: [:],
            memory: parent.context.engine.memory,
            bytesPerKey: StateTimeline<[K: V], Void>.estimatedBytesPerKey(K.self, V.self), keyCount: { $0.count })
        super.init(
            context: parent.context, name: "reduceByKeyAndWindow", slideDuration: slideDuration, parents: [reduced])
        reduced.keepData(at: .memoryAndDisk, readWithin: slideDuration)
    }

    override func compute(_ time: Time) throws -> RDD<(K, V)>? {
        guard let zero = zeroTime else { return nil }
        try timeline.recordSteps(through: time, zero: zero) { next, _ in try step(next) }
        let kernel = self.kernel
        return timeline.rdd(engine: context.engine, at: time, partitioner: partitioner) { window, _, sink in
            try kernel.emit(window, sink)
        }
    }

    /// The slide to `time`.
    private func step(_ time: Time) throws -> StateStep<[K: V], Void> {
        let parentSlide = reduced.slideDuration
        // Entering: the batches in (t - slide, t]; leaving: those in (t - slide - window, t - window].
        let entering = try reduced.slice(from: time - slideDuration + parentSlide, to: time)
        let leaving = try reduced.slice(
            from: time - slideDuration - windowDuration + parentSlide, to: time - windowDuration)
        let kernel = self.kernel
        let lineage = (entering + leaving).reduce(Lineage()) { $0.merged(with: $1.stages) }
        return StateStep(time: time, lineage: lineage) { p, window in
            var touched: [K] = []
            for rdd in leaving { try rdd.computePartition(p) { chunk in try kernel.subtract(chunk, &window, &touched) } }
            for rdd in entering { try rdd.computePartition(p) { chunk in try kernel.add(chunk, &window, &touched) } }
            try kernel.filter(&window, touched)
        }
    }

    override var mustCheckpoint: Bool { true }

    override var checkpointDetail: String { "window \(windowDuration.sparkDescription)" }

    override func remember(_ duration: Duration) {
        timeline.keepStates(for: duration)
        super.remember(duration)
    }

    override var parentRememberDuration: Duration { (rememberDuration ?? slideDuration) + windowDuration }

    override func clearMetadata(_ time: Time) {
        timeline.prune(before: time - max(rememberDuration ?? slideDuration, slideDuration))
        super.clearMetadata(time)
    }

    override func validateAtStart() throws {
        try checkWindow(
            window: windowDuration, slide: slideDuration, parentSlide: parent.slideDuration, name: name, id: id)
        try super.validateAtStart()
    }
}

extension ReducedWindowedDStream: CheckpointedNode {
    var dataCheckpointInterval: Duration? { checkpointInterval ?? defaultStateCheckpointInterval(slide: slideDuration) }

    private func codecs() throws -> (ElementCodec<K>, ElementCodec<V>) { try keyedCodecs(K.self, V.self, values: "values") }

    func checkCheckpointable() throws { _ = try codecs() }

    /// Writes the window's per-key values after the last slide at or before `time`, and the reduced batches
    /// still in that window (the later slides remove them with the inverse function).
    func writeCheckpoint(at time: Time, to writer: inout BinaryWriter) throws {
        let codecs = try codecs()
        guard let at = try writeState(timeline, kernel.checkpoint, codecs: codecs, at: time, to: &writer) else { return }
        try reduced.writeBatches(
            from: at - windowDuration + reduced.slideDuration, through: at, codec: ElementCodecs.pair(codecs.0, codecs.1),
            to: &writer)
    }

    func restoreCheckpoint(from reader: inout BinaryReader, at time: Time) throws {
        let codecs = try codecs()
        let restored = try restoreState(
            timeline, kernel.checkpoint, codecs: codecs, partitioner: partitioner, output: (), from: &reader)
        guard restored != nil else { return }
        try reduced.restoreBatches(
            codec: ElementCodecs.pair(codecs.0, codecs.1), partitions: partitioner.numPartitions, from: &reader)
    }
}

/// The per-key work of an incremental window, built where the operator is called so that it is specialized for
/// the program's types.
@usableFromInline
struct WindowKernel<K: Hashable & Sendable, V: Sendable>: Sendable {
    /// Removes a leaving batch's values with the inverse function (keys not in the window are skipped).
    let subtract: @Sendable (UnsafeBufferPointer<(K, V)>, inout [K: V], inout [K]) throws -> Void
    /// Adds an entering batch's values with the reduce function.
    let add: @Sendable (UnsafeBufferPointer<(K, V)>, inout [K: V], inout [K]) throws -> Void
    /// Drops the touched keys the filter rejects.
    let filter: @Sendable (inout [K: V], [K]) throws -> Void
    let emit: @Sendable ([K: V], (UnsafeBufferPointer<(K, V)>) throws -> Void) throws -> Void
    let checkpoint: StateCoding<K, V, [K: V]>

    @usableFromInline
    init(
        subtract: @escaping @Sendable (UnsafeBufferPointer<(K, V)>, inout [K: V], inout [K]) throws -> Void,
        add: @escaping @Sendable (UnsafeBufferPointer<(K, V)>, inout [K: V], inout [K]) throws -> Void,
        filter: @escaping @Sendable (inout [K: V], [K]) throws -> Void,
        emit: @escaping @Sendable ([K: V], (UnsafeBufferPointer<(K, V)>) throws -> Void) throws -> Void,
        checkpoint: StateCoding<K, V, [K: V]>
    ) {
        self.checkpoint = checkpoint
        self.subtract = subtract
        self.add = add
        self.filter = filter
        self.emit = emit
    }

    @inlinable
    static func make(
        reduce: @escaping @Sendable (V, V) throws -> V, inverse: @escaping @Sendable (V, V) throws -> V,
        filter: (@Sendable ((K, V)) throws -> Bool)?
    ) -> WindowKernel {
        WindowKernel(
            subtract: { chunk, window, touched in
                for (key, value) in chunk {
                    guard let current = window[key] else { continue }
                    window[key] = try inverse(current, value)
                    touched.append(key)
                }
            },
            add: { chunk, window, touched in
                for (key, value) in chunk {
                    window[key] = try window[key].map { try reduce($0, value) } ?? value
                    touched.append(key)
                }
            },
            filter: { window, touched in
                guard let filter else { return }
                for key in touched {
                    if let value = window[key], try !filter((key, value)) { window[key] = nil }
                }
            },
            emit: { window, sink in try emitPairs(window, to: sink) },
            checkpoint: .dictionary())
    }
}
