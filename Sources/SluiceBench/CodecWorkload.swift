import SluiceColumnar

/// One stage's measurement.
struct StageResult {
    var name: String
    var iterations: Int
    var seconds: Double
    var bytesPerIteration: Int
    var rowsPerIteration: Int

    var megabytesPerSecond: Double { Double(bytesPerIteration * iterations) / seconds / 1e6 }
    var rowsPerSecond: Double { Double(rowsPerIteration * iterations) / seconds }
}

struct CodecReport {
    var stages: [StageResult]
    var rows: Int
    var compressionRatio: Double
    var allocatorCallsPerBlock: Double
    var peakRSSBytes: Int

    func table() -> String {
        var lines = ["Sluice streambench, workload codec: \(rows) rows per block, one core", ""]
        lines.append("stage".padding(48) + "MB/s".leftPad(10) + "Mrows/s".leftPad(10) + "blocks".leftPad(8))
        for s in stages {
            lines.append(s.name.padding(48) + format(s.megabytesPerSecond).leftPad(10)
                + format(s.rowsPerSecond / 1e6).leftPad(10) + "\(s.iterations)".leftPad(8))
        }
        lines.append("")
        lines.append("zstd ratio on the word block: \(format(compressionRatio))x")
        lines.append("allocator calls per recycled block, steady state: \(format(allocatorCallsPerBlock))")
        lines.append("peak RSS: \(peakRSSBytes / 1_000_000) MB")
        lines.append("MB/s counts the block's column data (values, offsets, string bytes).")
        return lines.joined(separator: "\n")
    }

    func json() throws -> String {
        struct Stage: Encodable {
            var stage: String
            var mbPerSecond: Double
            var rowsPerSecond: Double
            var blocks: Int
        }
        struct Report: Encodable {
            var workload = "codec"
            var rowsPerBlock: Int
            var stages: [Stage]
            var zstdRatio: Double
            var allocatorCallsPerBlock: Double
            var peakRSSBytes: Int
        }
        return try jsonText(Report(
            rowsPerBlock: rows,
            stages: stages.map {
                Stage(stage: $0.name, mbPerSecond: $0.megabytesPerSecond, rowsPerSecond: $0.rowsPerSecond, blocks: $0.iterations)
            },
            zstdRatio: compressionRatio, allocatorCallsPerBlock: allocatorCallsPerBlock, peakRSSBytes: peakRSSBytes))
    }
}

/// The format layer on the default generator's data: Int64 values (the grouped workload's records) and
/// short words from a 10,000-word vocabulary (the word count's tokens).
struct CodecWorkload {
    let rows: Int
    let seconds: Double
    let zstdLevel: Int32
    let saveWordBlock: String?

    func run() throws -> CodecReport {
        let perStage = seconds / 8
        let vocabulary = (0..<10_000).map { "w\($0)" }
        var seed: UInt64 = 42
        let words = (0..<rows).map { _ -> String in
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return vocabulary[Int(seed >> 33) % vocabulary.count]
        }
        var intBuilder = try BlockBuilder(schema: [ColumnType(.int64)])
        var wordBuilder = try BlockBuilder(schema: [ColumnType(.string)])

        func buildInts() throws -> Block {
            intBuilder.reset()
            intBuilder.withColumn(0) { c in for i in 0..<rows { c.append(Int64(i &* 7)) } }
            return try intBuilder.seal()
        }
        func buildIntsWithAppender() throws -> Block {
            intBuilder.reset()
            intBuilder.withColumn(0) { c in
                c.withAppender(of: Int64.self) { a in for i in 0..<rows { a.append(Int64(i &* 7)) } }
            }
            return try intBuilder.seal()
        }
        func buildWordsWithAppender() throws -> Block {
            wordBuilder.reset()
            wordBuilder.withColumn(0) { c in c.withBytesAppender { a in for w in words { a.append(w) } } }
            return try wordBuilder.seal()
        }
        func buildWords() throws -> Block {
            wordBuilder.reset()
            wordBuilder.withColumn(0) { c in for w in words { c.append(string: w) } }
            return try wordBuilder.seal()
        }
        let intBytes = rows * 8
        let wordBytes = words.reduce(0) { $0 + $1.utf8.count } + (rows + 1) * 4
        func sealAndRecycle(_ build: () throws -> Block) throws {
            var block = try build()
            block.recycle()
        }

        var stages: [StageResult] = []
        func measure(_ name: String, bytes: Int, _ body: () throws -> Void) rethrows {
            for _ in 0..<2 { try body() }  // warm the pool and caches
            var iterations = 0
            let start = now()
            var elapsed = 0.0
            repeat {
                try body()
                iterations += 1
                elapsed = now() - start
            } while elapsed < perStage
            stages.append(StageResult(name: name, iterations: iterations, seconds: elapsed,
                bytesPerIteration: bytes, rowsPerIteration: rows))
        }

        try measure("Int64 column: build row by row + seal", bytes: intBytes) { try sealAndRecycle(buildInts) }
        try measure("Int64 column: build with an appender + seal", bytes: intBytes) {
            try sealAndRecycle(buildIntsWithAppender)
        }
        let intBlock = try buildInts().buffer
        var sink: Int64 = 0
        try measure("Int64 column: open (checksum, validate) + read", bytes: intBytes) {
            let block = try Block(validating: intBlock)
            sink &+= block.column(0).withValues(as: Int64.self) { $0.reduce(0, &+) }
        }
        try measure("String column: build row by row + seal", bytes: wordBytes) { try sealAndRecycle(buildWords) }
        try measure("String column: build with an appender + seal", bytes: wordBytes) {
            try sealAndRecycle(buildWordsWithAppender)
        }
        let wordBlock = try buildWords()
        if let saveWordBlock {
            var sink = try FileSink(creating: saveWordBlock)
            try wordBlock.withUnsafeBytes { try sink.write($0) }
        }
        let wordBuffer = wordBlock.buffer
        try measure("String column: open + read every row's bytes", bytes: wordBytes) {
            let block = try Block(validating: wordBuffer)
            let column = block.column(0)
            for r in 0..<block.rowCount { sink &+= Int64(column.withBytes(at: r) { $0.count }) }
        }
        try measure("String column: open + make a Swift String per row", bytes: wordBytes) {
            let block = try Block(validating: wordBuffer)
            let column = block.column(0)
            for r in 0..<block.rowCount { sink &+= Int64(column.string(at: r).utf8.count) }
        }
        let compressor = try ZstdCompressor(level: zstdLevel)
        let decompressor = try ZstdDecompressor()
        var packed = try ArenaBuffer()
        try measure("zstd-\(zstdLevel) compress word block", bytes: wordBlock.byteCount) {
            packed.removeAll()
            try wordBlock.withUnsafeBytes { try Envelope.write($0, compressor: compressor, to: &packed) }
        }
        var unpacked = try ArenaBuffer()
        try measure("zstd decompress word block", bytes: wordBlock.byteCount) {
            unpacked.removeAll()
            try packed.withUnsafeBytes { _ = try Envelope.read($0, decompressor: decompressor, into: &unpacked) }
        }
        let ratio = Double(wordBlock.byteCount) / Double(packed.count)

        try sealAndRecycle(buildWords)  // the first block after the stages above may still need memory of its own
        let before = BufferPool.shared.statistics.allocatorCalls
        let blocks = 50
        for _ in 0..<blocks { try sealAndRecycle(buildWords) }
        let calls = Double(BufferPool.shared.statistics.allocatorCalls - before) / Double(blocks)
        if sink == 42 { print("") }  // keeps the reads from being optimised away
        return CodecReport(stages: stages, rows: rows, compressionRatio: ratio, allocatorCallsPerBlock: calls,
            peakRSSBytes: peakRSS())
    }
}
