import SluiceColumnar
import Synchronization

/// Brings data into a stream from outside (Spark's `Receiver`): subclass it, start your reading in
/// ``onStart()`` (on threads of your own: it must not block) and hand records to ``store(_:)``, one at a time
/// (rate-limited, buffered into a block every block interval) or as a block with ``store(contentsOf:)``
/// (stored at once). Free what `onStart` made in ``onStop()``. On a failure, ``restart(_:error:)`` stops the
/// receiver, waits `spark.streaming.receiverRestartDelay` and starts it again; ``reportError(_:_:)`` only
/// tells listeners; ``stop(_:)`` stops it for good. Loops should end when ``isStopped`` turns true.
///
/// Pass it to `StreamingContext.receiverStream(_:)`; one receiver instance feeds one stream.
open class Receiver<Element: Sendable>: @unchecked Sendable {
    // @unchecked: the supervisor is set once, before the receiver starts, and read under its lock.
    /// How the stream keeps received blocks (Spark's default for receivers: `.memoryAndDiskSer2`).
    public let storageLevel: StorageLevel
    /// The supervisor running it (weak: the stream owns the supervisor, which owns the receiver).
    private let supervisorLock = Mutex<WeakSupervisor>(WeakSupervisor())

    public init(storageLevel: StorageLevel) {
        self.storageLevel = storageLevel
    }

    /// Starts receiving: start threads (or other asynchronous work) that call ``store(_:)``. Must not block.
    open func onStart() {}

    /// Stops receiving: stop and release what ``onStart()`` started.
    open func onStop() {}

    /// The id of the stream this receiver feeds (-1 before it is attached to one).
    public var streamId: Int { supervisor?.streamId ?? -1 }

    /// Whether the receiver was stopped (or never started): reading loops should end.
    public var isStopped: Bool { supervisor?.isReceiverStopped ?? true }

    /// Stores one record. It is rate-limited (`spark.streaming.receiver.maxRate`, backpressure) and buffered:
    /// it reaches the stream with the next block, every `spark.streaming.blockInterval`.
    /// - Throws: ``StreamingError`` when the receiver is not running.
    public func store(_ element: Element) throws {
        try attached().storeOne(element)
    }

    /// Stores `elements` as one block, at once; returns when the block is stored. Not rate-limited.
    /// - Throws: ``StreamingError`` when the receiver is not running or the block could not be stored.
    public func store(contentsOf elements: [Element]) throws {
        try attached().storeBlock(elements)
    }

    /// Stops the receiver, waits `spark.streaming.receiverRestartDelay`, and starts it again (asynchronously:
    /// this returns at once). Listeners see the error and the restart.
    public func restart(_ message: String, error: (any Error)? = nil) {
        supervisor?.restart(message, error: error)
    }

    /// Tells listeners about an error; the receiver keeps running.
    public func reportError(_ message: String, _ error: (any Error)?) {
        supervisor?.reportError(message, error)
    }

    /// Stops the receiver for good.
    public func stop(_ message: String) {
        supervisor?.stop(message, error: nil)
    }

    // MARK: Internal

    /// Checks the receiver's settings when its stream starts.
    /// - Throws: ``StreamingError`` (`invalidArgument`) naming what is wrong.
    func validate() throws {}

    /// Stores `elements` as ``store(_:)`` does each (rate-limited, buffered), in one step: they reach the same
    /// block.
    func storeBuffered(_ elements: [Element]) throws {
        try attached().generator.add(contentsOf: elements)
    }

    /// Stores `rows` records that `write` puts straight into the next block's columns (no element made);
    /// false, with nothing stored, when the stream keeps elements rather than columnar blocks.
    func storeEncoded(rows: Int, _ write: (inout BlockBuilder) -> Void) throws -> Bool {
        try attached().generator.addEncoded(rows: rows, write)
    }

    struct WeakSupervisor {
        weak var value: ReceiverSupervisor<Element>?
        var attached = false
    }

    var supervisor: ReceiverSupervisor<Element>? { supervisorLock.withLock { $0.value } }

    func attach(_ supervisor: ReceiverSupervisor<Element>) throws {
        try supervisorLock.withLock { current throws(StreamingError) in
            guard !current.attached else {
                throw StreamingError(
                    .invalidGraph, "a receiver feeds one stream: \(type(of: self)) was given to receiverStream twice")
            }
            current = WeakSupervisor(value: supervisor, attached: true)
        }
    }

    private func attached() throws -> ReceiverSupervisor<Element> {
        guard let supervisor else {
            throw StreamingError(.illegalState, "\(type(of: self)) stores data before its stream started")
        }
        return supervisor
    }
}
