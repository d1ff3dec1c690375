#if !SLUICE_SYSTEM_ALLOCATOR
import CJemalloc

/// jemalloc's own arena for Sluice buffers, created once per process.
enum JemallocArena {
    /// The index of the arena, or 0 (jemalloc's first automatic arena) if one could not be created.
    ///
    /// The arena gives freed pages back to the system by its decay alone (``setDecay(milliseconds:)``), whatever
    /// their size: by default jemalloc purges a freed extent of 8 MiB or more at once (`oversize_threshold`),
    /// so that every large buffer the pool let go came back as fresh pages, each faulted in and zeroed again:
    /// a 12 s run of the grouped count at 70M records/s gave back 13.6 GB that way, and at 85M zeroing pages
    /// took a third of its CPU.
    static let buffers: UInt32 = {
        var arena: UInt32 = 0
        var size = MemoryLayout<UInt32>.size
        guard mallctl("arenas.create", &arena, &size, nil, 0) == 0 else { return 0 }
        var threshold = Int.max
        _ = mallctl("arena.\(arena).oversize_threshold", nil, nil, &threshold, MemoryLayout<Int>.size)
        return arena
    }()

    /// The buffer arena's `oversize_threshold` now (nil: jemalloc refused to say).
    static var oversizeThreshold: Int? {
        var value = 0
        var size = MemoryLayout<Int>.size
        return mallctl("arena.\(buffers).oversize_threshold", &value, &size, nil, 0) == 0 ? value : nil
    }

    /// Sets how long the buffer arena keeps freed pages before giving them back to the system (jemalloc's
    /// `dirty_decay_ms` and `muzzy_decay_ms`; its default is 10 s); false when jemalloc refused.
    static func setDecay(milliseconds: Int) -> Bool {
        var value = milliseconds
        let size = MemoryLayout<Int>.size
        return ["dirty_decay_ms", "muzzy_decay_ms"].allSatisfy { name in
            mallctl("arena.\(buffers).\(name)", nil, nil, &value, size) == 0
        }
    }
}
#endif

/// Allocated and resident bytes as jemalloc counts them (refreshed on each call).
public struct AllocatorStatistics: Sendable, Equatable {
    /// Bytes the process's live allocations hold (`stats.allocated`).
    public var allocated: Int
    /// Bytes in active pages (`stats.active`).
    public var active: Int
    /// Bytes in physically resident pages that jemalloc maps (`stats.resident`).
    public var resident: Int
    /// Bytes held in allocations of Sluice's buffer arena (small and large).
    public var bufferArena: Int

    /// Reads the statistics now. Returns `nil` when jemalloc is not the process allocator or was built without
    /// statistics.
    public static func current() -> AllocatorStatistics? {
        #if SLUICE_SYSTEM_ALLOCATOR
        return nil
        #else
        var epochIn: UInt64 = 1
        var epochOut: UInt64 = 0
        var epochSize = MemoryLayout<UInt64>.size
        // Separate variables for old and new values: passing one twice violates exclusivity.
        guard mallctl("epoch", &epochOut, &epochSize, &epochIn, MemoryLayout<UInt64>.size) == 0 else { return nil }
        guard let allocated = read("stats.allocated"), let active = read("stats.active"),
            let resident = read("stats.resident")
        else { return nil }
        let arena = JemallocArena.buffers
        let small = read("stats.arenas.\(arena).small.allocated") ?? 0
        let large = read("stats.arenas.\(arena).large.allocated") ?? 0
        return AllocatorStatistics(allocated: allocated, active: active, resident: resident, bufferArena: small + large)
        #endif
    }

    #if !SLUICE_SYSTEM_ALLOCATOR
    private static func read(_ name: String) -> Int? {
        var value = 0
        var size = MemoryLayout<Int>.size
        return mallctl(name, &value, &size, nil, 0) == 0 ? value : nil
    }
    #endif
}
