import Glibc

/// The few system calls Sluice's files use, as replaceable functions, so that tests can make them fail with
/// ENOSPC, EINTR or short writes (the idea of swift-system's `Mocking.swift`). ``live`` calls the kernel.
public struct SystemCalls: Sendable {
    /// `open(path, flags, mode)`; returns a descriptor or -1 with the error in the second value.
    public var open: @Sendable (_ path: String, _ flags: Int32, _ mode: UInt32) -> (Int32, Int32)
    /// `write(fd, bytes, count)`; returns bytes written or -1 with the error.
    public var write: @Sendable (_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> (Int, Int32)
    /// `pread(fd, buffer, count, offset)`; returns bytes read or -1 with the error.
    public var pread: @Sendable (_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, _ offset: Int) -> (Int, Int32)
    /// `fsync(fd)`; 0 or -1 with the error.
    public var fsync: @Sendable (_ fd: Int32) -> (Int32, Int32)
    /// `close(fd)`.
    public var close: @Sendable (_ fd: Int32) -> Void
    /// `mkdir(path, mode)`; 0 or -1 with the error.
    public var mkdir: @Sendable (_ path: String, _ mode: UInt32) -> (Int32, Int32)
    /// `unlink(path)`; 0 or -1 with the error.
    public var unlink: @Sendable (_ path: String) -> (Int32, Int32)
    /// `rmdir(path)`; 0 or -1 with the error.
    public var rmdir: @Sendable (_ path: String) -> (Int32, Int32)
    /// `rename(from, to)`; 0 or -1 with the error.
    public var rename: @Sendable (_ from: String, _ to: String) -> (Int32, Int32)

    /// The functions themselves; the directory calls default to the kernel's.
    public init(
        open: @escaping @Sendable (String, Int32, UInt32) -> (Int32, Int32),
        write: @escaping @Sendable (Int32, UnsafeRawBufferPointer) -> (Int, Int32),
        pread: @escaping @Sendable (Int32, UnsafeMutableRawBufferPointer, Int) -> (Int, Int32),
        fsync: @escaping @Sendable (Int32) -> (Int32, Int32),
        close: @escaping @Sendable (Int32) -> Void,
        mkdir: (@Sendable (String, UInt32) -> (Int32, Int32))? = nil,
        unlink: (@Sendable (String) -> (Int32, Int32))? = nil,
        rmdir: (@Sendable (String) -> (Int32, Int32))? = nil,
        rename: (@Sendable (String, String) -> (Int32, Int32))? = nil
    ) {
        self.open = open
        self.write = write
        self.pread = pread
        self.fsync = fsync
        self.close = close
        self.mkdir = mkdir ?? { path, mode in
            let rc = Glibc.mkdir(path, mode_t(mode))
            return (rc, rc < 0 ? errno : 0)
        }
        self.unlink = unlink ?? { path in
            let rc = Glibc.unlink(path)
            return (rc, rc < 0 ? errno : 0)
        }
        self.rmdir = rmdir ?? { path in
            let rc = Glibc.rmdir(path)
            return (rc, rc < 0 ? errno : 0)
        }
        self.rename = rename ?? { from, to in
            let rc = Glibc.rename(from, to)
            return (rc, rc < 0 ? errno : 0)
        }
    }

    /// The kernel's calls.
    public static let live = SystemCalls(
        open: { path, flags, mode in
            let fd = Glibc.open(path, flags, mode)
            return (fd, fd < 0 ? errno : 0)
        },
        write: { fd, bytes in
            let n = Glibc.write(fd, bytes.baseAddress, bytes.count)
            return (n, n < 0 ? errno : 0)
        },
        pread: { fd, buffer, offset in
            let n = Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
            return (n, n < 0 ? errno : 0)
        },
        fsync: { fd in
            let rc = Glibc.fsync(fd)
            return (rc, rc < 0 ? errno : 0)
        },
        close: { fd in _ = Glibc.close(fd) })

    /// Flags for creating a new file for writing (truncating an old one).
    public static let createFlags: Int32 = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC
    /// Flags for reading.
    public static let readFlags: Int32 = O_RDONLY | O_CLOEXEC

    /// The whole contents of the file at `path`.
    /// - Throws: ``FileError`` naming the operation, the path and the offset that failed.
    public func readFile(_ path: String) throws(FileError) -> [UInt8] {
        let (fd, err) = open(path, SystemCalls.readFlags, 0)
        guard fd >= 0 else { throw FileError(operation: "open", path: path, offset: nil, errno: err) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = 1 << 16
        while true {
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: chunk))
            let (n, err) = bytes.withUnsafeMutableBytes { pread(fd, UnsafeMutableRawBufferPointer(rebasing: $0[start...]), start) }
            if n < 0 {
                bytes.removeLast(chunk)
                if err == EINTR { continue }
                throw FileError(operation: "read", path: path, offset: start, errno: err)
            }
            bytes.removeLast(chunk - n)
            if n == 0 { return bytes }
            chunk = min(chunk * 2, 1 << 24)
        }
    }
}

/// A file operation that failed: which operation, on which file, at which offset, and the system's reason.
public struct FileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation ("open", "write", "read", "fsync").
    public var operation: String
    /// The file's path.
    public var path: String
    /// The byte offset in the file, where one applies.
    public var offset: Int?
    /// The `errno` value.
    public var errno: Int32

    /// An error of `operation` on `path`.
    public init(operation: String, path: String, offset: Int?, errno: Int32) {
        self.operation = operation
        self.path = path
        self.offset = offset
        self.errno = errno
    }

    /// Whether the disk (or quota) is full.
    public var isNoSpace: Bool { errno == ENOSPC || errno == EDQUOT }

    public var description: String {
        let at = offset.map { " at byte offset \($0)" } ?? ""
        let reason = String(cString: strerror(errno))
        return "\(operation) '\(path)'\(at) failed: \(reason) (errno \(errno))"
    }
}

/// An open descriptor, closed when its last owner lets go: a flush that holds one can outlive the writer that
/// opened the file (the write-ahead log flushes outside its append lock while a roll closes the segment).
final class SharedDescriptor: Sendable {
    let fd: Int32
    let calls: SystemCalls

    init(fd: Int32, calls: SystemCalls) {
        self.fd = fd
        self.calls = calls
    }

    deinit { calls.close(fd) }
}

/// Flushes one file to stable storage; keeps the file open while it exists (see ``FileSink/flusher``).
public struct FileFlusher: Sendable {
    /// The file's path.
    public let path: String
    let descriptor: SharedDescriptor

    /// Flushes what was written to the file so far (by anyone) to stable storage.
    /// - Throws: ``FileError``.
    public func sync() throws(FileError) {
        while true {
            let (rc, err) = descriptor.calls.fsync(descriptor.fd)
            if rc == 0 { return }
            if err != EINTR { throw FileError(operation: "fsync", path: path, offset: nil, errno: err) }
        }
    }
}

/// A file being written sequentially, through ``SystemCalls``: retries EINTR and short writes, reports ENOSPC
/// and every other failure as a ``FileError`` with the offset it happened at.
public struct FileSink: ~Copyable, Sendable {
    /// The file's path.
    public let path: String
    /// Bytes written so far (the offset of the next write).
    public private(set) var offset = 0
    let descriptor: SharedDescriptor
    var fd: Int32 { descriptor.fd }
    var calls: SystemCalls { descriptor.calls }

    /// Creates (or truncates) `path` for writing.
    /// - Throws: ``FileError`` when the file cannot be created.
    public init(creating path: String, calls: SystemCalls = .live) throws(FileError) {
        let (fd, err) = calls.open(path, SystemCalls.createFlags, 0o644)
        guard fd >= 0 else { throw FileError(operation: "open", path: path, offset: nil, errno: err) }
        self.path = path
        self.descriptor = SharedDescriptor(fd: fd, calls: calls)
    }

    /// Writes all of `bytes`.
    /// - Throws: ``FileError`` (``FileError/isNoSpace`` for a full disk); the bytes before `offset` stay written.
    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
        var done = 0
        while done < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[done...])
            let (n, err) = calls.write(fd, rest)
            if n < 0 {
                if err == EINTR { continue }
                throw FileError(operation: "write", path: path, offset: offset, errno: err)
            }
            if n == 0 {  // a zero-byte write of a non-empty buffer: treat as a full device
                throw FileError(operation: "write", path: path, offset: offset, errno: ENOSPC)
            }
            done += n
            offset += n
        }
    }

    /// A flusher of this file, usable from any thread without the sink; the file stays open until both the sink
    /// and every flusher are gone.
    public var flusher: FileFlusher { FileFlusher(path: path, descriptor: descriptor) }

    /// Flushes the file to stable storage.
    /// - Throws: ``FileError``.
    public func sync() throws(FileError) { try flusher.sync() }
}

/// A file being read at offsets, through ``SystemCalls``.
public struct FileSource: ~Copyable {
    /// The file's path.
    public let path: String
    let fd: Int32
    let calls: SystemCalls

    /// Opens `path` for reading.
    /// - Throws: ``FileError`` when the file cannot be opened.
    public init(opening path: String, calls: SystemCalls = .live) throws(FileError) {
        let (fd, err) = calls.open(path, SystemCalls.readFlags, 0)
        guard fd >= 0 else { throw FileError(operation: "open", path: path, offset: nil, errno: err) }
        self.path = path
        self.fd = fd
        self.calls = calls
    }

    deinit { calls.close(fd) }

    /// Reads up to `count` bytes at `offset`, appending them to `buffer`; fewer only at the end of the file.
    /// - Returns: the number of bytes read.
    /// - Throws: ``FileError``.
    public func read(at offset: Int, count: Int, into buffer: inout ArenaBuffer) throws(FileError) -> Int {
        do {
            try buffer.reserveCapacity(buffer.count + count)
        } catch {
            throw FileError(operation: "read", path: path, offset: offset, errno: ENOMEM)
        }
        var done = 0
        try buffer.appendWithUnsafeBytes(reserving: count) { (space) throws(FileError) -> Int in
            while done < count {
                let rest = UnsafeMutableRawBufferPointer(rebasing: space[done...])
                let (n, err) = calls.pread(fd, rest, offset + done)
                if n < 0 {
                    if err == EINTR { continue }
                    throw FileError(operation: "read", path: path, offset: offset + done, errno: err)
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
        return done
    }
}
