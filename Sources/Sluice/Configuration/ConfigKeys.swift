/// The kind of value a configuration key takes, and how it is read.
enum ConfigValueKind: Sendable {
    /// A duration; a bare number is in `defaultUnit` ("ms" or "s").
    case duration(defaultUnit: String)
    /// A byte size of at least `minimum` bytes; a bare number is in bytes.
    case size(minimum: Int = 0)
    case int(minimum: Int, maximum: Int = Int.max)
    case double(minimum: Double)
    case bool
    /// One of the listed words.
    case choice([String])
    case text

    /// The accepted form, for error messages.
    var form: String {
        switch self {
        case .duration(let unit):
            return "a duration such as 200ms, 2s, 1min, 1h (a bare number is in \(unit))"
        case .size(let minimum):
            return "a size such as 512m, 2g, 64k (a bare number is in bytes)" + (minimum > 0 ? ", at least \(minimum) bytes" : "")
        case .int(let minimum, let maximum):
            return maximum == .max ? "a whole number >= \(minimum)" : "a whole number from \(minimum) to \(maximum)"
        case .double(let minimum): return "a number >= \(minimum)"
        case .bool: return "true or false"
        case .choice(let words): return "one of " + words.joined(separator: ", ")
        case .text: return "text"
        }
    }
}

/// A configuration key Sluice knows: Spark's, with Spark's default, or Sluice's own (`sluice.*`).
struct ConfigKey: Sendable {
    let name: String
    let kind: ConfigValueKind
    /// Spark's default, as text (nil: unset).
    let defaultValue: String?
    /// What it sets, for `tuning/README.md` and `--help`-style listings.
    let meaning: String
}

/// Every key Sluice reads (Spark's table in reference/spark-dstream-facts.md §16, plus Sluice's own).
enum ConfigKeys {
    static let all: [ConfigKey] = [
        ConfigKey(name: "spark.master", kind: .text, defaultValue: "local[*]",
            meaning: "where tasks run: local, local[n], local[*]"),
        ConfigKey(name: "spark.app.name", kind: .text, defaultValue: nil, meaning: "the application's name"),
        ConfigKey(name: "sluice.log.level", kind: .choice(["trace", "debug", "info", "notice", "warning", "error", "critical"]),
            defaultValue: "info", meaning: "the least severe message Sluice's loggers (swift-log, labels sluice.*) pass on"),
        ConfigKey(name: "spark.eventLog.enabled", kind: .bool, defaultValue: "false",
            meaning: "write every listener event as a JSON line under spark.eventLog.dir (read back with EventLog.read)"),
        ConfigKey(name: "spark.eventLog.dir", kind: .text, defaultValue: "/tmp/spark-events",
            meaning: "where event logs go: one directory per run (a file: prefix is accepted)"),
        ConfigKey(name: "spark.eventLog.rolling.maxFileSize", kind: .size(), defaultValue: "128m",
            meaning: "an event log file is closed and the next begun past this size"),
        ConfigKey(name: "spark.ui.enabled", kind: .bool, defaultValue: "true",
            meaning: "serve the Streaming page, the JSON API and /metrics while the context runs"),
        ConfigKey(name: "spark.ui.port", kind: .int(minimum: 0, maximum: 65_535), defaultValue: "4040",
            meaning: "the page's port; taken, the next free one (up to spark.port.maxRetries more); 0: any free port"),
        ConfigKey(name: "spark.port.maxRetries", kind: .int(minimum: 0, maximum: 1_000), defaultValue: "16",
            meaning: "how many ports after spark.ui.port are tried when it is taken"),
        ConfigKey(name: "sluice.ui.host", kind: .text, defaultValue: "127.0.0.1",
            meaning: "the address the page binds (only this machine by default; 0.0.0.0 opens it to the network)"),
        ConfigKey(name: "spark.default.parallelism", kind: .int(minimum: 1), defaultValue: nil,
            meaning: "partitions of shuffles with no numPartitions (default: the number of workers)"),
        ConfigKey(name: "spark.rdd.compress", kind: .bool, defaultValue: "false",
            meaning: "accepted for compatibility: serialized partitions are always columnar blocks"),
        ConfigKey(name: "spark.local.dir", kind: .text, defaultValue: nil,
            meaning: "Spark's scratch directory; used for spill when sluice.spill.dir is not set"),
        ConfigKey(name: "spark.streaming.backpressure.enabled", kind: .bool, defaultValue: "false",
            meaning: "adapt receivers' rates to the processing rate (PID estimator)"),
        ConfigKey(name: "spark.streaming.backpressure.initialRate", kind: .int(minimum: 1), defaultValue: nil,
            meaning: "records/s per receiver before the first estimate (default: receiver.maxRate)"),
        ConfigKey(name: "spark.streaming.backpressure.rateEstimator", kind: .choice(["pid"]), defaultValue: "pid",
            meaning: "the rate estimator"),
        ConfigKey(name: "spark.streaming.backpressure.pid.proportional", kind: .double(minimum: 0),
            defaultValue: "1.0", meaning: "PID proportional gain"),
        ConfigKey(name: "spark.streaming.backpressure.pid.integral", kind: .double(minimum: 0),
            defaultValue: "0.2", meaning: "PID integral gain"),
        ConfigKey(name: "spark.streaming.backpressure.pid.derived", kind: .double(minimum: 0),
            defaultValue: "0.0", meaning: "PID derivative gain"),
        ConfigKey(name: "spark.streaming.backpressure.pid.minRate", kind: .double(minimum: 0),
            defaultValue: "100", meaning: "PID lowest rate, records/s"),
        ConfigKey(name: "spark.streaming.receiver.maxRate", kind: .int(minimum: 0), defaultValue: nil,
            meaning: "records/s per receiver (unset or 0: unlimited)"),
        ConfigKey(name: "spark.streaming.blockInterval", kind: .duration(defaultUnit: "ms"), defaultValue: "200ms",
            meaning: "how often received data is cut into a block (one block, one partition)"),
        ConfigKey(name: "spark.streaming.blockQueueSize", kind: .int(minimum: 1), defaultValue: "10",
            meaning: "finished blocks waiting to be stored, per block generator"),
        ConfigKey(name: "spark.streaming.receiverRestartDelay", kind: .duration(defaultUnit: "ms"),
            defaultValue: "2000", meaning: "wait before restarting a receiver"),
        ConfigKey(name: "spark.streaming.receiver.blockStoreTimeout", kind: .duration(defaultUnit: "s"),
            defaultValue: "30", meaning: "accepted for compatibility: a block is logged and stored in the process, "
                + "with no remote store to wait for"),
        ConfigKey(name: "spark.streaming.receiver.writeAheadLog.enable", kind: .bool, defaultValue: "false",
            meaning: "append every received block to a write-ahead log in the checkpoint directory before a batch "
                + "takes it, and replay the unprocessed ones after a crash (needs a checkpoint directory)"),
        ConfigKey(name: "spark.streaming.receiver.writeAheadLog.class", kind: .text, defaultValue: nil,
            meaning: "Spark's custom WAL class: not supported"),
        ConfigKey(name: "spark.streaming.receiver.writeAheadLog.rollingIntervalSecs", kind: .int(minimum: 1, maximum: 31_536_000),
            defaultValue: "60", meaning: "seconds per receiver WAL segment"),
        ConfigKey(name: "spark.streaming.receiver.writeAheadLog.maxFailures", kind: .int(minimum: 1),
            defaultValue: "3", meaning: "attempts per WAL write"),
        ConfigKey(name: "spark.streaming.receiver.writeAheadLog.closeFileAfterWrite", kind: .bool,
            defaultValue: "false", meaning: "accepted for compatibility (for object stores): segments are local "
                + "files, flushed per block"),
        ConfigKey(name: "spark.streaming.driver.writeAheadLog.class", kind: .text, defaultValue: nil,
            meaning: "Spark's custom WAL class: not supported"),
        ConfigKey(name: "spark.streaming.driver.writeAheadLog.rollingIntervalSecs", kind: .int(minimum: 1, maximum: 31_536_000),
            defaultValue: "60", meaning: "accepted for compatibility: which blocks each batch took is logged in the "
                + "receiver's write-ahead log; there is no driver log"),
        ConfigKey(name: "spark.streaming.driver.writeAheadLog.maxFailures", kind: .int(minimum: 1),
            defaultValue: "3", meaning: "accepted for compatibility (no driver log)"),
        ConfigKey(name: "spark.streaming.driver.writeAheadLog.closeFileAfterWrite", kind: .bool,
            defaultValue: "false", meaning: "accepted for compatibility (no driver log)"),
        ConfigKey(name: "spark.streaming.driver.writeAheadLog.allowBatching", kind: .bool, defaultValue: "true",
            meaning: "accepted for compatibility (no driver log; receiver log appends share flushes)"),
        ConfigKey(name: "spark.streaming.driver.writeAheadLog.batchingTimeout", kind: .duration(defaultUnit: "ms"),
            defaultValue: "5000", meaning: "accepted for compatibility (no driver log)"),
        ConfigKey(name: "spark.streaming.unpersist", kind: .bool, defaultValue: "true",
            meaning: "drop the cached RDDs of batches older than the remember duration"),
        ConfigKey(name: "spark.streaming.stopGracefullyOnShutdown", kind: .bool, defaultValue: "false",
            meaning: "on SIGTERM/SIGINT, stop gracefully (finish received data) before exiting"),
        ConfigKey(name: "spark.streaming.stopSparkContextByDefault", kind: .bool, defaultValue: "true",
            meaning: "accepted for compatibility (a context owns its engine)"),
        ConfigKey(name: "spark.streaming.gracefulStopTimeout", kind: .duration(defaultUnit: "ms"), defaultValue: nil,
            meaning: "longest graceful stop (default: 10 batch intervals)"),
        ConfigKey(name: "spark.streaming.concurrentJobs", kind: .int(minimum: 1), defaultValue: "1",
            meaning: "output operations run at once (1: strictly in order)"),
        ConfigKey(name: "spark.streaming.clock", kind: .text, defaultValue: "org.apache.spark.util.SystemClock",
            meaning: "accepted for compatibility: pass a clock to StreamingContext(conf:batchDuration:clock:)"),
        ConfigKey(name: "spark.streaming.manualClock.jump", kind: .duration(defaultUnit: "ms"), defaultValue: "0",
            meaning: "test clock jump on restart"),
        ConfigKey(name: "spark.streaming.checkpoint.directory", kind: .text, defaultValue: nil,
            meaning: "if set, the context checkpoints there from construction"),
        ConfigKey(name: "spark.streaming.ui.retainedBatches", kind: .int(minimum: 1), defaultValue: "1000",
            meaning: "batches kept for monitoring"),
        ConfigKey(name: "spark.streaming.sessionByKey.deltaChainThreshold", kind: .int(minimum: 1),
            defaultValue: "20", meaning: "Spark's StateMap compaction (Sluice updates state in place)"),
        ConfigKey(name: "spark.streaming.fileStream.minRememberDuration", kind: .duration(defaultUnit: "s"),
            defaultValue: "60s", meaning: "how far back file streams look for new files"),
        ConfigKey(name: "spark.streaming.minRememberDuration", kind: .duration(defaultUnit: "s"), defaultValue: nil,
            meaning: "old name of spark.streaming.fileStream.minRememberDuration"),
        ConfigKey(name: "spark.streaming.dynamicAllocation.enabled", kind: .bool, defaultValue: "false",
            meaning: "accepted for compatibility: one process, no executors to add"),
        ConfigKey(name: "spark.streaming.kafka.maxRatePerPartition", kind: .int(minimum: 0), defaultValue: "0",
            meaning: "Kafka direct stream: records/s per partition (0: unlimited)"),
        ConfigKey(name: "spark.streaming.kafka.minRatePerPartition", kind: .int(minimum: 1), defaultValue: "1",
            meaning: "Kafka direct stream: least records/s per partition"),
        ConfigKey(name: "spark.streaming.kafka.consumer.poll.ms", kind: .duration(defaultUnit: "ms"), defaultValue: "120s",
            meaning: "Kafka direct stream: how long a task waits for the next record of its offset range"),
        ConfigKey(name: "spark.streaming.kafka.consumer.cache.maxCapacity", kind: .int(minimum: 1), defaultValue: "64",
            meaning: "Kafka direct stream: consumers kept between batches for reading offset ranges"),
        ConfigKey(name: "sluice.backpressure.floor", kind: .double(minimum: 0), defaultValue: "0.9",
            meaning: "backpressure never sets a receiver below this fraction of the last processing rate, so a "
                + "backlog drains gently instead of stopping ingestion (0: Spark's behaviour; at most 1)"),
        ConfigKey(name: "sluice.receiver.releaseBlocksAtBatchEnd", kind: .bool, defaultValue: "true",
            meaning: "a batch's received blocks go when its jobs finish, unless a window, remember or checkpoint "
                + "interval keeps the stream longer (false: Spark's rule, kept until the next batch finishes)"),
        ConfigKey(name: "sluice.receiver.maxBlockBytes", kind: .size(minimum: 1), defaultValue: "15m",
            meaning: "a received columnar block this large is cut at once, as an extra block of its block interval, "
                + "so that at high rates blocks keep one size of buffer that is recycled (Spark grows one block "
                + "without bound)"),
        ConfigKey(name: "sluice.receiver.maxRecordBytes", kind: .size(), defaultValue: "64m",
            meaning: "socket streams: the longest record (line, delimited record) kept; a longer one is reported, "
                + "with its offset, and dropped up to its end, so that a peer cannot make a receiver hold unbounded memory"),
        ConfigKey(name: "sluice.memory.limit", kind: .size(), defaultValue: nil,
            meaning: "bytes that shuffles, caches, windows, received blocks and state may hold: past it they spill "
                + "(memory-only receivers pause; state is kept and counted) (unset: unlimited)"),
        ConfigKey(name: "sluice.spill.dir", kind: .text, defaultValue: nil,
            meaning: "directory for spilled data (default: spark.local.dir, $TMPDIR, /tmp)"),
        ConfigKey(name: "sluice.zstd.level", kind: .int(minimum: -7, maximum: 22), defaultValue: "1",
            meaning: "zstd level of spilled, logged and checkpointed blocks"),
        ConfigKey(name: "sluice.checkpoint.retained", kind: .int(minimum: 1), defaultValue: "10",
            meaning: "checkpoint files kept in the checkpoint directory, newest first (Spark keeps 10)"),
        ConfigKey(name: "sluice.checkpoint.interval", kind: .duration(defaultUnit: "ms"), defaultValue: nil,
            meaning: "how often the context checkpoints (default: the shortest stream checkpoint interval, "
                + "else every batch); a multiple of the batch interval"),
        ConfigKey(name: "sluice.wal.fsync", kind: .choice(["always", "never"]), defaultValue: "always",
            meaning: "receiver WAL: flush each group of appended blocks to stable storage before store returns "
                + "(always), or leave it to the OS (never: survives a process crash, not a power loss)"),
        ConfigKey(name: "sluice.workers.spinWait", kind: .duration(defaultUnit: "us"), defaultValue: "50us",
            meaning: "how long a worker thread that ran out of tasks keeps looking for one before it sleeps: where "
                + "waking a sleeping CPU takes tens of microseconds (virtual machines), a job's next stage then starts at "
                + "once (0: sleep at once)"),
        ConfigKey(name: "sluice.listener.queueCapacity", kind: .int(minimum: 1), defaultValue: "10000",
            meaning: "listener events waiting for delivery; past it events are dropped and counted"),
    ]

    static let byName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The known key nearest to `name` by edit distance.
    static func nearest(to name: String) -> String? {
        all.min { editDistance($0.name, name) < editDistance($1.name, name) }?.name
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous = Array(0...y.count)
        for i in 1...x.count {
            var current = [i] + Array(repeating: 0, count: y.count)
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[y.count]
    }
}
