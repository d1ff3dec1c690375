#if !SLUICE_SYSTEM_ALLOCATOR
import CJemalloc
#endif
import Glibc

/// Where buffer memory comes from: a pair of functions, injectable so that tests can count allocations and
/// simulate exhaustion (the idea of swift-nio's `ByteBufferAllocator`).
///
/// Every pointer it returns must be aligned to ``BufferAllocator/alignment`` (64 bytes: one cache line, and
/// enough for any column value type).
public struct BufferAllocator: Sendable {
    /// The alignment of every buffer Sluice allocates.
    public static let alignment = 64

    @usableFromInline let allocateFunction: @Sendable (Int) -> UnsafeMutableRawPointer?
    @usableFromInline let deallocateFunction: @Sendable (UnsafeMutableRawPointer, Int) -> Void

    /// An allocator made of two functions.
    /// - Parameters:
    ///   - allocate: returns `byteCount` bytes aligned to 64, or `nil` when memory is exhausted.
    ///   - deallocate: releases memory that `allocate` returned for the same `byteCount`.
    public init(
        allocate: @escaping @Sendable (_ byteCount: Int) -> UnsafeMutableRawPointer?,
        deallocate: @escaping @Sendable (_ pointer: UnsafeMutableRawPointer, _ byteCount: Int) -> Void
    ) {
        self.allocateFunction = allocate
        self.deallocateFunction = deallocate
    }

    /// Allocates `byteCount` bytes, or returns `nil` when the allocator is exhausted.
    @inlinable
    public func allocate(byteCount: Int) -> UnsafeMutableRawPointer? {
        allocateFunction(byteCount)
    }

    /// Releases memory returned by ``allocate(byteCount:)`` with the same `byteCount`.
    @inlinable
    public func deallocate(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        deallocateFunction(pointer, byteCount)
    }

    /// The allocator buffers come from: ``jemalloc``, or ``system`` in a build with `SLUICE_SYSTEM_ALLOCATOR=1`
    /// (for the sanitizers).
    public static var standard: BufferAllocator {
        #if SLUICE_SYSTEM_ALLOCATOR
        system
        #else
        jemalloc
        #endif
    }

    /// The system allocator (`posix_memalign` and `free`).
    public static let system = BufferAllocator(
        allocate: { byteCount in
            var pointer: UnsafeMutableRawPointer?
            return posix_memalign(&pointer, BufferAllocator.alignment, max(byteCount, 1)) == 0 ? pointer : nil
        },
        deallocate: { pointer, _ in free(pointer) })

    #if !SLUICE_SYSTEM_ALLOCATOR
    /// jemalloc, in an arena of Sluice's own, so that buffer memory is accounted apart from the rest of the
    /// process (``AllocatorStatistics/bufferArena``). Thread caches are bypassed: ``BufferPool`` recycles.
    ///
    /// Buffers stay on the system's default pages: transparent huge pages are not asked for. Since the pool and
    /// the arena keep freed buffers (no page is faulted in twice in a steady stream), their one effect was on
    /// memory touched for the first time, which they made slower: on this VM kind, whose host takes back freed
    /// guest memory, first touches ran at 0.24-0.33 GB/s on 2 MiB pages against 1.0-1.4 GB/s on 4 KiB ones, and
    /// the grouped count started at 85M records/s with batches of 8M to 90M records (its generator writing
    /// into fresh pages) for its first 5 s, against even batches from the second one without them.
    public static let jemalloc: BufferAllocator = {
        let arena = JemallocArena.buffers
        let flags = sluice_mallocx_flags(arena, BufferAllocator.alignment)
        return BufferAllocator(
            allocate: { byteCount in mallocx(max(byteCount, 1), flags) },
            deallocate: { pointer, byteCount in sdallocx(pointer, max(byteCount, 1), flags) }
        )
    }()
    #endif
}
