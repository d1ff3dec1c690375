import Synchronization

/// The context's streams: its inputs and its output operations (in registration order), and the batch
/// clock's zero time once started.
final class DStreamGraph: Sendable {
    let batchDuration: Duration

    private struct State {
        var inputs: [any GraphNode] = []
        var outputs: [any OutputNode] = []
        var zeroTime: Time?
        var rememberDuration: Duration?
    }

    private let state = Mutex(State())
    /// Held while jobs are generated or metadata cleared, so that the two never interleave.
    private let generation = Mutex(())

    init(batchDuration: Duration) {
        self.batchDuration = batchDuration
    }

    func addInput(_ stream: any GraphNode) { state.withLock { $0.inputs.append(stream) } }

    /// Registers an output operation; returns its index.
    func addOutput(_ stream: any OutputNode) -> Int {
        state.withLock { s in
            s.outputs.append(stream)
            return s.outputs.count - 1
        }
    }

    var outputCount: Int { state.withLock { $0.outputs.count } }
    var inputs: [any GraphNode] { state.withLock { $0.inputs } }
    /// The inputs fed by receivers.
    var receiverStreams: [any ReceiverStreamNode] { inputs.compactMap { $0 as? any ReceiverStreamNode } }
    var zeroTime: Time? { state.withLock { $0.zeroTime } }

    func remember(_ duration: Duration) { state.withLock { $0.rememberDuration = duration } }

    /// Checks the graph and initializes every stream with `zeroTime`.
    /// - Throws: ``StreamingError`` (`invalidGraph`) with the first problem found.
    func start(zeroTime: Time) throws {
        let (outputs, remember) = state.withLock { ($0.outputs, $0.rememberDuration) }
        guard !outputs.isEmpty else {
            throw StreamingError(
                .invalidGraph,
                "No output operations registered, so nothing to execute: add print(), foreachRDD or saveAs*Files")
        }
        for output in outputs { try output.validateAtStart() }
        for output in outputs { output.initialize(zeroTime: zeroTime) }
        for output in outputs { output.remember(remember ?? .zero) }
        // `ssc.remember(d)` reaches every stream, also those a stream that keeps its own data cuts off.
        if let remember { for node in allNodes { node.remember(remember) } }
        state.withLock { $0.zeroTime = zeroTime }
    }

    /// One job per output operation with data at `time`.
    /// - Throws: the first error a stream raised computing its RDD (the batch then has no jobs).
    func generateJobs(_ time: Time) throws -> [StreamingJob] {
        let outputs = state.withLock { $0.outputs }
        let receivers = receiverStreams
        return try generation.withLock { _ in
            // Received blocks go to the batch first (Spark's allocateBlocksToBatch), whatever reads them.
            for receiver in receivers { receiver.allocateBlocks(to: time) }
            return try outputs.compactMap { try $0.generateJob(time) }
        }
    }

    /// Every stream of the graph (reachable from its inputs and outputs), by id.
    var allNodes: [any GraphNode] {
        let (inputs, outputs) = state.withLock { ($0.inputs, $0.outputs) }
        var seen: [Int: any GraphNode] = [:]
        var stack: [any GraphNode] = inputs + outputs.map { $0 as any GraphNode }
        while let node = stack.popLast() {
            guard seen[node.id] == nil else { continue }
            seen[node.id] = node
            stack.append(contentsOf: node.parents)
        }
        return seen.values.sorted { $0.id < $1.id }
    }

    /// The streams that write checkpoint sections.
    var checkpointedNodes: [any CheckpointedNode] { allNodes.compactMap { $0 as? any CheckpointedNode } }

    /// The graph as checkpoints describe it.
    func describe() -> GraphDescription {
        GraphDescription(
            streams: allNodes.map { node in
                GraphDescription.Stream(
                    id: node.id, kind: node.name, slide: node.slideDuration, parents: node.parents.map(\.id),
                    detail: node.checkpointDetail)
            },
            outputCount: outputCount)
    }

    /// Runs `body` while no batch's jobs are generated and no metadata is cleared.
    func withGenerationPaused<R>(_ body: () throws -> R) rethrows -> R {
        try generation.withLock { _ in try body() }
    }

    /// Whether a receiver stream holds blocks no batch has taken yet.
    var hasUnallocatedBlocks: Bool { receiverStreams.contains { $0.hasUnallocatedBlocks } }

    /// Drops the RDDs every stream no longer needs after batch `time`.
    func clearMetadata(_ time: Time) {
        let outputs = state.withLock { $0.outputs }
        generation.withLock { _ in for output in outputs { output.clearMetadata(time) } }
    }

    /// Forgets the streams (breaking the context-stream reference cycle) after dropping their RDDs.
    func stop() {
        let (inputs, outputs) = state.withLock { s in
            defer {
                s.inputs = []
                s.outputs = []
            }
            return (s.inputs, s.outputs)
        }
        var seen = Set<ObjectIdentifier>()
        func clear(_ node: any GraphNode) {
            guard seen.insert(ObjectIdentifier(node)).inserted else { return }
            (node as? any ClearableNode)?.clearAll()
            for parent in node.parents { clear(parent) }
        }
        for node in outputs as [any GraphNode] + inputs { clear(node) }
    }
}

/// A stream that can drop every RDD it generated.
protocol ClearableNode { func clearAll() }

extension DStream: ClearableNode {}
