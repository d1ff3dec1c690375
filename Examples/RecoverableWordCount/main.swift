// A word count that survives crashes: the guide's "How to configure checkpointing" pattern
// (`StreamingContext.getOrCreate`), in seven variants. Kill it (even with SIGKILL) and start it again with the
// same arguments: it restores its state, windows and file bookkeeping from the checkpoint, runs again the
// batches it missed, and goes on. SIGTERM or Ctrl-C stops it gracefully (spark.streaming.stopGracefullyOnShutdown).
//
//     RecoverableWordCount MODE CHECKPOINT_DIR OUTPUT_PREFIX SOURCE [BATCH_MS]
//
// MODE        what each batch writes, with saveAsTextFiles, to OUTPUT_PREFIX-<batch time in ms>
//   counts    the batch's word counts                          (stateless)
//   running   every word's count since the start               (updateStateByKey)
//   lifecycle every word's count since the start, a word dropped after two batches without it (updateStateByKey
//             over a plain Codable struct: Spark's object-lifecycle test)
//   window    word counts over the last 5 batches              (reduceByKeyAndWindow with an inverse)
//   timeouts  "word:count" per word seen, "word:timeout:count" when a word is idle for 3 batches (mapWithState)
//   socket    every line's count since the start, lines read from a socket with the write-ahead log on
//   kafka     the batch's count of each record value, records read by a direct Kafka stream (offset ranges in
//             the checkpoint; 100 records a second per partition at most)
// SOURCE      a directory of text files (files are taken by modification time), HOST:PORT for `socket`, or
//             HOST:PORT/TOPIC for `kafka`
import Glibc
import Sluice

let arguments = CommandLine.arguments
guard arguments.count >= 5 else {
    print("usage: RecoverableWordCount counts|running|lifecycle|window|timeouts|socket|kafka CHECKPOINT_DIR OUTPUT_PREFIX SOURCE [BATCH_MS]")
    exit(2)
}
let (mode, checkpointDirectory, output, source) = (arguments[1], arguments[2], arguments[3], arguments[4])
let batch = Duration.milliseconds(arguments.count > 5 ? Int64(arguments[5]) ?? 100 : 100)

func words(_ context: StreamingContext) -> DStream<String> {
    context.fileStream(source, newFilesOnly: false) { bytes, _ in
        String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == " " }).map(String.init)
    }
}

/// The state of `lifecycle`: a counter and how many batches in a row had no new value, in a plain `Codable`
/// struct (what a Spark program's `Serializable` state object is), with no other declaration.
struct WordState: Codable, Sendable {
    var counter = 0
    var expireCounter = 0
}

func createContext() throws -> StreamingContext {
    var conf = StreamingConf().setMaster("local[2]").setAppName("RecoverableWordCount")
        .set("spark.streaming.stopGracefullyOnShutdown", "true")
        .set("spark.streaming.gracefulStopTimeout", "60s")  // batches run again after a crash finish first
    if mode == "socket" {
        conf = conf.set("spark.streaming.receiver.writeAheadLog.enable", "true")
            .set("spark.streaming.blockInterval", "\(max(1, batch.wholeMilliseconds / 2))ms")
            .set("spark.master", "local[3]")
    }
    if mode == "kafka" { conf = conf.set("spark.streaming.kafka.maxRatePerPartition", "100") }
    let ssc = try StreamingContext(conf: conf, batchDuration: batch)
    ssc.checkpoint(checkpointDirectory)
    switch mode {
    case "counts":
        words(ssc).map { ($0, 1) }.reduceByKey(+).saveAsTextFiles(prefix: output)
    case "running":
        words(ssc).map { ($0, 1) }
            .updateStateByKey { (values: [Int], count: Int?) -> Int? in values.reduce(count ?? 0, +) }
            .checkpoint(batch * 2)
            .saveAsTextFiles(prefix: output)
    case "lifecycle":
        words(ssc).map { ($0, 1) }
            .updateStateByKey { (values: [Int], state: WordState?) -> WordState? in
                var object = state ?? WordState()
                let new = values.reduce(0, +)
                if new == 0 {
                    object.expireCounter += 1
                } else {
                    object.counter += new
                    object.expireCounter = 0
                }
                return object.expireCounter == 2 ? nil : object  // seen twice with no new values: dropped
            }
            .checkpoint(batch * 2)
            .mapValues(\.counter)
            .saveAsTextFiles(prefix: output)
    case "window":
        words(ssc).map { ($0, 1) }
            .reduceByKeyAndWindow(+, inverse: -, windowDuration: batch * 5, slideDuration: batch, filter: { $0.1 != 0 })
            .checkpoint(batch * 2)
            .saveAsTextFiles(prefix: output)
    case "timeouts":
        let spec = StateSpec<String, Int, Int, String>.function { word, one, state in
            if state.isTimingOut { return "\(word):timeout:\(state.getOption() ?? 0)" }
            let count = (state.getOption() ?? 0) + (one ?? 0)
            try state.update(count)
            return "\(word):\(count)"
        }.timeout(batch * 3)
        words(ssc).map { ($0, 1) }.mapWithState(spec).checkpoint(batch * 2).saveAsTextFiles(prefix: output)
    case "socket":
        let parts = source.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else {
            throw StreamingError(.invalidArgument, "socket mode needs HOST:PORT, got \(source)")
        }
        ssc.socketTextStream(String(parts[0]), port).map { ($0, 1) }
            .updateStateByKey { (values: [Int], count: Int?) -> Int? in values.reduce(count ?? 0, +) }
            .checkpoint(batch * 2)
            .saveAsTextFiles(prefix: output)
    case "kafka":
        let parts = source.split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { throw StreamingError(.invalidArgument, "kafka mode needs HOST:PORT/TOPIC, got \(source)") }
        let params = ["bootstrap.servers": String(parts[0]), "group.id": "recoverable", "auto.offset.reset": "earliest"]
        KafkaUtils.createDirectStream(ssc, .preferConsistent, .subscribe([String(parts[1])], params))
            .map { ($0.valueString, 1) }.reduceByKey(+)
            .saveAsTextFiles(prefix: output)
    default:
        throw StreamingError(.invalidArgument, "unknown mode \(mode): use counts, running, lifecycle, window, timeouts, socket or kafka")
    }
    return ssc
}

do {
    let ssc = try StreamingContext.getOrCreate(checkpointPath: checkpointDirectory, creatingFunc: createContext)
    try ssc.start()
    try ssc.awaitTermination()
} catch {
    print("RecoverableWordCount: \(error)")
    exit(1)
}
