import Glibc

/// The names in directory `path` (without "." and ".."), or nil when it cannot be opened (errno says why).
package func directoryNames(_ path: String) -> [String]? {
    guard let handle = opendir(path) else { return nil }
    defer { closedir(handle) }
    var names: [String] = []
    let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name) ?? 19
    while let entry = readdir(handle) {
        // Read in place, up to its NUL: an entry's record may end before d_name's declared 256 bytes, so
        // copying the field would read past it (AddressSanitizer found this).
        let name = String(cString: (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self))
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// Whether `path` is a directory (not following a final symbolic link).
package func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

/// Removes `path` and everything below it (what can be removed), through `calls`.
package func removeTree(_ path: String, calls: SystemCalls = .live) {
    guard let names = directoryNames(path) else {
        _ = calls.unlink(path)
        return
    }
    for name in names {
        let child = path + "/" + name
        if isDirectory(child) { removeTree(child, calls: calls) } else { _ = calls.unlink(child) }
    }
    _ = calls.rmdir(path)
}

extension SystemCalls {
    /// Makes directory `path` and its missing parents (a relative path from the working directory); returns the
    /// path as made (`./` before a relative one, no repeated or trailing `/`).
    /// - Throws: ``FileError`` naming the directory that could not be made.
    @discardableResult
    package func makeDirectories(_ path: String) throws(FileError) -> String {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/\(component)"
            let (rc, err) = mkdir(prefix, 0o755)
            if rc != 0 && err != EEXIST { throw FileError(operation: "mkdir", path: prefix, offset: nil, errno: err) }
        }
        return prefix
    }

    /// Flushes directory `path`'s entries (a file made or renamed in it) to stable storage (best effort).
    package func syncDirectory(_ path: String) {
        let (fd, _) = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}
