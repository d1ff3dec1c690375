import SluiceColumnar
import SluiceExecution

/// The union, at each slide, of the parent's RDDs in the last `windowDuration` (Spark's `WindowedDStream`):
/// the RDDs at times in `(t - window, t]`. Window and slide must be multiples of the parent's slide (checked at
/// `start()`). The parent's RDDs are persisted while the window needs them, at `memoryAndDisk`, so a long
/// window spills to disk under the memory budget instead of failing (Spark keeps them `MEMORY_ONLY_SER`).
///
/// A checkpoint holds the parent's RDDs still in the window, in their block encoding (`codec`).
final class WindowedDStream<T: Sendable>: DStream<T>, @unchecked Sendable {
    let parent: DStream<T>
    let windowDuration: Duration
    let codec: ElementCodec<T>?

    init(parent: DStream<T>, windowDuration: Duration, slideDuration: Duration, codec: ElementCodec<T>?) {
        self.parent = parent
        self.windowDuration = windowDuration
        self.codec = codec
        super.init(context: parent.context, name: "window", slideDuration: slideDuration, parents: [parent])
        if parent.storageLevel == .none { parent.keepData(at: .memoryAndDisk, readWithin: slideDuration) }
    }

    override func compute(_ time: Time) throws -> RDD<T>? {
        let rdds = try parent.slice(from: time - windowDuration + parent.slideDuration, to: time)
        guard let first = rdds.first else { return context.engine.emptyRDD(of: T.self) }
        return rdds.dropFirst().reduce(first) { $0.union($1) }
    }

    override var parentRememberDuration: Duration { (rememberDuration ?? slideDuration) + windowDuration }

    override var checkpointDetail: String { "window \(windowDuration.sparkDescription)" }

    override func validateAtStart() throws {
        try checkWindow(window: windowDuration, slide: slideDuration, parentSlide: parent.slideDuration, name: name, id: id)
        try super.validateAtStart()
    }
}

extension WindowedDStream: CheckpointedNode {
    var dataCheckpointInterval: Duration? { checkpointInterval ?? defaultStateCheckpointInterval(slide: slideDuration) }

    private func elementCodec() throws -> ElementCodec<T> {
        guard let codec else {
            throw StreamingError(
                .invalidGraph,
                "the window contents of \(name) stream \(id) cannot be checkpointed: \(T.self) has no block "
                    + "encoding; use BlockSerializable elements or pairs of them")
        }
        return codec
    }

    func checkCheckpointable() throws { _ = try elementCodec() }

    /// Writes the parent's RDDs that windows after `time` still cover.
    func writeCheckpoint(at time: Time, to writer: inout BinaryWriter) throws {
        try parent.writeBatches(
            from: time - windowDuration + parent.slideDuration, through: time, codec: try elementCodec(), to: &writer)
    }

    func restoreCheckpoint(from reader: inout BinaryReader, at time: Time) throws {
        try parent.restoreBatches(codec: try elementCodec(), from: &reader)
    }
}

/// Checks Spark's rule for windows: window and slide are positive multiples of the parent's slide.
func checkWindow(window: Duration, slide: Duration, parentSlide: Duration, name: String, id: Int) throws {
    guard window.isMultiple(of: parentSlide) else {
        throw StreamingError(
            .invalidGraph,
            "the window duration of \(name) stream \(id) (\(window.sparkDescription)) must be a multiple of "
                + "its parent's slide duration (\(parentSlide.sparkDescription))")
    }
    guard slide.isMultiple(of: parentSlide) else {
        throw StreamingError(
            .invalidGraph,
            "the slide duration of \(name) stream \(id) (\(slide.sparkDescription)) must be a multiple of "
                + "its parent's slide duration (\(parentSlide.sparkDescription))")
    }
}
