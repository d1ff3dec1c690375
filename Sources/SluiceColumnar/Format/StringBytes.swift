/// Calls `body` with `string`'s UTF-8 bytes: in place for a native string; a bridged or lazily stored one is made
/// contiguous once. How a `String` is written into a string column and how a table keeps or compares its bytes.
@inlinable @inline(__always)
package func withUTF8Bytes<R>(of string: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    if let result = string.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
        return result
    }
    var copy = string
    return copy.withUTF8 { body(UnsafeRawBufferPointer($0)) }
}
