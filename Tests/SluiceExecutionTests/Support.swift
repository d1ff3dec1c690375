import Glibc
import SluiceTesting
@testable import SluiceExecution

/// Reference grouping: each key's values in input order.
func referenceGroups<K: Hashable, V>(_ pairs: [(K, V)]) -> [K: [V]] {
    var groups: [K: [V]] = [:]
    for (k, v) in pairs { groups[k, default: []].append(v) }
    return groups
}

/// Random pair data: `n` pairs with keys drawn from `keys` distinct values, some of them heavily repeated
/// (skew), values in a small range.
func randomPairs(_ n: Int, keys: Int, using g: inout SeededGenerator) -> [(Int, Int)] {
    (0..<n).map { _ in
        let hot = Int.random(in: 0..<4, using: &g) == 0
        let key = hot ? Int.random(in: 0..<3, using: &g) : Int.random(in: -keys...keys, using: &g)
        return (key, Int.random(in: -50...50, using: &g))
    }
}
