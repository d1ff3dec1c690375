import Metrics
import Prometheus
import SluiceColumnar
import SluiceExecution
import Synchronization

/// A context's metrics through swift-metrics, into a Prometheus registry of the context's own (no global
/// bootstrap: a program keeps its own metrics backend), rendered in Prometheus's text format by
/// ``prometheusText()``. Names follow Prometheus's rules: `sluice_` prefix, base units, `_total` counters.
/// Counters and histograms follow the events and checkpoint writes; the gauges of what is going on now (active
/// batches and receivers, memory, state sizes) and the engine's running totals (spill, write-ahead log appends)
/// are read when the text is rendered, from the status model and ``EngineStatus``.
final class StreamingMetrics: StreamingListener {
    private let registry = PrometheusCollectorRegistry()
    private let status: StreamingStatus
    private let batchSeconds: Double
    private let batchesCompleted: Metrics.Counter
    private let batchesFailed: Metrics.Counter
    private let recordsProcessed: Metrics.Counter
    private let recordsReceived: Metrics.Counter
    private let processingTime: Metrics.Timer
    private let schedulingDelay: Metrics.Timer
    private let totalDelay: Metrics.Timer
    private let activeBatches: Metrics.Gauge
    private let memoryUsed: Metrics.Gauge
    private let receiversActive: Metrics.Gauge
    private let memoryLimit: Metrics.Gauge
    private let spilledBytes: Metrics.Counter
    private let spillFilesLive: Metrics.Gauge
    private let checkpointWrite: Metrics.Timer
    private let checkpointBytes: Metrics.Gauge
    private let factory: PrometheusMetricsFactory
    private let perStream = Mutex<[Int: (rate: Metrics.Gauge, limit: Metrics.Gauge)]>([:])
    /// The engine's running totals as last rendered (counters grow by the difference).
    private let rendered = Mutex(Totals())

    private struct Totals {
        var spilledBytes = 0
        var walAppends: [Int: (count: Int, milliseconds: Double)] = [:]
    }

    init(status: StreamingStatus, batchDuration: Duration) {
        self.status = status
        batchSeconds = max(0.001, Double(batchDuration.wholeMilliseconds) / 1_000)
        let factory = PrometheusMetricsFactory(registry: registry)
        self.factory = factory
        batchesCompleted = Metrics.Counter(label: "sluice_batches_completed_total", factory: factory)
        batchesFailed = Metrics.Counter(label: "sluice_batches_failed_total", factory: factory)
        recordsProcessed = Metrics.Counter(label: "sluice_records_processed_total", factory: factory)
        recordsReceived = Metrics.Counter(label: "sluice_records_received_total", factory: factory)
        processingTime = Metrics.Timer(label: "sluice_batch_processing_seconds", factory: factory)
        schedulingDelay = Metrics.Timer(label: "sluice_batch_scheduling_delay_seconds", factory: factory)
        totalDelay = Metrics.Timer(label: "sluice_batch_total_delay_seconds", factory: factory)
        activeBatches = Metrics.Gauge(label: "sluice_batches_active", factory: factory)
        memoryUsed = Metrics.Gauge(label: "sluice_memory_reserved_bytes", factory: factory)
        receiversActive = Metrics.Gauge(label: "sluice_receivers_active", factory: factory)
        memoryLimit = Metrics.Gauge(label: "sluice_memory_limit_bytes", factory: factory)
        spilledBytes = Metrics.Counter(label: "sluice_spilled_bytes_total", factory: factory)
        spillFilesLive = Metrics.Gauge(label: "sluice_spill_files_live", factory: factory)
        checkpointWrite = Metrics.Timer(label: "sluice_checkpoint_write_seconds", factory: factory)
        checkpointBytes = Metrics.Gauge(label: "sluice_checkpoint_bytes", factory: factory)
    }

    /// The metrics in Prometheus's text exposition format (what `/metrics` serves), with `engine`'s figures.
    func prometheusText(engine: EngineStatus) -> String {
        let now = status.statistics()
        activeBatches.record(now.numActiveBatches)
        receiversActive.record(now.numActiveReceivers)
        memoryUsed.record(engine.memory.reservedBytes)
        if let limit = engine.memory.limitBytes { memoryLimit.record(limit) }
        for category in MemoryCategory.allCases {
            Metrics.Gauge(
                label: "sluice_memory_reserved_category_bytes", dimensions: [("category", category.rawValue)],
                factory: factory
            ).record(engine.memory.byCategory[category] ?? 0)
        }
        spillFilesLive.record(engine.spill.liveFiles)
        for state in engine.states {
            Metrics.Gauge(
                label: "sluice_state_keys", dimensions: [("stream", "\(state.streamId)"), ("operation", state.name)],
                factory: factory
            ).record(state.keys)
        }
        rendered.withLock { totals in
            spilledBytes.increment(by: max(0, engine.spill.bytesSpilled - totals.spilledBytes))
            totals.spilledBytes = max(totals.spilledBytes, engine.spill.bytesSpilled)
            for log in engine.writeAheadLogs {
                let dimensions = [("stream", "\(log.streamId)")]
                let before = totals.walAppends[log.streamId] ?? (0, 0)
                Metrics.Counter(label: "sluice_wal_appends_total", dimensions: dimensions, factory: factory)
                    .increment(by: max(0, log.appends.count - before.count))
                Metrics.FloatingPointCounter(label: "sluice_wal_append_seconds_total", dimensions: dimensions, factory: factory)
                    .increment(by: max(0, log.appends.totalMilliseconds - before.milliseconds) / 1_000)
                totals.walAppends[log.streamId] = (log.appends.count, log.appends.totalMilliseconds)
            }
        }
        return registry.emitToString()
    }

    /// A checkpoint was written in `milliseconds`, with `bytes` of stream data.
    func checkpointWritten(milliseconds: Double, bytes: Int) {
        checkpointWrite.recordNanoseconds(Int64(milliseconds * 1_000_000))
        checkpointBytes.record(bytes)
    }

    private func streamGauges(_ streamId: Int) -> (rate: Metrics.Gauge, limit: Metrics.Gauge) {
        perStream.withLock { gauges in
            if let existing = gauges[streamId] { return existing }
            let dimensions = [("stream", "\(streamId)")]
            let made = (
                Metrics.Gauge(label: "sluice_input_records_per_second", dimensions: dimensions, factory: factory),
                Metrics.Gauge(label: "sluice_input_rate_limit_records_per_second", dimensions: dimensions, factory: factory))
            gauges[streamId] = made
            return made
        }
    }

    func onBatchSubmitted(_ batch: BatchInfo) { recordsReceived.increment(by: Int(batch.numRecords)) }

    func onBatchCompleted(_ batch: BatchInfo) {
        batchesCompleted.increment()
        if batch.outputOperationInfos.values.contains(where: { $0.failureReason != nil }) { batchesFailed.increment() }
        recordsProcessed.increment(by: Int(batch.numRecords))
        if let ms = batch.processingDelay { processingTime.recordMilliseconds(ms) }
        if let ms = batch.schedulingDelay { schedulingDelay.recordMilliseconds(ms) }
        if let ms = batch.totalDelay { totalDelay.recordMilliseconds(ms) }
        for (streamId, input) in batch.streamIdToInputInfo {
            let gauges = streamGauges(streamId)
            gauges.rate.record(Double(input.numRecords) / batchSeconds)
            if let limit = input.rateLimit { gauges.limit.record(limit) }
        }
    }
}
