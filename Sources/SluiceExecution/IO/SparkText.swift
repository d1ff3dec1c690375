/// How elements are written as text (`saveAsTextFile`, `print`), as Spark writes them: a string as it is,
/// a tuple as `(a,b)` with no quotes or spaces (nested tuples likewise), an optional as `Some(x)` or `None`,
/// anything else as `String(describing:)`.
public enum SparkText {
    /// The text of `value`.
    public static func line<T>(_ value: T) -> String {
        describe(value)
    }

    static func describe(_ value: Any) -> String {
        // Before the casts below: `as Int` would also match an Optional<Int> and drop the Some.
        if let optional = value as? any SparkTextOptional { return optional.sparkText }
        switch value {
        case let s as String: return s
        case let s as Substring: return String(s)
        case let w as Word: return w.string
        case let n as Int: return String(n)
        case let b as Bool: return String(b)
        case let d as Double: return String(d)
        default:
            let mirror = Mirror(reflecting: value)
            switch mirror.displayStyle {
            case .tuple?:
                return "(" + mirror.children.map { describe($0.value) }.joined(separator: ",") + ")"
            default:
                return String(describing: value)
            }
        }
    }
}

/// Optionals, told apart from their wrapped values when written as text.
protocol SparkTextOptional {
    var sparkText: String { get }
}

extension Optional: SparkTextOptional {
    var sparkText: String {
        switch self {
        case .some(let wrapped): "Some(\(SparkText.describe(wrapped)))"
        case .none: "None"
        }
    }
}
