// The guide's first example, ported line by line: counts the words of each second's text received from a
// TCP server. Run a server first, then this:
//
//     nc -lk 9999                                  (in one terminal; type lines)
//     swift run -c release NetworkWordCount        (in another; or NetworkWordCount HOST PORT)
import Sluice

let arguments = CommandLine.arguments
let host = arguments.count > 1 ? arguments[1] : "localhost"
let port = arguments.count > 2 ? Int(arguments[2]) ?? 9999 : 9999

do {
    // Create a local StreamingContext with two working threads and a batch interval of 1 second.
    // The master requires 2 threads: one for the receiver, one for processing.
    let conf = StreamingConf().setMaster("local[2]").setAppName("NetworkWordCount")
    let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1))

    // A DStream that will connect to host:port, like localhost:9999.
    let lines = ssc.socketTextStream(host, port)
    // Split each line into words.
    let words = lines.flatMap { $0.split(ascii: " ") }
    // Count each word in each batch.
    let pairs = words.map { ($0, 1) }
    let wordCounts = pairs.reduceByKey(+)
    // Print the first ten elements of each RDD generated in this DStream to the console.
    wordCounts.print()

    try ssc.start()  // Start the computation
    try ssc.awaitTermination()  // Wait for the computation to terminate
} catch {
    print("NetworkWordCount: \(error)")
}
