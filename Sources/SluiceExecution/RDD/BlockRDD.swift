import SluiceColumnar

extension ExecutionEngine {
    /// An RDD whose partition i is `blocks[i]`, decoded with `codec` a chunk at a time (Spark's `BlockRDD`:
    /// one received block, one partition). `Int` and `String` elements are read straight from their column.
    /// - Note: a block whose columns do not match `codec` fails the job that reads it with a ``FormatError``
    ///   naming both schemas.
    public func blockRDD<T: Sendable>(_ blocks: [Block], codec: ElementCodec<T>) -> RDD<T> {
        RDD(
            engine: self, numPartitions: blocks.count, sliceable: true,
            knownSize: { p in
                try codec.checkSchema(of: blocks[p])
                return blocks[p].rowCount
            }
        ) { p, sink in
            try decodeChunks(blocks[p], codec, sink)
        }
    }
}

/// Pushes the elements of `block` into `sink` a chunk at a time (those of the current task's
/// ``TaskContext/slice`` of the block).
package func decodeChunks<T>(_ block: Block, _ codec: ElementCodec<T>, _ sink: (UnsafeBufferPointer<T>) throws -> Void) throws {
    try codec.checkSchema(of: block)
    let rows = TaskContext.slice.range(of: block.rowCount)
    if T.self == Int.self && block.schema == [ColumnType(.int64)] {
        // The column's values handed on where they lie, a chunk at a time, not copied: an Int is an Int64.
        try block.column(0).withValues(as: Int64.self) { values in
            try values.withMemoryRebound(to: Int.self) { ints in
                try forEachChunk(of: rows) { try sink(UnsafeBufferPointer(rebasing: ints[$0]).same(as: T.self)) }
            }
        }
    } else if T.self == String.self && block.schema == [ColumnType(.string)] {
        let column = block.column(0)
        var out = ChunkBuffer<String>()
        try forEachChunk(of: rows) { rows in
            for i in rows { out.append(column.string(at: i)) }
            try out.flush { try sink($0.same(as: T.self)) }
        }
    } else {
        var out = ChunkBuffer<T>()
        try forEachChunk(of: rows) { rows in
            for i in rows { out.append(try codec.element(at: i, of: block)) }
            try out.flush(to: sink)
        }
    }
}
