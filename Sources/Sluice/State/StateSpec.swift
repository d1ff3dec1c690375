import SluiceExecution

/// What `mapWithState` does (Spark's `StateSpec`): the mapping function, and optionally an idle timeout, an
/// initial state and the number of partitions. Each setter returns a new spec.
public struct StateSpec<K: Hashable & Sendable, V: Sendable, S: Sendable, Mapped: Sendable>: Sendable {
    /// The function as the program gave it: `mapWithState` calls either form directly, one call a record.
    @usableFromInline
    enum Function: Sendable {
        case keyed(@Sendable (K, V?, State<S>) throws -> Mapped?)
        case timed(@Sendable (Time, K, V?, State<S>) throws -> Mapped?)
    }

    @usableFromInline let form: Function
    /// How long a key may go untouched before it times out.
    public internal(set) var idleTimeout: Duration?
    /// The state to start from.
    public private(set) var initialStateRDD: RDD<(K, S)>?
    /// The state's partitions (default: `spark.default.parallelism`, else the number of workers).
    public private(set) var partitionCount: Int?

    init(_ form: Function) {
        self.form = form
    }

    /// The function with the batch time as its first argument, whichever form was given.
    @inlinable
    var function: @Sendable (Time, K, V?, State<S>) throws -> Mapped? {
        switch form {
        case .keyed(let f): { _, key, value, state in try f(key, value, state) }
        case .timed(let f): f
        }
    }

    /// A spec calling `function` once per record, with the record's key, its value, and the key's state; what
    /// it returns (if not nil) is emitted. When a key times out it is called once more with a nil value.
    public static func function(
        _ function: @escaping @Sendable (K, V?, State<S>) throws -> Mapped?
    ) -> StateSpec {
        StateSpec(.keyed(function))
    }

    /// As ``function(_:)-...``, with the batch time as the first argument.
    public static func function(
        _ function: @escaping @Sendable (Time, K, V?, State<S>) throws -> Mapped?
    ) -> StateSpec {
        StateSpec(.timed(function))
    }

    /// The spec with keys timing out after `idle` without a record (or a state change).
    public func timeout(_ idle: Duration) -> StateSpec {
        var copy = self
        copy.idleTimeout = idle
        return copy
    }

    /// The spec starting from the (key, state) pairs of `rdd`.
    public func initialState(_ rdd: RDD<(K, S)>) -> StateSpec {
        var copy = self
        copy.initialStateRDD = rdd
        return copy
    }

    /// The spec with the state spread over `n` partitions (below 1: `start()` refuses it, naming the value).
    public func numPartitions(_ n: Int) -> StateSpec {
        var copy = self
        copy.partitionCount = n
        return copy
    }
}

/// The state of one key during one call of a `mapWithState` function (Spark's `State`): read it, update it,
/// or remove it. Valid only during the call.
public final class State<S> {
    // Unchecked exclusivity: one State serves one partition's calls, one at a time, on one thread; the dynamic
    // checks were a tenth of a small state's per-record cost.
    @exclusivity(unchecked) @usableFromInline var value: S?
    /// Whether the call updated, removed, or is timing out the state: bits of one word, written and read whole.
    /// (As three Bools side by side, the compiler wrote two at once and read them one at a time; a read that
    /// starts inside a wider store just made cannot be forwarded from it, a stall of some 15 cycles, twice a
    /// record: the program's function and the kernel's checks after it were 41% of the 1k-key benchmark's samples,
    /// 25% as one word; its batch 1468-1779 -> 1437-1590 us in 5 alternated pairs.)
    @exclusivity(unchecked) @usableFromInline var flags: UInt = 0

    @usableFromInline static var updatedFlag: UInt { 1 }
    @usableFromInline static var removedFlag: UInt { 2 }
    @usableFromInline static var timingOutFlag: UInt { 4 }

    @usableFromInline init() {}

    @inlinable
    func reset(_ value: S?, timingOut: Bool) {
        self.value = value
        flags = timingOut ? State.timingOutFlag : 0
    }

    @inlinable var updated: Bool { flags & State.updatedFlag != 0 }
    @inlinable var removed: Bool { flags & State.removedFlag != 0 }
    @inlinable var timingOut: Bool { flags & State.timingOutFlag != 0 }

    /// Whether the key is timing out (the call has no value and its state is dropped afterwards).
    @inlinable public var isTimingOut: Bool { timingOut }

    /// Whether the key has a state.
    @inlinable public var exists: Bool { value != nil && !removed }

    /// The state.
    /// - Throws: ``StreamingError`` when the key has none.
    @inlinable
    public func get() throws -> S {
        guard !removed, let value else { throw State.misuse(.getWithoutState) }
        return value
    }

    /// The state, or nil.
    @inlinable public func getOption() -> S? { removed ? nil : value }

    /// Sets the state.
    /// - Throws: ``StreamingError`` when the key is timing out or its state was removed in this call.
    @inlinable @inline(__always)
    public func update(_ newState: S) throws {
        // Inlined into the program's function (left a call, it was a sixth of mapWithState's per-record cost at
        // 1k keys); the errors are made out of line.
        if flags & (State.removedFlag | State.timingOutFlag) != 0 {
            throw State.misuse(removed ? .updateAfterRemove : .updateWhileTimingOut)
        }
        value = newState
        flags |= State.updatedFlag
    }

    /// Removes the state.
    /// - Throws: ``StreamingError`` when the key is timing out or its state was already removed.
    @inlinable
    public func remove() throws {
        if timingOut { throw State.misuse(.removeWhileTimingOut) }
        if removed { throw State.misuse(.removeTwice) }
        flags |= State.removedFlag
    }

    @usableFromInline
    enum Misuse {
        case getWithoutState, updateAfterRemove, updateWhileTimingOut, removeWhileTimingOut, removeTwice
    }

    @usableFromInline
    static func misuse(_ misuse: Misuse) -> StreamingError {
        let message = switch misuse {
        case .getWithoutState: "State.get(): the key has no state (check exists or use getOption())"
        case .updateAfterRemove: "Cannot update the state after it has been removed"
        case .updateWhileTimingOut: "Cannot update the state that is timing out"
        case .removeWhileTimingOut: "Cannot remove the state that is timing out"
        case .removeTwice: "Cannot remove the state that has already been removed"
        }
        return StreamingError(.illegalState, message)
    }
}
