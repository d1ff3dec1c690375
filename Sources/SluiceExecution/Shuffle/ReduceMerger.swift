import SluiceColumnar

/// Merges one reduce partition's combiners from every map table and map spill. Within the memory budget it is
/// one hash table; past it, the table is written out sorted by hash (a run) and emptied, and the result is an
/// external merge of the runs and the last table by hash, combining equal keys.
final class ReduceMerger<Keys: KeyColumn, C: Sendable> {
    typealias Row = (UInt64, (Keys.Key, C))
    let stage: ShuffleStage<Keys, C>
    let partition: Int
    var table = CombineTable<Keys, C>()
    let memory: MemoryReservation
    var runs: [SpillFile] = []
    var runCodec: ElementCodec<Row>?
    var sinceCheck = 0

    init(stage: ShuffleStage<Keys, C>, partition: Int) {
        self.stage = stage
        self.partition = partition
        self.memory = stage.engine.memory.reservation(for: "shuffle \(stage.id) reduce \(partition)", category: .shuffle)
    }

    /// Removes the runs and gives back the memory.
    func close() {
        for run in runs { stage.engine.spill.remove(run.path) }
        runs = []
        memory.free()
    }

    func add(entry e: Int, of other: CombineTable<Keys, C>) throws {
        try table.merge(
            entry: e, of: other, values: stage.traits.valueCount(other.combiners[e]), stage.mergeCombiners)
        try checkMemory()
    }

    func add(key: Keys.Key, combiner: C) throws {
        let merge = stage.mergeCombiners
        try table.upsert(key, create: { combiner }, merge: { try merge(&$0, combiner) })
        table.heldValues += stage.traits.valueCount(combiner) - 1
        try checkMemory()
    }

    private func checkMemory() throws {
        sinceCheck += 1
        guard sinceCheck >= 256 else { return }
        sinceCheck = 0
        let estimate = table.estimatedBytes(bytesPerValue: stage.traits.bytesPerValue)
        if estimate > table.reservedBytes {
            let step = max(estimate - table.reservedBytes, reservationStep)
            if memory.tryGrow(by: step) {
                table.reservedBytes += step
            } else if estimate >= minimumSpillBytes {
                try spillRun()
            }
        }
        WorkStealingPool.yieldPoint()
    }

    private func spillRun() throws {
        let codec = try runCodec ?? ElementCodecs.pair(ElementCodecs.standard(UInt64.self), stage.rowCodec(table))
        runCodec = codec
        let table = self.table
        let run = try stage.engine.spill.write(
            "shuffle-\(stage.id)-reduce-\(partition)",
            what: "partition \(partition) of shuffle \(stage.id)", codec: codec, level: stage.engine.compressionLevel
        ) { writer in
            for e in table.entriesByHash() {
                try writer.append((table.hashes[e], (table.keys.key(at: e), table.combiners[e])))
            }
        }
        runs.append(run)
        memory.shrink(by: self.table.reservedBytes)
        self.table = CombineTable()
    }

    /// Pushes the merged (key, combiner) pairs into `sink`.
    func finish(into sink: (UnsafeBufferPointer<(Keys.Key, C)>) throws -> Void) throws {
        var out = ChunkBuffer<(Keys.Key, C)>()
        func emit(_ pair: (Keys.Key, C)) throws { try out.append(pair, flushingFullTo: sink) }
        if runs.isEmpty {
            for e in 0..<table.count { try emit((table.keys.key(at: e), table.combiners[e])) }
            try out.flush(to: sink)
            return
        }
        guard let codec = runCodec else { return }
        let table = self.table
        var cursors: [RunCursor<Row>] = []
        for run in runs {
            let reader = try SpillReader(
                run, codec: codec, directory: stage.engine.spill, what: "partition \(partition) of shuffle \(stage.id)")
            cursors.append(try RunCursor { try reader.nextFrame() })
        }
        var last: [Row]? = table.entriesByHash().map { (table.hashes[$0], (table.keys.key(at: $0), table.combiners[$0])) }
        cursors.append(try RunCursor { defer { last = nil }; return last })
        self.table = CombineTable()

        var group: [(Keys.Key, C)] = []
        while true {
            var lowest: UInt64?
            for cursor in cursors {
                if let hash = cursor.head?.0, lowest.map({ hash < $0 }) ?? true { lowest = hash }
            }
            guard let hash = lowest else { break }
            group.removeAll(keepingCapacity: true)
            for cursor in cursors {
                while let (h, (key, combiner)) = cursor.head, h == hash {
                    if let i = group.firstIndex(where: { Keys.equal($0.0, key) }) {
                        try stage.mergeCombiners(&group[i].1, combiner)
                    } else {
                        group.append((key, combiner))
                    }
                    try cursor.advance()
                }
            }
            for pair in group { try emit(pair) }
        }
        try out.flush(to: sink)
    }
}

/// A position in a sequence of rows sorted by hash, read a frame at a time.
final class RunCursor<Row> {
    private var rows: [Row] = []
    private var position = 0
    private let load: () throws -> [Row]?

    init(_ load: @escaping () throws -> [Row]?) throws {
        self.load = load
        try refill()
    }

    /// The current row, or nil at the end.
    var head: Row? { position < rows.count ? rows[position] : nil }

    func advance() throws {
        position += 1
        if position >= rows.count { try refill() }
    }

    private func refill() throws {
        position = 0
        rows = []
        while rows.isEmpty, let next = try load() { rows = next }
    }
}
