import Sluice
import SluiceTesting
import Testing

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

/// Spark's slicing of a batch into `p` partitions.
func referenceSlices<T>(_ xs: [T], _ p: Int) -> [[T]] {
    (0..<p).map { i in Array(xs[(i * xs.count / p)..<((i + 1) * xs.count / p)]) }
}

struct Boom: Error, Equatable {
    let value: Int
}

