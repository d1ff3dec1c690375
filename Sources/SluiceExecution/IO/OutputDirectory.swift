import Glibc
import SluiceColumnar

/// An output directory written the way Hadoop and Spark commit one: every part file is written into a
/// temporary directory beside it, an empty `_SUCCESS` marks it complete, and one rename makes it visible. A
/// directory of that name left by an earlier attempt (a replayed batch) is replaced, so exactly one complete
/// copy remains; what an attempt killed half-way left beside it (`<name>.sluice-*`) is removed first.
package struct OutputDirectory {
    let path: String
    let calls: SystemCalls

    /// Writes the directory: `body` writes the part files into the temporary directory it is given.
    /// - Throws: ``StorageError`` (`writeFailed`) naming the directory; nothing half-written is left.
    func write(_ body: (String) throws -> Void) throws {
        var random = SystemRandomNumberGenerator()
        let nonce = String(random.next() & 0xFFFF_FFFF, radix: 16)
        let temporary = "\(path).sluice-temporary-\(nonce)"
        do {
            if let slash = path.lastIndex(of: "/") { try calls.makeDirectories(String(path[..<slash])) }
            removeLeftovers()
            try check(calls.mkdir(temporary, 0o755), "mkdir", temporary)
            try body(temporary)
            var marker = try FileSink(creating: "\(temporary)/_SUCCESS", calls: calls)
            try marker.write(UnsafeRawBufferPointer(start: nil, count: 0))
            _ = consume marker
            if exists(path) {
                let old = "\(path).sluice-replaced-\(nonce)"
                try check(calls.rename(path, old), "rename", path)
                try check(calls.rename(temporary, path), "rename", temporary)
                removeTree(old, calls: calls)
            } else {
                try check(calls.rename(temporary, path), "rename", temporary)
            }
        } catch {
            removeTree(temporary, calls: calls)
            if let error = error as? StorageError { throw error }
            throw StorageError(.writeFailed, "writing the output directory '\(path)' failed", underlying: error)
        }
    }

    /// Removes the temporary directories that writes of `prefix-*` directories (a stream's batch directories)
    /// killed in an earlier process left, including those of batches never written again. Call it before the
    /// first write of the stream in this process: a temporary directory is never output, so whatever it holds
    /// was not committed.
    package static func removeTemporaryLeftovers(prefix: String, calls: SystemCalls) {
        removeSiblings(of: prefix, calls: calls) { name, base in
            name.hasPrefix(base + "-") && name.contains(".sluice-temporary-")
        }
    }

    /// Removes the temporary and replaced directories of earlier attempts at this directory that did not finish
    /// (a process killed while writing it).
    private func removeLeftovers() {
        Self.removeSiblings(of: path, calls: calls) { name, base in name.hasPrefix(base + ".sluice-") }
    }

    /// Removes the entries of `path`'s parent directory whose names `matches` picks, given the name and the
    /// last component of `path`.
    private static func removeSiblings(
        of path: String, calls: SystemCalls, _ matches: (_ name: String, _ base: String) -> Bool
    ) {
        let slash = path.lastIndex(of: "/")
        let parent = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        for name in directoryNames(parent.isEmpty ? "/" : parent) ?? [] where matches(name, base) {
            removeTree("\(parent)/\(name)", calls: calls)
        }
    }

    private func check(_ result: (Int32, Int32), _ operation: String, _ file: String) throws(FileError) {
        if result.0 != 0 { throw FileError(operation: operation, path: file, offset: nil, errno: result.1) }
    }

    private func exists(_ file: String) -> Bool {
        var info = stat()
        return stat(file, &info) == 0
    }

    /// The name of part file `index`: `part-00000`.
    static func partName(_ index: Int) -> String {
        let digits = String(index)
        return "part-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }

    /// The part files of a complete output directory, in order.
    /// - Throws: ``StorageError`` (`readFailed`) when the directory is missing or has no `_SUCCESS`.
    static func partFiles(of path: String) throws -> [String] {
        guard let names = directoryNames(path) else {
            throw StorageError(
                .readFailed, "cannot read the output directory '\(path)'",
                underlying: FileError(operation: "opendir", path: path, offset: nil, errno: errno))
        }
        guard names.contains("_SUCCESS") else {
            throw StorageError(.readFailed, "'\(path)' is not a complete output directory: it has no _SUCCESS file")
        }
        return names.filter { $0.hasPrefix("part-") }.sorted().map { "\(path)/\($0)" }
    }
}

/// Appends text to a file through a 64 kB buffer.
struct LineWriter: ~Copyable {
    var sink: FileSink
    var buffer: [UInt8] = []

    init(creating path: String, calls: SystemCalls) throws {
        sink = try FileSink(creating: path, calls: calls)
        buffer.reserveCapacity(1 << 16)
    }

    mutating func write(line: String) throws {
        buffer.append(contentsOf: line.utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { try flush() }
    }

    mutating func flush() throws {
        try buffer.withUnsafeBytes { try sink.write($0) }
        buffer.removeAll(keepingCapacity: true)
    }
}
