/// Where and how a persisted RDD's partitions are kept (Spark's `StorageLevel`).
///
/// - Memory levels keep partitions in the memory budget; a partition that does not fit (after evicting
///   least recently used partitions of other RDDs) is recomputed when read again (`memoryOnly*`) or written to
///   disk (`memoryAndDisk*`).
/// - Serialized levels (`*Ser`) keep partitions as columnar blocks when the element type has a block encoding
///   (``BlockSerializable``, or a tuple of such types); other element types are kept as values.
/// - Disk holds zstd-compressed blocks in the engine's spill directory, removed when the partition is dropped.
/// - The `2` variants are accepted for Spark compatibility; Sluice runs in one process and keeps one copy.
public struct StorageLevel: Sendable, Hashable, CustomStringConvertible {
    /// Whether partitions may go to disk.
    public let useDisk: Bool
    /// Whether partitions are kept in memory.
    public let useMemory: Bool
    /// Whether in-memory partitions are kept as values rather than serialized blocks.
    public let deserialized: Bool
    /// The number of copies Spark would keep (1 or 2); Sluice keeps one.
    public let replication: Int

    /// A storage level from its parts.
    public init(useDisk: Bool, useMemory: Bool, deserialized: Bool, replication: Int = 1) {
        self.useDisk = useDisk
        self.useMemory = useMemory
        self.deserialized = deserialized
        self.replication = replication
    }

    /// Not persisted.
    public static let none = StorageLevel(useDisk: false, useMemory: false, deserialized: false)
    /// Values in memory; recomputed when they do not fit.
    public static let memoryOnly = StorageLevel(useDisk: false, useMemory: true, deserialized: true)
    /// As ``memoryOnly`` (Spark keeps two copies).
    public static let memoryOnly2 = StorageLevel(useDisk: false, useMemory: true, deserialized: true, replication: 2)
    /// Serialized blocks in memory; recomputed when they do not fit.
    public static let memoryOnlySer = StorageLevel(useDisk: false, useMemory: true, deserialized: false)
    /// As ``memoryOnlySer`` (Spark keeps two copies).
    public static let memoryOnlySer2 = StorageLevel(useDisk: false, useMemory: true, deserialized: false, replication: 2)
    /// Values in memory; what does not fit goes to disk.
    public static let memoryAndDisk = StorageLevel(useDisk: true, useMemory: true, deserialized: true)
    /// As ``memoryAndDisk`` (Spark keeps two copies).
    public static let memoryAndDisk2 = StorageLevel(useDisk: true, useMemory: true, deserialized: true, replication: 2)
    /// Serialized blocks in memory; what does not fit goes to disk.
    public static let memoryAndDiskSer = StorageLevel(useDisk: true, useMemory: true, deserialized: false)
    /// As ``memoryAndDiskSer`` (Spark keeps two copies); the default of receivers' input streams.
    public static let memoryAndDiskSer2 = StorageLevel(
        useDisk: true, useMemory: true, deserialized: false, replication: 2)
    /// Serialized blocks on disk only.
    public static let diskOnly = StorageLevel(useDisk: true, useMemory: false, deserialized: false)
    /// As ``diskOnly`` (Spark keeps two copies).
    public static let diskOnly2 = StorageLevel(useDisk: true, useMemory: false, deserialized: false, replication: 2)

    /// Spark's name for the level (`MEMORY_AND_DISK_SER_2`, ...).
    public var description: String {
        var name: String
        switch (useMemory, useDisk) {
        case (false, false): return "NONE"
        case (true, false): name = "MEMORY_ONLY"
        case (true, true): name = "MEMORY_AND_DISK"
        case (false, true): name = "DISK_ONLY"
        }
        if useMemory && !deserialized { name += "_SER" }
        if replication > 1 { name += "_\(replication)" }
        return name
    }
}
