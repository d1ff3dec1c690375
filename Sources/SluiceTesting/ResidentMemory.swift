import Glibc

/// The process's resident memory now, from /proc/self/statm (read with one call: it is sampled often).
public func residentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    let fields = buffer.prefix(max(0, n)).split(separator: UInt8(ascii: " "))
    let pages = fields.dropFirst().first.flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
