import Glibc

/// What a running task knows about itself: readable inside `foreachPartition` and the closures of a job,
/// e.g. for the guide's transactional output pattern (one connection or transaction per partition).
public enum TaskContext {
    nonisolated(unsafe) private static var key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The partition the current task computes, or -1 outside a task.
    public static var partitionId: Int {
        // The value is partitionId + 1, so that "no value" (nil) reads as -1.
        Int(bitPattern: pthread_getspecific(key)) - 1
    }

    /// Runs `body` as the task of `partition`, restoring the previous value after (nested jobs).
    static func withPartition<R>(_ partition: Int, _ body: () throws -> R) rethrows -> R {
        let previous = pthread_getspecific(key)
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: partition + 1))
        defer { pthread_setspecific(key, previous) }
        return try body()
    }
}
