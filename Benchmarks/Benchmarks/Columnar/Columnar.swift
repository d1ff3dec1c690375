import Benchmark
import SluiceColumnar

// The format layer's figures (issue "Foundation"): encode and decode of an Int64 column and of a String
// column of short words, zstd on such a block, and allocator calls per recycled block in steady state.
// Throughput = bytes of column data per second: divide the bytes below by the wall-clock time per iteration.

let rows = 1 << 20  // 8 MiB of Int64 values
let vocabulary = (0..<10_000).map { "w\($0)" }
let words = (0..<rows).map { vocabulary[($0 &* 2_654_435_761) % vocabulary.count] }

func int64Block(_ builder: inout BlockBuilder) throws -> Block {
    builder.reset()
    builder.withColumn(0) { column in
        column.withAppender(of: Int64.self) { a in for i in 0..<rows { a.append(Int64(i &* 7)) } }
    }
    return try builder.seal()
}

func stringBlock(_ builder: inout BlockBuilder) throws -> Block {
    builder.reset()
    builder.withColumn(0) { column in
        column.withBytesAppender { a in for w in words { a.append(w) } }
    }
    return try builder.seal()
}

func stringBlockRowByRow(_ builder: inout BlockBuilder) throws -> Block {
    builder.reset()
    builder.withColumn(0) { column in
        for w in words { column.append(string: w) }
    }
    return try builder.seal()
}

/// Builds, seals and recycles one block per iteration with a reused builder: the steady state of a receiver.
func encodeBenchmark(
    _ name: String, _ kind: ColumnKind, build: @escaping @Sendable (inout BlockBuilder) throws -> Block
) {
    Benchmark(name) { benchmark in
        var builder = try BlockBuilder(schema: [ColumnType(kind)])
        _ = try build(&builder)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var block = try build(&builder)
            blackHole(block.byteCount)
            block.recycle()
        }
    }
}

/// Opens (validates and checksums) a block built once, then reads it with `read`, per iteration.
func decodeBenchmark<R>(
    _ name: String, _ kind: ColumnKind, build: @escaping @Sendable (inout BlockBuilder) throws -> Block,
    read: @escaping @Sendable (Block) -> R
) {
    Benchmark(name) { benchmark in
        var builder = try BlockBuilder(schema: [ColumnType(kind)])
        let bytes = try build(&builder).buffer
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(read(try Block(validating: bytes)))
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 3,
        maxDuration: .seconds(3),
        maxIterations: 200,
        thresholds: [
            // The machine is shared and noisy: time may move by 60% at p90 before a check fails (2x regressions show).
            .wallClock: .init(relative: [.p90: 60]),
            .throughput: .init(relative: [.p90: 60]),
            .mallocCountTotal: .init(absolute: [.p90: 2]),
        ]
    )

    encodeBenchmark("Int64-column-encode,8MiB,recycled", .int64, build: int64Block)

    decodeBenchmark("Int64-column-decode,8MiB,validate+checksum+sum", .int64, build: int64Block) { block in
        block.column(0).withValues(as: Int64.self) { $0.reduce(0, &+) }
    }

    encodeBenchmark("String-column-encode,1M-words,recycled", .string, build: stringBlock)
    encodeBenchmark("String-column-encode-row-by-row,1M-words,recycled", .string, build: stringBlockRowByRow)

    decodeBenchmark("String-column-decode,1M-words,validate+checksum+read-every-row", .string, build: stringBlock) {
        block in
        let column = block.column(0)
        var total = 0
        for r in 0..<block.rowCount { total &+= column.withBytes(at: r) { $0.count &+ Int($0[0]) } }
        return total
    }

    decodeBenchmark("String-column-decode-to-Swift-Strings,1M-words", .string, build: stringBlock) { block in
        let column = block.column(0)
        var total = 0
        for r in 0..<block.rowCount { total &+= column.string(at: r).utf8.count }
        return total
    }

    Benchmark("zstd-1-compress-string-block") { benchmark in
        var builder = try BlockBuilder(schema: [ColumnType(.string)])
        let block = try stringBlock(&builder)
        let compressor = try ZstdCompressor(level: 1)
        var out = try ArenaBuffer(minimumCapacity: block.byteCount)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            out.removeAll()
            try block.withUnsafeBytes { try Envelope.write($0, compressor: compressor, to: &out) }
            blackHole(out.count)
        }
    }

    Benchmark("zstd-decompress-string-block") { benchmark in
        var builder = try BlockBuilder(schema: [ColumnType(.string)])
        let block = try stringBlock(&builder)
        let packed = try block.compressed(with: try ZstdCompressor(level: 1))
        let decompressor = try ZstdDecompressor()
        var out = try ArenaBuffer(minimumCapacity: block.byteCount)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            out.removeAll()
            try packed.withUnsafeBytes { _ = try Envelope.read($0, decompressor: decompressor, into: &out) }
            blackHole(out.count)
        }
    }

    // Steady state of a receiver: 5,000 (word, count) rows per block, sealed, read, recycled.
    Benchmark(
        "Recycled-pair-block,steady-state,mallocs-per-block",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal], maxIterations: 2_000,
            thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0]), .wallClock: .init(relative: [.p90: 60])])
    ) { benchmark in
        let codec = ElementCodecs.tuple(String.self, Int.self)
        var builder = try codec.makeBuilder()
        func batch() throws {
            builder.reset()
            for i in 0..<5_000 {
                builder.write(string: vocabulary[i % 1_000])
                builder.write(Int64(i))
                builder.endRow()
            }
            var block = try builder.seal()
            blackHole(block.column(1).value(at: 4_999, as: Int64.self))
            block.recycle()
        }
        for _ in 0..<10 { try batch() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try batch() }
    }
}
