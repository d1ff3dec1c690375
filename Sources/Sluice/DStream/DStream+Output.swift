import SluiceColumnar
import SluiceExecution
import Synchronization

// Output operations: each registers a job per batch, run in registration order.

extension DStream {
    /// Runs `f` on every batch's RDD (on a thread of the context's own; actions inside run on the engine).
    public func foreachRDD(_ f: @escaping @Sendable (RDD<Element>) throws -> Void) {
        _ = ForEachDStream(parent: self, name: "foreachRDD") { rdd, _ in try f(rdd) }
    }

    /// Runs `f` on every batch's RDD with the batch time.
    public func foreachRDD(_ f: @escaping @Sendable (RDD<Element>, Time) throws -> Void) {
        _ = ForEachDStream(parent: self, name: "foreachRDD", action: f)
    }

    /// Prints the first `num` elements of every batch, in Spark's format:
    ///
    ///     -------------------------------------------
    ///     Time: 1357008430000 ms
    ///     -------------------------------------------
    ///     (hello,1)
    ///     ...
    ///
    /// ("..." when the batch has more than `num` elements; elements as ``SparkText`` writes them; a blank line
    /// after each batch).
    public func print(_ num: Int = 10) {
        let context = self.context
        _ = ForEachDStream(parent: self, name: "print") { rdd, time in
            let first = try rdd.take(num + 1)
            var lines = [
                "-------------------------------------------", "Time: \(time)",
                "-------------------------------------------",
            ]
            lines += first.prefix(num).map { SparkText.line($0) }
            if first.count > num { lines.append("...") }
            lines.append("")
            let console = context.console.withLock { $0 }
            console(lines)
        }
    }

    /// Saves every batch as text files in the directory `prefix-TIME_IN_MS[.suffix]` (see
    /// ``RDD/saveAsTextFile(_:)``: one part file per partition, `_SUCCESS`, written atomically).
    public func saveAsTextFiles(prefix: String, suffix: String? = nil) {
        let leftovers = OutputLeftovers(prefix: prefix)
        _ = ForEachDStream(parent: self, name: "saveAsTextFiles") { rdd, time in
            leftovers.removeOnce(calls: rdd.engine.systemCalls)
            try rdd.saveAsTextFile(outputDirectory(prefix: prefix, suffix: suffix, time: time))
        }
    }

    /// Saves every batch as object files in Sluice's block format in the directory
    /// `prefix-TIME_IN_MS[.suffix]` (see ``RDD/saveAsObjectFile(_:)``; read back with
    /// ``ExecutionEngine/objectFile(_:codec:)``).
    public func saveAsObjectFiles(prefix: String, suffix: String? = nil) {
        let leftovers = OutputLeftovers(prefix: prefix)
        _ = ForEachDStream(parent: self, name: "saveAsObjectFiles") { rdd, time in
            leftovers.removeOnce(calls: rdd.engine.systemCalls)
            try rdd.saveAsObjectFile(outputDirectory(prefix: prefix, suffix: suffix, time: time))
        }
    }
}

/// Removes, before a stream's first batch directory is written in this process, the temporary directories that
/// a killed earlier process left beside its batch directories (those of a batch that is written again go then
/// anyway; this takes the others). Later writes wait for it.
final class OutputLeftovers: Sendable {
    private let prefix: String
    private let done = Mutex(false)

    init(prefix: String) { self.prefix = prefix }

    func removeOnce(calls: SystemCalls) {
        done.withLock { done in
            guard !done else { return }
            OutputDirectory.removeTemporaryLeftovers(prefix: prefix, calls: calls)
            done = true
        }
    }
}

/// Spark's batch directory name: `prefix-TIME_IN_MS[.suffix]`.
func outputDirectory(prefix: String, suffix: String?, time: Time) -> String {
    guard let suffix, !suffix.isEmpty else { return "\(prefix)-\(time.milliseconds)" }
    return "\(prefix)-\(time.milliseconds).\(suffix)"
}
