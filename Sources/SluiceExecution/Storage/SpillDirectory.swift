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
    /// Spill files that exist now.
    public var liveFiles: Int { filesWritten - filesRemoved }
}

/// The directory an engine spills to (`sluice.spill.dir`): one subdirectory per engine, made on the first
/// spill and removed, with anything left in it, when the engine goes away. Files are removed as soon as the
/// data they hold is dropped.
public final class SpillDirectory: Sendable {
    /// The directory under which this engine's own directory is made.
    public let parent: String
    let calls: SystemCalls

    private struct State {
        var path: String?
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
        let (path, live) = state.withLock { ($0.path, $0.live) }
        for file in live { _ = calls.unlink(file) }
        if let path { _ = calls.rmdir(path) }
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
                directory = try makeDirectory()
                state.path = directory
            }
            state.nextFile += 1
            let file = "\(directory)/\(purpose)-\(state.nextFile).slf"
            state.live.insert(file)
            state.statistics.filesWritten += 1
            return file
        }
    }

    private func makeDirectory() throws(StorageError) -> String {
        var random = SystemRandomNumberGenerator()
        let name = "sluice-\(getpid())-\(String(random.next() & 0xFFFF_FFFF, radix: 16))"
        // Make the parent (and its parents) first, as Spark does with spark.local.dir.
        let made: String
        do {
            made = try calls.makeDirectories(parent)
        } catch {
            throw StorageError(
                .writeFailed, "cannot make the spill directory '\(parent)' (sluice.spill.dir)", underlying: error)
        }
        let path = "\(made)/\(name)"
        let (rc, err) = calls.mkdir(path, 0o700)
        guard rc == 0 else {
            throw StorageError(.writeFailed, "cannot make a spill directory in '\(parent)' (sluice.spill.dir)",
                underlying: FileError(operation: "mkdir", path: path, offset: nil, errno: err))
        }
        return path
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
