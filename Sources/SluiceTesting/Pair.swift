/// A key-value pair that can be compared and sorted: tuples cannot, and the order of a shuffle's output is
/// undefined (as in Spark), so tests compare `sortedPairs(output)` with `sortedPairs(expected)`.
public struct Pair<K: Comparable, V: Comparable>: Comparable, CustomStringConvertible {
    public let key: K
    public let value: V

    public init(_ key: K, _ value: V) {
        self.key = key
        self.value = value
    }

    public static func < (a: Pair, b: Pair) -> Bool { (a.key, a.value) < (b.key, b.value) }
    public var description: String { "(\(key), \(value))" }
}

extension Pair: Sendable where K: Sendable, V: Sendable {}

/// `pairs` as sorted ``Pair``s, for comparing multisets of pairs.
public func sortedPairs<K: Comparable, V: Comparable>(_ pairs: [(K, V)]) -> [Pair<K, V>] {
    pairs.map { Pair($0.0, $0.1) }.sorted()
}
