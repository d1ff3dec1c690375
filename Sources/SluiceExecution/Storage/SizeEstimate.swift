/// Rough sizes of values in memory, for reserving budget for data held as Swift values (cached partitions).
/// Inline sizes are exact (`MemoryLayout`); heap sizes (string bytes past the 15 stored inline, array
/// storage) are estimated from a sample of up to 16 elements by reflection.
package enum SizeEstimate {
    /// The bytes `elements` occupy, estimated.
    package static func of<T>(_ elements: [T]) -> Int {
        let inline = elements.capacity * MemoryLayout<T>.stride
        guard !elements.isEmpty else { return inline }
        let step = max(1, elements.count / 16)
        var sampled = 0
        var heap = 0
        for i in stride(from: 0, to: elements.count, by: step) {
            heap += heapBytes(elements[i], depth: 0)
            sampled += 1
        }
        return inline + heap * elements.count / sampled
    }

    /// The heap bytes a value owns, estimated: its strings' bytes, its arrays' storage, recursively.
    static func heapBytes(_ value: Any, depth: Int) -> Int {
        switch value {
        case let string as String:
            let n = string.utf8.count
            return n > 15 ? n + 32 : 0
        case let bytes as [UInt8]:
            return bytes.count + 32
        default:
            guard depth < 3 else { return 0 }
            let mirror = Mirror(reflecting: value)
            var total = 0
            switch mirror.displayStyle {
            case .collection?, .set?, .dictionary?:
                total = 32
                for child in mirror.children { total += 8 + heapBytes(child.value, depth: depth + 1) }
            case .tuple?, .struct?, .optional?, .enum?:
                for child in mirror.children { total += heapBytes(child.value, depth: depth + 1) }
            case .class?:
                total = 32
                for child in mirror.children { total += 8 + heapBytes(child.value, depth: depth + 1) }
            default:
                break
            }
            return total
        }
    }
}
