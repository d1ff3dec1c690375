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
    public static let jemalloc: BufferAllocator = {
        let arena = JemallocArena.buffers
        let flags = sluice_mallocx_flags(arena, BufferAllocator.alignment)
        return BufferAllocator(
            allocate: { byteCount in
                let pointer = mallocx(max(byteCount, 1), flags)
                if let pointer, byteCount >= BufferAllocator.hugePageThreshold { adviseHugePages(pointer, byteCount) }
                return pointer
            },
            deallocate: { pointer, byteCount in sdallocx(pointer, max(byteCount, 1), flags) }
        )
    }()
    #endif

    /// Allocations of at least this many bytes are backed by 2 MiB pages where the system allows (see
    /// ``adviseHugePages(_:_:)``).
    static let hugePageThreshold = 8 << 20

    #if !SLUICE_SYSTEM_ALLOCATOR
    /// Asks for transparent huge pages over the whole 2 MiB pages inside `byteCount` bytes at `pointer` (a hint:
    /// refused or unsupported, the memory stays on 4 KiB pages). A receiver at 100M records/s writes 800 MB/s
    /// into buffers, fresh memory whenever the pool has none to give: on 4 KiB pages, an 8 s grouped count at
    /// that rate took 1.2-1.9M page faults, 20-34k on 2 MiB pages, with 10-17% less CPU.
    static func adviseHugePages(_ pointer: UnsafeMutableRawPointer, _ byteCount: Int) {
        guard let pages = hugePages(in: Int(bitPattern: pointer), byteCount),
            let address = UnsafeMutableRawPointer(bitPattern: pages.lowerBound)
        else { return }
        _ = madvise(address, pages.count, MADV_HUGEPAGE)
    }
    #endif

    /// The addresses of the whole 2 MiB pages within `byteCount` bytes from `address` (nil: none).
    static func hugePages(in address: Int, _ byteCount: Int) -> Range<Int>? {
        let huge = 2 << 20
        let start = (address + huge - 1) & ~(huge - 1)
        let end = (address + byteCount) & ~(huge - 1)
        return end > start ? start..<end : nil
    }
}
