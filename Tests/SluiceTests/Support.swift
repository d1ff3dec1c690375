import Sluice
import SluiceTesting

/// Random batches of small integers, some of them empty and some missing (nil: the input has no RDD then).
func randomBatches(_ count: Int, seed: UInt64, allowMissing: Bool = true) -> [[Int]?] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { _ in
        let roll = Int.random(in: 0..<10, using: &g)
        if allowMissing && roll == 0 { return nil }
        if roll == 1 { return [] }
        return (0..<Int.random(in: 1...60, using: &g)).map { _ in Int.random(in: -20...20, using: &g) }
    }
}

/// A pair that can be sorted and compared.
struct Pair<K: Comparable, V: Comparable>: Comparable, CustomStringConvertible {
    let key: K
    let value: V
    init(_ key: K, _ value: V) {
        self.key = key
        self.value = value
    }
    static func < (a: Pair, b: Pair) -> Bool { (a.key, a.value) < (b.key, b.value) }
    var description: String { "(\(key), \(value))" }
}

func sorted<K: Comparable, V: Comparable>(_ pairs: [(K, V)]) -> [Pair<K, V>] {
    pairs.map { Pair($0.0, $0.1) }.sorted()
}

/// Spark's slicing of a batch into `p` partitions.
func referenceSlices<T>(_ xs: [T], _ p: Int) -> [[T]] {
    (0..<p).map { i in Array(xs[(i * xs.count / p)..<((i + 1) * xs.count / p)]) }
}

struct Boom: Error, Equatable {
    let value: Int
}
