/// A streaming program did something the guide forbids, or a batch could not be generated: what, in a
/// sentence that names the stream, time or setting involved. (Defined with the RDDs, whose operations refuse
/// bad arguments with it too; `import Sluice` exports it.)
public struct StreamingError: Error, Sendable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: Sendable, Equatable {
        /// The context is not in a state that allows the call (started twice, stopped, ...).
        case illegalState
        /// The stream graph cannot run (no output operation, mismatched slides, missing checkpoint, ...).
        case invalidGraph
        /// A batch's RDDs could not be generated (a parent produced no RDD where one is needed, ...).
        case generationFailed
        /// A value given to an operation is out of range.
        case invalidArgument
        /// Output could not be written.
        case outputFailed
        /// The runtime could not do something it needs (a thread could not start, ...).
        case internalFailure
        /// A checkpoint or write-ahead log could not be written or read (naming the file and offset).
        case checkpointFailed
        /// A checkpoint was written by a program whose stream graph differs (naming the first difference).
        case checkpointMismatch
    }

    public var code: Code
    public var message: String
    /// The error underneath, if any.
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        guard let underlying else { return message }
        return "\(message): \(underlying)"
    }
}

extension StreamingError {
    /// Spark's refusal of a partition count below 1 (and ours of one over `Int32.max`), naming the operation
    /// and the value.
    public static func invalidPartitionCount(_ operation: String, _ numPartitions: Int) -> StreamingError {
        let bound = numPartitions < 1 ? "at least 1" : "at most \(Int32.max)"
        return StreamingError(.invalidArgument, "\(operation): numPartitions must be \(bound), got \(numPartitions)")
    }
}
