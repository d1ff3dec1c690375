import SluiceColumnar

// The execution layer's public names (RDD, StorageLevel, Partition, TaskContext, HashPartitioner, ...) are part
// of the streaming API: a DStream program handles RDDs in `transform` and `foreachRDD`.
@_exported import SluiceExecution

// What a streaming program needs of the format layer to make its own types storable (write-ahead log,
// checkpoints, serialized storage levels, spill): the protocol and the types its requirements mention.
// Everything else of SluiceColumnar stays out of a user's namespace.

/// A type whose values Sluice can store in blocks; `Codable` types need only the conformance.
/// See `SluiceColumnar.BlockSerializable`.
public typealias BlockSerializable = SluiceColumnar.BlockSerializable
/// Writes Sluice's compact row encoding (varints, zig-zag, length-prefixed strings).
public typealias BinaryWriter = SluiceColumnar.BinaryWriter
/// Reads Sluice's compact row encoding, checking every length.
public typealias BinaryReader = SluiceColumnar.BinaryReader
/// Bytes that cannot be decoded: what is wrong and at which offset.
public typealias FormatError = SluiceColumnar.FormatError
/// Builds blocks; column-mapped types write their columns into it.
public typealias BlockBuilder = SluiceColumnar.BlockBuilder
/// Reads one row of a block column by column.
public typealias RowReader = SluiceColumnar.RowReader
/// A column's physical kind and nullability.
public typealias ColumnType = SluiceColumnar.ColumnType

/// What a part of the memory budget holds memory for (``BatchInfo/memoryByCategory``).
public typealias MemoryCategory = SluiceColumnar.MemoryCategory
