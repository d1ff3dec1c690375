import Testing
@testable import SluiceColumnar
import SluiceTesting

/// A plain reference value of any column kind, for comparing what was written with what is read.
enum Cell: Equatable {
    case null
    case int64(Int64), int32(Int32), uint64(UInt64), double(UInt64), float(UInt32), bool(Bool)
    case string(String), binary([UInt8])

    static func random(_ type: ColumnType, _ g: inout SeededGenerator) -> Cell {
        if type.nullable && Int.random(in: 0..<4, using: &g) == 0 { return .null }
        switch type.kind {
        case .int64: return .int64(Int64.random(in: .min ... .max, using: &g))
        case .int32: return .int32(Int32.random(in: .min ... .max, using: &g))
        case .uint64: return .uint64(UInt64.random(in: .min ... .max, using: &g))
        // Doubles and floats compare by bit pattern, so NaNs and -0 round-trip exactly.
        case .double: return .double(UInt64.random(in: .min ... .max, using: &g))
        case .float: return .float(UInt32.random(in: .min ... .max, using: &g))
        case .bool: return .bool(Bool.random(using: &g))
        case .string:
            let alphabet = Array("abcdeé漢🙂 xyz")
            return .string(String((0..<Int.random(in: 0...12, using: &g)).map { _ in alphabet.randomElement(using: &g)! }))
        case .binary:
            return .binary((0..<Int.random(in: 0...20, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) })
        }
    }

    func write(to b: inout BlockBuilder) {
        switch self {
        case .null: b.writeNulls()
        case .int64(let v): b.write(v)
        case .int32(let v): b.write(v)
        case .uint64(let v): b.write(v)
        case .double(let v): b.write(Double(bitPattern: v))
        case .float(let v): b.write(Float(bitPattern: v))
        case .bool(let v): b.write(v)
        case .string(let v): b.write(string: v)
        case .binary(let v): v.withUnsafeBytes { b.write(bytes: $0) }
        }
    }

    static func read(_ c: Column, _ row: Int) -> Cell {
        if c.isNull(row) { return .null }
        switch c.type.kind {
        case .int64: return .int64(c.value(at: row))
        case .int32: return .int32(c.value(at: row))
        case .uint64: return .uint64(c.value(at: row))
        case .double: return .double(c.value(at: row, as: Double.self).bitPattern)
        case .float: return .float(c.value(at: row, as: Float.self).bitPattern)
        case .bool: return .bool(c.bool(at: row))
        case .string: return .string(c.string(at: row))
        case .binary: return .binary(c.bytes(at: row))
        }
    }
}

func randomSchema(_ g: inout SeededGenerator) -> [ColumnType] {
    (0..<Int.random(in: 1...6, using: &g)).map { _ in
        ColumnType(ColumnKind.allCases.randomElement(using: &g)!, nullable: Bool.random(using: &g))
    }
}

func buildBlock(_ schema: [ColumnType], rows: [[Cell]]) throws -> Block {
    var b = try BlockBuilder(schema: schema)
    for row in rows {
        for cell in row { cell.write(to: &b) }
        b.endRow()
    }
    return try b.seal()
}

func readAll(_ block: Block) -> [[Cell]] {
    let columns = (0..<block.columnCount).map(block.column)
    return (0..<block.rowCount).map { r in columns.map { Cell.read($0, r) } }
}

@Suite struct BlockRoundTripTests {
    static let allTypes: [ColumnType] = ColumnKind.allCases.flatMap { [ColumnType($0), ColumnType($0, nullable: true)] }

    @Test(arguments: allTypes)
    func everyColumnKindRoundTrips(type: ColumnType) throws {
        var g = SeededGenerator(seed: UInt64(type.kind.rawValue) * 2 + (type.nullable ? 1 : 0))
        for rows in [0, 1, 7, 8, 9, 1_000] {
            let cells = (0..<rows).map { _ in [Cell.random(type, &g)] }
            let block = try buildBlock([type], rows: cells)
            let reopened = try Block(validating: try ArenaBuffer(copying: block.withUnsafeBytes { Array($0) }))
            #expect(reopened.schema == [type])
            #expect(readAll(reopened) == cells)
            #expect(reopened.column(0).nullCount == cells.filter { $0 == [.null] }.count)
        }
    }

    @Test func randomSchemasRoundTripWithAndWithoutCompression() throws {
        var g = SeededGenerator(seed: 42)
        let compressors: [ZstdCompressor?] = [nil, try ZstdCompressor(level: 1), try ZstdCompressor(level: 3),
            try ZstdCompressor(level: -5), try ZstdCompressor(level: 19)]
        let decompressor = try ZstdDecompressor()
        for trial in 0..<200 {
            let schema = randomSchema(&g)
            let rows = (0..<Int.random(in: 0...300, using: &g)).map { _ in schema.map { Cell.random($0, &g) } }
            let block = try buildBlock(schema, rows: rows)
            #expect(block.schema == schema)
            let compressor = compressors[trial % compressors.count]
            var envelope = try ArenaBuffer()
            try block.withUnsafeBytes { try Envelope.write($0, compressor: compressor, to: &envelope) }
            let back = try envelope.withUnsafeBytes { try Block(decompressing: $0, decompressor: decompressor) }
            #expect(readAll(back) == rows, "trial \(trial), schema \(schema)")
        }
    }

    @Test func bulkValuesAreAlignedAndInPlace() throws {
        var b = try ColumnBuilder(type: ColumnType(.int64))
        for i in 0..<1_000 { b.append(Int64(i * 3)) }
        let column = try b.finish()
        b.append(Int64(-1))  // the builder copies; the finished column is unchanged
        #expect(column.count == 1_000)
        let sum = column.withValues(as: Int64.self) { values in
            #expect(Int(bitPattern: values.baseAddress) % 64 == 0)
            return values.reduce(0, +)
        }
        #expect(sum == Int64(3 * 999 * 1_000 / 2))
        #expect(b.count == 1_001)
    }

    @Test func columnsOfDifferentLengthsAreRefusedAtSeal() throws {
        var b = try BlockBuilder(schema: [ColumnType(.int64), ColumnType(.int64)])
        b.withColumn(0) { $0.append(Int64(1)) }
        #expect(throws: FormatError.self) { try b.seal() }
    }

    @Test func compressesRepetitiveDataAndStoresIncompressibleRaw() throws {
        let words = ElementCodecs.standard(String.self)
        let block = try words.encode((0..<10_000).map { "word\($0 % 50)" })
        let packed = try block.compressed(with: try ZstdCompressor())
        #expect(packed.count < block.byteCount / 2)
        var g = SeededGenerator(seed: 7)
        let noise = (0..<4_096).map { _ in UInt8.random(in: 0...255, using: &g) }
        var stored = try ArenaBuffer()
        try noise.withUnsafeBytes { try Envelope.write($0, compressor: try ZstdCompressor(), to: &stored) }
        let header = try stored.withUnsafeBytes { try Envelope.readHeader($0) }
        #expect(header.codec == .none)
        #expect(stored.count == noise.count + Envelope.headerSize)
        var back = try ArenaBuffer()
        try stored.withUnsafeBytes { _ = try Envelope.read($0, decompressor: try ZstdDecompressor(), into: &back) }
        #expect(back.bytes == noise)
    }
}

/// `sealTakingBuffers()`: a one-column block sealed where its rows were written.
@Suite struct SealInPlaceTests {
    /// Every kind, nullable or not, over rounds of one builder (so later rounds write into the fresh buffers
    /// a seal leaves, and some outgrow them): each block opens from a copy of its bytes (format, checksum),
    /// reads back the rows written, and its rows equal those of `seal()`.
    @Test(arguments: BlockRoundTripTests.allTypes)
    func blocksSealedInPlaceHoldTheRowsWritten(type: ColumnType) throws {
        var g = SeededGenerator(seed: 77 &+ UInt64(type.kind.rawValue) &* 2 &+ (type.nullable ? 1 : 0))
        var builder = try BlockBuilder(schema: [type])
        let empty = builder.byteCount  // a string column's first offset
        var kept: [(Block, [[Cell]])] = []
        for round in 0..<12 {
            let count = [0, 1, 3, 1_000, 20_000, 7, 60_000][round % 7]
            let cells = (0..<count).map { _ in [Cell.random(type, &g)] }
            for row in cells {
                row[0].write(to: &builder)
                builder.endRow()
            }
            let copied = try builder.seal()
            let block = try builder.sealTakingBuffers()
            #expect(builder.rowCount == 0 && builder.byteCount == empty, "the builder is left empty")
            #expect(block.rowCount == count && block.schema == [type])
            let reopened = try Block(validating: try ArenaBuffer(copying: block.withUnsafeBytes { Array($0) }))
            #expect(readAll(reopened) == cells, "\(type), round \(round)")
            #expect(readAll(block) == readAll(copied), "\(type), round \(round)")
            kept.append((block, cells))
        }
        // Blocks outlive the builder's later rounds and the builder itself: nothing was overwritten.
        _ = consume builder
        for (i, (block, cells)) in kept.enumerated() { #expect(readAll(block) == cells, "\(type), block \(i)") }
    }

    /// A receiver's builder over many blocks of very different sizes (a socket's bursts): its buffers stay
    /// near the largest block's size. (Growing the offsets whenever the bytes' fresh buffer filled doubled them
    /// block after block, until an allocation of gigabytes failed.)
    @Test func aBuildersBuffersStayNearTheLargestBlockOverManySeals() throws {
        var builder = try BlockBuilder(schema: [ColumnType(.string)])
        var g = SeededGenerator(seed: 11)
        for round in 0..<60 {
            let rows = round % 3 == 0 ? 5_000 : Int.random(in: 1...50, using: &g)
            let lines = (0..<rows).map { "line \($0) of round \(round)" + String(repeating: "x", count: $0 % 40) }
            builder.withColumn(0) { column in column.withBytesAppender { a in for line in lines { a.append(line) } } }
            let block = try builder.sealTakingBuffers()
            #expect((0..<block.rowCount).map { block.column(0).string(at: $0) } == lines, "round \(round)")
        }
        let (offsets, bytes) = builder.withColumn(0) { ($0.values.capacity, $0.data.capacity) }
        #expect(offsets <= 64 << 10, "offsets capacity \(offsets) for at most 5,001 offsets")
        #expect(bytes <= 1 << 20, "bytes capacity \(bytes) for blocks of at most 250 KB")
    }

    /// Lines as a receiver writes them (the bytes appender), over a private pool: the rows are not copied
    /// (the block's bytes are the buffer they were written to), the memory all comes back to the pool when
    /// the blocks and the builder go, and a seal that finds no memory throws, leaving the rows in the builder
    /// for a later seal.
    @Test func aReceiversBlockIsNotCopiedAndItsMemoryComesBack() throws {
        let counting = CountingAllocator()
        let pool = BufferPool(allocator: counting.allocator, maxRetainedBytes: 0)
        var g = SeededGenerator(seed: 5)
        let lines = (0..<5_000).map { i in "line \(i) " + String(repeating: "w", count: Int.random(in: 0...90, using: &g)) }
        try {
            var builder = try BlockBuilder(schema: [ColumnType(.string)], pool: pool)
            builder.withColumn(0) { column in column.withBytesAppender { a in for line in lines { a.append(line) } } }
            let written = builder.withColumn(0) { column in UnsafeRawPointer(column.data.storage.pointer) }
            var block = try builder.sealTakingBuffers()
            #expect(block.withUnsafeBytes { $0.baseAddress! } + BlockBuilder.headerRoom == written,
                "the block starts a header's room before the bytes written")
            #expect((0..<block.rowCount).map { block.column(0).string(at: $0) } == lines)

            let some = Array(lines.prefix(100))
            builder.withColumn(0) { column in column.withBytesAppender { a in for line in some { a.append(line) } } }
            counting.failAfter(0)
            #expect(throws: MemoryError.self) { _ = try builder.sealTakingBuffers() }
            counting.failAfter(nil)
            let second = try builder.sealTakingBuffers()
            #expect((0..<second.rowCount).map { second.column(0).string(at: $0) } == some, "kept through the failure")
            block.recycle()
        }()
        pool.trim()
        #expect(counting.liveBytes == 0, "every buffer went back to the allocator")
        #expect(counting.allocations == counting.deallocations)
    }
}
