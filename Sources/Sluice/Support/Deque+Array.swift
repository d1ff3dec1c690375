import DequeModule

extension Deque {
    /// The elements as an array. An empty deque gives `[]` without copying: the standard library's
    /// `ContiguousArray(unsafeUninitializedCapacity: 0, ...)`, which `Array(deque)` calls, stores its count
    /// into the shared empty-array storage, a write ThreadSanitizer reports as a race with any thread that
    /// reads an empty array at the same moment (seen in CI between `StreamingStatus.statistics()` and a
    /// combine table's empty list).
    var elements: [Element] { isEmpty ? [] : Array(self) }
}
