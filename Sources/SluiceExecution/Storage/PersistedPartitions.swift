import SluiceColumnar
import Synchronization

/// Where a cached partition is now.
public enum CachedPlacement: Sendable, Equatable {
    /// In memory, as values.
    case memory
    /// In memory, as serialized columnar blocks.
    case memorySerialized
    /// On disk, in a spill file.
    case disk
}

/// What a persisted RDD exposes of its cache.
@usableFromInline
protocol PersistenceHandle: Sendable {
    var storageLevel: StorageLevel { get }
    /// Drops every cached partition (and its disk file).
    func unpersist()
    /// Where each cached partition is.
    var placement: [Int: CachedPlacement] { get }
}

/// The cached partitions of one persisted RDD, stored as its storage level says (see ``StorageLevel``).
/// Dropped, with their spill files, by `unpersist()` or when the last RDD that reads them goes away.
final class PersistedPartitions<Element: Sendable>: CacheOwner, PersistenceHandle {
    enum Stored: Sendable {
        case values([Element], bytes: Int)
        case blocks([Block], ElementCodec<Element>, bytes: Int)
        case disk(SpillFile, ElementCodec<Element>)
    }

    let id: Int
    let storageLevel: StorageLevel
    let category: MemoryCategory
    let engine: ExecutionEngine
    private let partitions = Mutex<[Int: Stored]>([:])

    init(engine: ExecutionEngine, level: StorageLevel, category: MemoryCategory) {
        self.id = engine.makeId()
        self.storageLevel = level
        self.category = category
        self.engine = engine
        engine.blockStore.register(self)
    }

    deinit {
        unpersist()
        engine.blockStore.unregister(owner: id)
    }

    private var name: String { "RDD \(id)" }

    var placement: [Int: CachedPlacement] {
        partitions.withLock { stored in
            stored.mapValues { s in
                switch s {
                case .values: .memory
                case .blocks: .memorySerialized
                case .disk: .disk
                }
            }
        }
    }

    /// How many partitions are stored.
    var storedCount: Int { partitions.withLock { $0.count } }

    func unpersist() {
        let all = partitions.withLock { p in defer { p = [:] }; return p }
        for (partition, stored) in all {
            if case .disk(let file, _) = stored { engine.spill.remove(file.path) }
            engine.blockStore.release(owner: id, partition: partition)
        }
    }

    /// Pushes cached partition `p` into `sink`; false when it is not cached.
    /// - Throws: ``StorageError`` (`readFailed`) when its disk file cannot be read back.
    func read(_ p: Int, into sink: (UnsafeBufferPointer<Element>) throws -> Void) throws -> Bool {
        guard let stored = partitions.withLock({ $0[p] }) else { return false }
        engine.blockStore.touch(owner: id, partition: p)
        switch stored {
        case .values(let elements, _):
            try elements.withUnsafeBufferPointer { try emitChunks($0, to: sink) }
        case .blocks(let blocks, let codec, _):
            for block in blocks {
                do {
                    try decodeChunks(block, codec, sink)
                } catch let error as FormatError {
                    throw StorageError(.readFailed, "a cached block of \(name) cannot be decoded", underlying: error)
                }
            }
        case .disk(let file, let codec):
            let reader = try SpillReader(
                file, codec: codec, directory: engine.spill, what: "partition \(p) of \(name)")
            while let elements = try reader.nextFrame() {
                try elements.withUnsafeBufferPointer { try emitChunks($0, to: sink) }
            }
        }
        return true
    }

    /// How many elements cached partition `p` holds, where that is known without reading them: values in memory,
    /// or blocks in memory (their row counts); nil when it is on disk (read back, so that a file the disk
    /// damaged fails the count as it fails any job) or not cached.
    func knownCount(_ p: Int) -> Int? {
        guard let stored = partitions.withLock({ $0[p] }) else { return nil }
        switch stored {
        case .values(let elements, _):
            engine.blockStore.touch(owner: id, partition: p)
            return elements.count
        case .blocks(let blocks, _, _):  // encoded here, by this codec: no schema to check
            engine.blockStore.touch(owner: id, partition: p)
            return blocks.reduce(0) { $0 + $1.rowCount }
        case .disk:
            return nil
        }
    }

    /// Caches computed partition `p` as the storage level says, if there is room.
    /// - Throws: ``StorageError`` when it must go to disk and cannot (a full disk, no block encoding).
    func put(_ p: Int, _ elements: [Element]) throws {
        guard partitions.withLock({ $0[p] }) == nil else { return }  // another task cached it meanwhile
        let codec = elements.first.flatMap { ElementCodecs.lookup(Element.self, sample: $0) }
        if storageLevel.useMemory || elements.isEmpty {
            if storageLevel.deserialized || codec == nil || elements.isEmpty {
                let bytes = SizeEstimate.of(elements)
                if engine.blockStore.reserve(bytes, owner: id, partition: p) {
                    return store(p, .values(elements, bytes: bytes))
                }
            } else if let codec {
                let blocks = try encode(elements, codec)
                let bytes = blocks.reduce(0) { $0 + $1.byteCount }
                if engine.blockStore.reserve(bytes, owner: id, partition: p) {
                    return store(p, .blocks(blocks, codec, bytes: bytes))
                }
            }
        }
        guard storageLevel.useDisk else { return }  // memory only: recomputed when read again
        guard let codec else {
            throw StorageError(
                .notSerializable,
                "partition \(p) of \(name) must go to disk (\(storageLevel)) but its elements (\(Element.self)) have "
                    + "no block encoding; make them Codable (or BlockSerializable) or use a memory-only storage level")
        }
        let file = try writeToDisk(p, elements, codec)
        store(p, .disk(file, codec))
    }

    private func store(_ p: Int, _ stored: Stored) {
        let kept = partitions.withLock { partitions -> Bool in
            guard partitions[p] == nil else { return false }
            partitions[p] = stored
            return true
        }
        guard !kept else { return }
        switch stored {  // a concurrent task cached the partition first: drop this copy
        case .disk(let file, _): engine.spill.remove(file.path)
        case .values, .blocks: engine.blockStore.release(owner: id, partition: p)
        }
    }

    private func encode(_ elements: [Element], _ codec: ElementCodec<Element>) throws -> [Block] {
        var blocks: [Block] = []
        var builder = try codec.makeBuilder()
        for element in elements {
            try codec.append(element, to: &builder)
            if builder.rowCount >= 65_536 {
                blocks.append(try builder.seal())
                builder.reset()
            }
        }
        if builder.rowCount > 0 || blocks.isEmpty { blocks.append(try builder.seal()) }
        return blocks
    }

    private func writeToDisk(_ p: Int, _ elements: [Element], _ codec: ElementCodec<Element>) throws -> SpillFile {
        try engine.spill.write(
            "rdd-\(id)-\(p)", what: "partition \(p) of \(name) (\(storageLevel))", codec: codec,
            level: engine.compressionLevel
        ) { writer in
            for element in elements { try writer.append(element) }
        }
    }

    func evict(partition p: Int) -> Bool {
        guard let stored = partitions.withLock({ $0[p] }) else { return false }
        let elements: [Element]
        var codec: ElementCodec<Element>?
        switch stored {
        case .values(let values, _):
            elements = values
            codec = values.first.flatMap { ElementCodecs.lookup(Element.self, sample: $0) }
        case .blocks(let blocks, let blockCodec, _):
            codec = blockCodec
            guard storageLevel.useDisk else {
                elements = []
                break
            }
            guard let decoded = try? blocks.flatMap({ try blockCodec.decode($0) }) else { return false }
            elements = decoded
        case .disk:
            return false
        }
        var replacement: Stored?
        if storageLevel.useDisk {
            // A failed write (no encoding, a full disk) keeps the partition in memory: nothing stored is lost.
            guard let codec, let file = try? writeToDisk(p, elements, codec) else { return false }
            replacement = .disk(file, codec)
        }
        let replaced = partitions.withLock { partitions -> Bool in
            guard partitions[p] != nil else { return false }  // unpersisted meanwhile
            partitions[p] = replacement
            return true
        }
        if !replaced, case .disk(let file, _)? = replacement { engine.spill.remove(file.path) }
        engine.blockStore.release(owner: id, partition: p)
        return replaced
    }
}
