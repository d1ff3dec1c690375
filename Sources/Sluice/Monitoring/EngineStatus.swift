import SluiceExecution

/// What Sluice adds to Spark's Streaming tab (`GET .../streaming/sluice`): the memory budget, spill, the size of
/// each stateful stream's state, and how long checkpoints and write-ahead log appends take.
public struct EngineStatus: Codable, Sendable, Equatable {
    /// The engine's memory budget (`sluice.memory.limit`).
    public struct Memory: Codable, Sendable, Equatable {
        public var reservedBytes: Int
        /// nil: no limit.
        public var limitBytes: Int?
        /// Reserved bytes per category (`receive`, `shuffle`, `cache`, `state`, `window`); empty ones left out.
        public var byCategory: [MemoryCategory: Int]
    }

    /// Data spilled to disk under the budget.
    public struct Spill: Codable, Sendable, Equatable {
        public var bytesSpilled: Int
        public var bytesOnDisk: Int
        public var bytesReadBack: Int
        public var filesWritten: Int
        public var liveFiles: Int
    }

    /// One stateful stream (`updateStateByKey`, `mapWithState`, `reduceByKeyAndWindow` with an inverse).
    public struct State: Codable, Sendable, Equatable {
        public var streamId: Int
        public var name: String
        public var keys: Int
    }

    /// One receiver's write-ahead log.
    public struct WriteAheadLog: Codable, Sendable, Equatable {
        public var streamId: Int
        public var appends: WriteStatistics
    }

    public var memory: Memory
    public var spill: Spill
    public var states: [State]
    public var checkpoints: WriteStatistics
    public var writeAheadLogs: [WriteAheadLog]
    /// Listener events dropped because the listener queue was full (the page may miss those batches).
    public var droppedEvents: Int
}

extension StreamingContext {
    /// What Sluice adds to Spark's Streaming tab, now.
    public var engineStatus: EngineStatus {
        let spill = engine.spillStatistics
        let limit = engine.memory.limit
        return EngineStatus(
            memory: EngineStatus.Memory(
                reservedBytes: engine.memory.reservedBytes, limitBytes: limit == .max ? nil : limit,
                byCategory: engine.memory.reservedByCategory),
            spill: EngineStatus.Spill(
                bytesSpilled: spill.bytesSpilled, bytesOnDisk: spill.bytesOnDisk, bytesReadBack: spill.bytesReadBack,
                filesWritten: spill.filesWritten, liveFiles: spill.liveFiles),
            states: graph.allNodes.compactMap { $0 as? any StatefulNode }.sorted { $0.id < $1.id }.map {
                EngineStatus.State(streamId: $0.id, name: $0.name, keys: $0.stateKeys)
            },
            checkpoints: checkpointStatistics,
            writeAheadLogs: graph.receiverStreams.compactMap { stream in
                stream.writeAheadLogStatistics.map { EngineStatus.WriteAheadLog(streamId: stream.streamId, appends: $0) }
            },
            droppedEvents: bus.droppedEvents)
    }
}
