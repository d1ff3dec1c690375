/// The union, at each slide, of the parent's RDDs in the last `windowDuration` (Spark's `WindowedDStream`):
/// the RDDs at times in `(t - window, t]`. Window and slide must be multiples of the parent's slide (checked at
/// `start()`). The parent's RDDs are persisted while the window needs them, at `memoryAndDisk`, so a long
/// window spills to disk under the memory budget instead of failing (Spark keeps them `MEMORY_ONLY_SER`).
final class WindowedDStream<T: Sendable>: DStream<T>, @unchecked Sendable {
    let parent: DStream<T>
    let windowDuration: Duration

    init(parent: DStream<T>, windowDuration: Duration, slideDuration: Duration) {
        self.parent = parent
        self.windowDuration = windowDuration
        super.init(context: parent.context, name: "window", slideDuration: slideDuration, parents: [parent])
        if parent.storageLevel == .none { parent.persist(.memoryAndDisk) }
    }

    override func compute(_ time: Time) throws -> RDD<T>? {
        let rdds = try parent.slice(from: time - windowDuration + parent.slideDuration, to: time)
        guard let first = rdds.first else { return context.engine.emptyRDD(of: T.self) }
        return rdds.dropFirst().reduce(first) { $0.union($1) }
    }

    override var parentRememberDuration: Duration { (rememberDuration ?? slideDuration) + windowDuration }

    override func validateAtStart() throws {
        try checkWindow(window: windowDuration, slide: slideDuration, parentSlide: parent.slideDuration, name: name, id: id)
        try super.validateAtStart()
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
