import Glibc
import SluiceColumnar
import Synchronization

/// What spilling has done: files and bytes written, read back and removed.
public struct SpillStatistics: Sendable, Equatable {
    /// Spill files created.
    public var filesWritten = 0
    /// Spill files removed (their data was dropped).
    public var filesRemoved = 0
    /// Bytes of data spilled, before compression.
    public var bytesSpilled = 0
    /// Bytes written to disk (compressed frames and file framing).
    public var bytesOnDisk = 0
    /// Bytes of data read back, after decompression.
    public var bytesReadBack = 0
    /// Spill directories of engines that are gone (a killed process's) removed by this engine.
    public var directoriesReclaimed = 0
    /// Spill files that exist now.
    public var liveFiles: Int { filesWritten - filesRemoved }
}

/// The directory an engine spills to (`sluice.spill.dir`): one subdirectory per engine, made on the first
/// spill and removed, with anything left in it, when the engine goes away. Files are removed as soon as the
/// data they hold is dropped.
///
/// An engine that is never deinitialized (a program's global context, a process that ends with `exit`) has its
/// subdirectory removed when the process exits, as Spark's shutdown hook deletes its local directories.
///
/// A process that is killed leaves its subdirectory behind. Each subdirectory holds a lock file its engine keeps
/// locked (`flock`) while it lives; the kernel drops the lock when the process ends however it ends. An engine's
/// first spill removes the subdirectories whose lock nobody holds: those of engines that are gone, never one of a
/// live process (a process id, which the system reuses, decides nothing).
public final class SpillDirectory: Sendable {
    /// The names of engines' subdirectories start with this.
    static let namePrefix = "sluice-spill-"
    /// The lock file in each engine's subdirectory.
    static let lockName = ".lock"

    /// The directory under which this engine's own directory is made.
    public let parent: String
    let calls: SystemCalls

    private struct State {
        var path: String?
        /// The open, locked lock file of `path` (-1: none yet).
        var lock: Int32 = -1
        var nextFile = 0
        var live: Set<String> = []
        var statistics = SpillStatistics()
    }

    private let state = Mutex(State())

    init(parent: String?, calls: SystemCalls) {
        self.parent = parent ?? SpillDirectory.temporaryDirectory
        self.calls = calls
    }

    deinit {
        let (path, live, lock) = state.withLock { ($0.path, $0.live, $0.lock) }
        for file in live { _ = calls.unlink(file) }
        if let path {
            SpillDirectory.removedAtExit.withLock { _ = $0.remove(path) }
            _ = calls.unlink("\(path)/\(Self.lockName)")
            _ = calls.rmdir(path)
        }
        if lock >= 0 { calls.close(lock) }  // the lock goes last: until then no other engine takes the directory
    }

    static var temporaryDirectory: String {
        if let tmp = getenv("TMPDIR"), tmp.pointee != 0 { return String(cString: tmp) }
        return "/tmp"
    }

    /// This engine's directory, once something was spilled.
    public var path: String? { state.withLock { $0.path } }

    /// The spill files that exist now.
    public var liveFiles: [String] { state.withLock { $0.live.sorted() } }

    /// What spilling has done so far.
    public var statistics: SpillStatistics { state.withLock { $0.statistics } }

    /// A path for a new spill file named after `purpose` (e.g. `shuffle-3-map`), making the directory first.
    /// - Throws: ``StorageError`` (`writeFailed`) when the directory cannot be made.
    func newFile(_ purpose: String) throws -> String {
        try state.withLock { (state) throws(StorageError) -> String in
            let directory: String
            if let path = state.path {
                directory = path
            } else {
                let made = try makeDirectory()
                (directory, state.lock) = (made.path, made.lock)
                state.path = directory
                _ = SpillDirectory.exitHook
                SpillDirectory.removedAtExit.withLock { _ = $0.insert(directory) }
                state.statistics.directoriesReclaimed += Self.reclaimLeftovers(in: made.parent, calls: calls).count
            }
            state.nextFile += 1
            let file = "\(directory)/\(purpose)-\(state.nextFile).slf"
            state.live.insert(file)
            state.statistics.filesWritten += 1
            return file
        }
    }

    /// Makes this engine's subdirectory and its lock file, locked: the directory it was made in (the parent as
    /// made), its path and the lock file's descriptor.
    private func makeDirectory() throws(StorageError) -> (parent: String, path: String, lock: Int32) {
        var random = SystemRandomNumberGenerator()
        let name = Self.namePrefix + "\(getpid())-\(String(random.next() & 0xFFFF_FFFF, radix: 16))"
        // Make the parent (and its parents) first, as Spark does with spark.local.dir.
        let made: String
        do {
            made = try calls.makeDirectories(parent)
        } catch {
            throw StorageError(
                .writeFailed, "cannot make the spill directory '\(parent)' (sluice.spill.dir)", underlying: error)
        }
        // Made under a name no other engine looks at, locked, then renamed: a directory under its final name
        // always has its lock held, so another engine never takes one being made for a leftover.
        let making = "\(made)/.\(name)"
        let path = "\(made)/\(name)"
        let (rc, err) = calls.mkdir(making, 0o700)
        guard rc == 0 else {
            throw StorageError(.writeFailed, "cannot make a spill directory in '\(parent)' (sluice.spill.dir)",
                underlying: FileError(operation: "mkdir", path: making, offset: nil, errno: err))
        }
        let lockPath = "\(making)/\(Self.lockName)"
        var lock: Int32 = -1
        func fail(_ operation: String, _ error: Int32) -> StorageError {
            if lock >= 0 { calls.close(lock) }
            removeTree(making, calls: calls)
            return StorageError(.writeFailed, "cannot make a spill directory in '\(parent)' (sluice.spill.dir)",
                underlying: FileError(operation: operation, path: lockPath, offset: nil, errno: error))
        }
        let (opened, openError) = calls.open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard opened >= 0 else { throw fail("open", openError) }
        lock = opened
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else { throw fail("flock", errno) }
        let (renamed, renameError) = calls.rename(making, path)
        guard renamed == 0 else { throw fail("rename", renameError) }
        return (made, path, lock)
    }

    /// Removes, under `parent`, the engines' subdirectories whose lock file no one holds (their engines are gone:
    /// a process killed, or ended without removing them); the paths removed. A subdirectory with no lock file is
    /// left alone: its engine may be making it now.
    package static func reclaimLeftovers(in parent: String, calls: SystemCalls) -> [String] {
        var removed: [String] = []
        for name in directoryNames(parent) ?? [] where name.hasPrefix(namePrefix) {
            let directory = "\(parent)/\(name)"
            let (lock, _) = calls.open("\(directory)/\(lockName)", O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0)
            guard lock >= 0 else { continue }
            defer { calls.close(lock) }
            // Held: a live engine's (this process's too: each open file is locked apart).
            guard flock(lock, LOCK_EX | LOCK_NB) == 0 else { continue }
            removeTree(directory, calls: calls)
            removed.append(directory)
        }
        return removed
    }

    /// The subdirectories of this process's live engines: removed by ``exitHook`` if the process exits with them.
    private static let removedAtExit = Mutex<Set<String>>([])

    /// Installs, once, the handler that removes ``removedAtExit``'s directories when the process exits (`exit` or
    /// a return from `main`; a killed process leaves them to the next engine's reclaim). Other threads may still
    /// run then: one holding the set's lock releases it, and the lock is the only one the handler takes.
    private static let exitHook: Void = { atexit { SpillDirectory.removeLiveDirectories() } }()

    /// Removes the subdirectories of this process's live engines: what the process does as it exits (by `exit`,
    /// or after a graceful stop on SIGTERM, before the signal ends it). The engines must not spill again.
    package static func removeLiveDirectories() {
        for path in removedAtExit.withLock({ $0 }) { removeTree(path, calls: .live) }
    }

    /// Removes a spill file whose data was dropped.
    func remove(_ file: String) {
        let removed = state.withLock { state -> Bool in
            guard state.live.remove(file) != nil else { return false }
            state.statistics.filesRemoved += 1
            return true
        }
        if removed { _ = calls.unlink(file) }
    }

    func recordWrite(uncompressed: Int, onDisk: Int) {
        state.withLock {
            $0.statistics.bytesSpilled += uncompressed
            $0.statistics.bytesOnDisk += onDisk
        }
    }

    func recordRead(_ bytes: Int) {
        state.withLock { $0.statistics.bytesReadBack += bytes }
    }
}
