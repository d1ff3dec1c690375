import Glibc
import SluiceColumnar
import SluiceExecution

/// A built-in source that makes records itself, seeded and paced to a rate (or as fast as it can): the input
/// of `streambench` and of tests that need a steady stream without a server. Records go through the block
/// generator like those of ``Receiver/store(_:)``: `spark.streaming.receiver.maxRate` and backpressure limit
/// them, and they are cut into a block every block interval.
final class GeneratorReceiver<Element: Sendable>: Receiver<Element>, @unchecked Sendable {
    // @unchecked: immutable after init.
    let ratePerSecond: Double?
    let seed: UInt64
    /// Makes n records.
    let make: @Sendable (inout WyRand, Int) -> [Element]
    /// Writes the same n records straight into a block's column (no element made), as `make` would.
    let write: @Sendable (inout WyRand, Int, inout BlockBuilder) -> Void
    /// Records per chunk at most.
    let maxChunk = 4_096

    init(
        ratePerSecond: Double?, seed: UInt64, make: @escaping @Sendable (inout WyRand, Int) -> [Element],
        write: @escaping @Sendable (inout WyRand, Int, inout BlockBuilder) -> Void
    ) {
        self.ratePerSecond = ratePerSecond.flatMap { $0 > 0 ? $0 : nil }
        self.seed = seed
        self.make = make
        self.write = write
        super.init(storageLevel: .memoryAndDiskSer2)
    }

    override func onStart() {
        do {
            try DetachedThread.run("generator receiver") { [self] in generate() }
        } catch {
            restart("cannot generate records", error: error)
        }
    }

    private func generate() {
        var random = WyRand(seed: seed)
        let pacer = ratePerSecond.map(Pacer.init)
        var produced = 0
        while !isStopped {
            // About 5 ms of records under the current limit, so that a limited rate stays smooth.
            let limit = supervisor?.generator.limiter.rate
            let chunk = limit.map { max(1, min(maxChunk, Int($0 / 200))) } ?? maxChunk
            var count = chunk
            if let pacer {
                let due = pacer.due(after: produced)
                if due == 0 { continue }  // slept
                count = min(due, chunk)
            }
            do {
                // Straight into the block's column; the same records as elements if the stream keeps those.
                var attempt = random
                if try storeEncoded(rows: count, { write(&attempt, count, &$0) }) {
                    random = attempt
                } else {
                    try storeBuffered(make(&random, count))
                }
            } catch {
                return  // stopped
            }
            produced += count
        }
    }
}

/// Paces a producer to `ratePerSecond` records a second from its making on: the generator's loop and
/// streambench's socket sender.
package struct Pacer: Sendable {
    let rate: Double
    let start = monotonicNanoseconds()

    package init(ratePerSecond: Double) { rate = ratePerSecond }

    /// How many records are due after `produced` were made: at least a millisecond's (one when the rate is under
    /// 1,000 a second), since taking whatever was due made a loop spin a record or two a pass, its overhead
    /// costing most of a core that the job needed. When fewer are due, sleeps until they are (at most 10 ms, so
    /// that the caller sees a stop) and returns 0.
    package func due(after produced: Int) -> Int {
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        let due = Int(elapsed * rate) - produced
        let least = max(1, Int(rate / 1_000))
        if due >= least { return due }
        usleep(UInt32(min(max((Double(produced + least) / rate - elapsed) * 1e6, 50), 10_000)))
        return 0
    }
}

/// wyrand (from wyhash): a fast, seeded random sequence for generated data. A counter advanced by an odd constant,
/// mixed by one 64x64-bit product (its two halves xored): against SplitMix64's two products and shifts, a
/// generated Int cost 1.1 ns instead of 1.7-1.9 (SplitMix64's products, which the compiler vectorized with 32-bit
/// SSE2 multiplies, were most of the grouped workload's generator).
package struct WyRand: Sendable {
    private var state: UInt64
    package init(seed: UInt64) { state = seed }

    @inline(__always)
    package mutating func next() -> UInt64 {
        state &+= 0xA076_1D64_78BD_642F
        let product = state.multipliedFullWidth(by: state ^ 0xE703_7ED1_A0B4_28DB)
        return product.high ^ product.low
    }

    /// A number in 0..<bound (bound > 0): the high half of a 64x64-bit product (Lemire's method), not a
    /// division, which cost more than the rest of making a word.
    @inline(__always)
    package mutating func next(below bound: Int) -> Int {
        Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}

extension StreamingContext {
    /// A stream of generated integers, uniform over `0..<distinctValues`, `ratePerSecond` of them a second (nil:
    /// as fast as the receiver can store them), the same sequence for the same `seed`.
    public func generatedIntStream(
        ratePerSecond: Int?, distinctValues: Int = 1_000_000, seed: UInt64 = 1
    ) -> ReceiverInputDStream<Int> {
        let bound = max(1, distinctValues)
        let receiver = GeneratorReceiver<Int>(
            ratePerSecond: ratePerSecond.map(Double.init), seed: seed,
            make: { random, n in (0..<n).map { _ in random.next(below: bound) } },
            write: { random, n, builder in
                builder.withColumn(0) { column in
                    column.withAppender(of: Int64.self) { a in
                        var local = random  // in registers: the column's stores could alias the captured one
                        a.append(count: n) { Int64(local.next(below: bound)) }
                        random = local
                    }
                }
            })
        return ReceiverInputDStream(context: self, receiver: receiver, name: "generatedIntStream")
    }

    /// A stream of generated lines of `wordsPerLine` words ("w0" ... "w<vocabulary - 1>", uniform, separated
    /// by one space), `ratePerSecond` lines a second (nil: as fast as possible), the same for the same `seed`.
    /// Lines come in runs of 16 consecutive lines of a pool of 8,192 made once, up front, each run starting at a
    /// uniformly drawn line (see `LineMaker`).
    public func generatedLineStream(
        ratePerSecond: Int?, wordsPerLine: Int = 10, vocabulary: Int = 10_000, seed: UInt64 = 1
    ) -> ReceiverInputDStream<String> {
        let lines = LineMaker(wordsPerLine: wordsPerLine, vocabulary: vocabulary)
        let receiver = GeneratorReceiver<String>(
            ratePerSecond: ratePerSecond.map(Double.init), seed: seed,
            make: { random, n in
                var made: [String] = []
                made.reserveCapacity(n)
                lines.lines(n, &random) { made.append(String(decoding: $0, as: UTF8.self)) }
                return made
            },
            write: { random, n, builder in
                builder.withColumn(0) { column in
                    column.withBytesAppender { lines.write(n, &random, to: &$0) }
                }
            })
        return ReceiverInputDStream(context: self, receiver: receiver, name: "generatedLineStream")
    }
}

/// Lines of words drawn from "w0" ... "w<vocabulary - 1>": runs of 16 consecutive lines from a pool made up front
/// (words uniform over the vocabulary, one space between), each run starting at a uniformly drawn line, so that
/// making a line is a copy of bytes read in order. Making each word afresh cost 80-90 ns a line, and drawing
/// each line on its own about 45 (a cache miss a line): a tenth, then a twentieth of a core at 1M lines/s taken
/// from the job the generator feeds.
package struct LineMaker: Sendable {
    /// The pool's lines, end to end.
    let bytes: [UInt8]
    /// Line i of the pool is `bytes[starts[i]..<starts[i + 1]]`.
    let starts: [Int]
    /// The longest a line can be.
    package let maxLineBytes: Int

    /// Lines in the pool: 8,192 lines of 10 words hold each word of a 10,000-word vocabulary about 8 times, and
    /// (about 0.5 MB) stay in a core's cache.
    package static let poolLines = 8_192

    package init(wordsPerLine: Int, vocabulary: Int) {
        let words = (0..<max(1, vocabulary)).map { Array("w\($0)".utf8) }
        let perLine = max(1, wordsPerLine)
        var random = WyRand(seed: 0x5EED_11E5)  // one pool for every run: runs differ in the draws from it
        var bytes: [UInt8] = []
        var starts = [0]
        for _ in 0..<LineMaker.poolLines {
            for w in 0..<perLine {
                if w > 0 { bytes.append(UInt8(ascii: " ")) }
                bytes += words[random.next(below: words.count)]
            }
            starts.append(bytes.count)
        }
        self.bytes = bytes
        self.starts = starts
        maxLineBytes = perLine * ((words.map(\.count).max() ?? 0) + 1)
    }

    /// Lines in a run.
    static let runLines = 16

    /// Calls `body` with `n` lines, one after the other, each valid during the call.
    package func lines(_ n: Int, _ random: inout WyRand, _ body: (UnsafeRawBufferPointer) -> Void) {
        runs(n, &random) { base, starts, run in
            for i in run {
                // Safe: starts[i] <= starts[i + 1] <= the pool's size.
                body(UnsafeRawBufferPointer(start: base + starts[i], count: starts[i &+ 1] &- starts[i]))
            }
        }
    }

    /// Appends `n` lines (the same lines as ``lines(_:_:_:)`` for the same `random`) to a string column: each run
    /// of lines in one copy, since they lie end to end in the pool.
    package func write(_ n: Int, _ random: inout WyRand, to appender: inout BytesAppender) {
        runs(n, &random) { base, starts, run in
            // Safe: run.upperBound < starts.count, and starts[run.lowerBound] is within the pool.
            appender.append(
                rows: UnsafeBufferPointer(rebasing: starts[(run.lowerBound &+ 1)...run.upperBound]),
                from: base + starts[run.lowerBound], origin: starts[run.lowerBound])
        }
    }

    /// Draws the runs of `n` lines: calls `body` with the pool's bytes, the lines' starts in it and each run's
    /// line numbers.
    private func runs(
        _ n: Int, _ random: inout WyRand,
        _ body: (UnsafeRawPointer, UnsafeBufferPointer<Int>, Range<Int>) -> Void
    ) {
        bytes.withUnsafeBytes { bytes in
            starts.withUnsafeBufferPointer { starts in
                guard let base = bytes.baseAddress else { return }
                let firsts = starts.count - LineMaker.runLines  // a run starts at 0 ..< pool - runLines + 1
                var made = 0
                while made < n {
                    let first = random.next(below: firsts)
                    let count = min(LineMaker.runLines, n - made)
                    made += count
                    body(base, starts, first..<first + count)
                }
            }
        }
    }
}
