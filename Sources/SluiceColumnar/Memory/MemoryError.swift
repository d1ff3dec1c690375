/// Memory could not be had: the allocator is exhausted, or a reservation would pass the memory budget.
public struct MemoryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: Sendable, Equatable {
        /// The allocator returned no memory for `bytes`.
        case allocationFailed(bytes: Int)
        /// `consumer` asked for `requested` more bytes while the budget had `reserved` of `limit` in use.
        case budgetExceeded(consumer: String, requested: Int, reserved: Int, limit: Int)
    }

    /// What went wrong.
    public var code: Code

    /// Makes an error with this code.
    public init(_ code: Code) { self.code = code }

    public var description: String {
        switch code {
        case .allocationFailed(let bytes):
            return "out of memory: the allocator returned nothing for \(bytes) bytes"
        case .budgetExceeded(let consumer, let requested, let reserved, let limit):
            return "memory budget exceeded: '\(consumer)' asked for \(requested) bytes, "
                + "\(reserved) of \(limit) bytes (sluice.memory.limit) are already reserved"
        }
    }
}
