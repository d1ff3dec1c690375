import Glibc
import SluiceColumnar

/// The names in directory `path` (without "." and ".."), or nil when it cannot be opened (errno says why).
package func directoryNames(_ path: String) -> [String]? {
    guard let handle = opendir(path) else { return nil }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) {
            String(cString: $0.bindMemory(to: CChar.self).baseAddress!)  // Safe: d_name is NUL-terminated.
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// Whether `path` is a directory (not following a final symbolic link).
package func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

/// Removes `path` and everything below it (what can be removed).
package func removeTree(_ path: String) {
    for name in directoryNames(path) ?? [] {
        let child = path + "/" + name
        if isDirectory(child) { removeTree(child) } else { unlink(child) }
    }
    rmdir(path)
}

/// Flushes directory `path`'s entries (a file made or renamed in it) to stable storage (best effort).
func syncDirectory(_ path: String, calls: SystemCalls) {
    let (fd, _) = calls.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
    guard fd >= 0 else { return }
    _ = calls.fsync(fd)
    calls.close(fd)
}
