import Glibc

/// The text of the file at `path`, read to its end (a file under /proc or /sys reports no size, so reading the
/// size it reports would give nothing); nil when it cannot be opened.
public func fileText(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while case let n = fread(&chunk, 1, chunk.count, file), n > 0 { bytes += chunk[0..<n] }
    return String(decoding: bytes, as: UTF8.self)
}
