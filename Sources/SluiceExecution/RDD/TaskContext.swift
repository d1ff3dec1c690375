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

    /// The current task's share of its partition, when the engine split the partition over several tasks (see
    /// ``PartitionSlice``); the whole partition otherwise.
    nonisolated(unsafe) private static var sliceKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The share of its partition that the current task computes: sources that can produce a part of a
    /// partition (received blocks, `parallelize`) read it; the whole partition outside a sliced task.
    @usableFromInline
    package static var slice: PartitionSlice {
        PartitionSlice(packed: UInt(bitPattern: pthread_getspecific(sliceKey)))
    }

    /// Runs `body` as the task of `partition` (the share `slice` of it), restoring the previous values after
    /// (nested jobs).
    static func withPartition<R>(
        _ partition: Int, slice: PartitionSlice = .whole, _ body: () throws -> R
    ) rethrows -> R {
        let (previous, previousSlice) = (pthread_getspecific(key), pthread_getspecific(sliceKey))
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: partition + 1))
        pthread_setspecific(sliceKey, UnsafeRawPointer(bitPattern: slice.packed))
        defer {
            pthread_setspecific(key, previous)
            pthread_setspecific(sliceKey, previousSlice)
        }
        return try body()
    }
}

/// Slice `index` of `count` equal slices of a partition's elements: how the engine splits a few large partitions
/// (a batch's received blocks) over more tasks than there are partitions, so that every worker has work till
/// the end of a stage. Only where the order of a partition's elements does not matter (the map side of a
/// combining shuffle), and only over RDDs whose sources can produce a slice (``RDD/isSliceable``).
@usableFromInline
package struct PartitionSlice: Sendable, Equatable {
    package let index: Int
    package let count: Int

    package static let whole = PartitionSlice(index: 0, count: 1)

    package init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// The slice's part of `0..<n`.
    @usableFromInline
    package func range(of n: Int) -> Range<Int> { index * n / count..<(index + 1) * n / count }

    /// Packed into a pointer-sized thread-local value: 0 is the whole partition.
    var packed: UInt { count <= 1 ? 0 : UInt(index) << 32 | UInt(count) }

    init(packed: UInt) {
        self = packed == 0 ? .whole : PartitionSlice(index: Int(packed >> 32), count: Int(packed & 0xFFFF_FFFF))
    }
}
