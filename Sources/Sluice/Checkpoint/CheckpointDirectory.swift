import Glibc
import SluiceColumnar

/// The checkpoint files of a directory: `checkpoint-<batch time in ms>`, each written under a hidden temporary
/// name, flushed, then renamed into place (and the directory flushed), so that a file with that name is always
/// complete. The newest readable file wins; older ones are kept up to `retained` as fallbacks.
struct CheckpointDirectory: Sendable {
    let path: String
    let calls: SystemCalls
    let retained: Int

    static let prefix = "checkpoint-"

    /// The checkpoint files, newest first.
    func files() -> [(time: Int64, path: String)] {
        (directoryNames(path) ?? []).compactMap { name -> (Int64, String)? in
            guard name.hasPrefix(Self.prefix), let ms = Int64(name.dropFirst(Self.prefix.count)) else { return nil }
            return (ms, "\(path)/\(name)")
        }.sorted { $0.0 > $1.0 }
    }

    /// Writes `checkpoint` as `checkpoint-<time>` (replacing one of that time), then removes files beyond the
    /// newest `retained` and temporary files a killed program left half-written.
    /// - Throws: ``StreamingError`` (`checkpointFailed`) naming the file; the previous checkpoints stay.
    func write(_ checkpoint: Checkpoint, level: Int32?) throws {
        let name = "\(Self.prefix)\(checkpoint.time.milliseconds)"
        let temporary = "\(path)/.\(name).tmp"
        do {
            try calls.makeDirectories(path)
            try checkpoint.write(to: temporary, level: level, calls: calls)
            let (rc, err) = calls.rename(temporary, "\(path)/\(name)")
            guard rc == 0 else { throw FileError(operation: "rename", path: temporary, offset: nil, errno: err) }
            calls.syncDirectory(path)
        } catch {
            _ = calls.unlink(temporary)
            throw StreamingError(.checkpointFailed, "writing the checkpoint '\(path)/\(name)' failed", underlying: error)
        }
        for old in files().dropFirst(retained) { _ = calls.unlink(old.path) }
        // One program writes a checkpoint directory, one file at a time: any other temporary file is a leftover.
        for name in directoryNames(path) ?? [] where name.hasPrefix(".\(Self.prefix)") && name.hasSuffix(".tmp") {
            _ = calls.unlink("\(path)/\(name)")
        }
    }

    /// The newest checkpoint that reads back whole; unreadable newer ones are skipped, each named in `warn`.
    /// Nil when the directory holds no checkpoint file.
    /// - Throws: ``StreamingError`` (`checkpointFailed`) when there are checkpoint files but none is readable,
    ///   naming each with its problem.
    func latest(warn: (String) -> Void) throws -> (checkpoint: Checkpoint, path: String)? {
        let candidates = files()
        guard !candidates.isEmpty else { return nil }
        var problems: [String] = []
        for candidate in candidates {
            do {
                return (try Checkpoint.read(from: candidate.path, calls: calls), candidate.path)
            } catch {
                problems.append("\(error)")
                warn("\(error); falling back to the previous checkpoint")
            }
        }
        throw StreamingError(
            .checkpointFailed,
            "none of the \(candidates.count) checkpoint files in '\(path)' is readable: "
                + problems.joined(separator: "; "))
    }
}
