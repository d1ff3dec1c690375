#if _endian(big)
#error("Sluice's block format is little-endian and reads values in place; big-endian hosts are not supported")
#endif

/// The physical kind of a column, as stored in a block's directory.
public enum ColumnKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case int64 = 1, int32, uint64, double, float, bool, string, binary

    /// Bytes per value for fixed-width kinds; `nil` for bit-packed `bool` and variable-width kinds.
    @inlinable
    public var fixedWidth: Int? {
        switch self {
        case .int64, .uint64, .double: return 8
        case .int32, .float: return 4
        case .bool, .string, .binary: return nil
        }
    }

    /// Whether values are offsets into a data buffer (`string`, `binary`).
    @inlinable
    public var isVariableWidth: Bool { self == .string || self == .binary }

    public var description: String {
        switch self {
        case .int64: "int64"
        case .int32: "int32"
        case .uint64: "uint64"
        case .double: "double"
        case .float: "float"
        case .bool: "bool"
        case .string: "string"
        case .binary: "binary"
        }
    }
}

/// A column's kind and whether it may hold nulls (then it carries a validity bitmap).
public struct ColumnType: Sendable, Hashable, CustomStringConvertible {
    /// The physical kind.
    public var kind: ColumnKind
    /// Whether rows may be null.
    public var nullable: Bool

    /// A column type.
    public init(_ kind: ColumnKind, nullable: Bool = false) {
        self.kind = kind
        self.nullable = nullable
    }

    public var description: String { nullable ? "\(kind)?" : "\(kind)" }
}

/// A fixed-width value stored in place in a column (native little-endian layout).
public protocol FixedWidthColumnValue: Sendable, BitwiseCopyable {
    /// The column kind that stores this type.
    static var columnKind: ColumnKind { get }
}

extension Int64: FixedWidthColumnValue { public static var columnKind: ColumnKind { .int64 } }
extension Int32: FixedWidthColumnValue { public static var columnKind: ColumnKind { .int32 } }
extension UInt64: FixedWidthColumnValue { public static var columnKind: ColumnKind { .uint64 } }
extension Double: FixedWidthColumnValue { public static var columnKind: ColumnKind { .double } }
extension Float: FixedWidthColumnValue { public static var columnKind: ColumnKind { .float } }
