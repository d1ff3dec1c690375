import Glibc
import Sluice

/// Mounts a tmpfs of `options` (e.g. "size=64k", or "remount,size=16m" to grow a mounted one) at `path`: a real
/// small filesystem that fills, for disk-full tests. Mounting needs root, as CI has (see ``canMountTmpfs``).
/// - Throws: ``StreamingError`` naming the command when `mount` fails.
public func mountTmpfs(at path: String, _ options: String) throws {
    let mount = try ChildProcess("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", path], logPath: "/dev/null")
    guard mount.wait(timeout: .seconds(30)) == 0 else {
        throw StreamingError(.illegalState, "mount -t tmpfs -o \(options) tmpfs \(path) failed")
    }
}

/// Unmounts what ``mountTmpfs(at:_:)`` mounted at `path` (best effort, for a `defer`).
public func unmountTmpfs(at path: String) {
    _ = try? ChildProcess("/bin/umount", [path], logPath: "/dev/null").wait(timeout: .seconds(30))
}

/// Whether this process may mount a tmpfs (it runs as root).
public var canMountTmpfs: Bool { geteuid() == 0 }
