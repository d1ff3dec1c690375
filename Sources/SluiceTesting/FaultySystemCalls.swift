import Glibc
import Synchronization
import SluiceColumnar

/// System calls that misbehave on purpose: a disk that fills up, writes that stop short, calls interrupted by
/// signals. Built on ``SystemCalls/live``.
public final class FaultySystemCalls: Sendable {
    private struct State {
        var bytesWritten = 0
        var writeCalls = 0
        var diskSize: Int?
        var maxBytesPerWrite: Int?
        var interruptEvery: Int?
        var failOpen: (@Sendable (String) -> Bool)?
    }

    private let state = Mutex(State())

    /// System calls with no faults until some are configured.
    public init() {}

    /// Writes fail with ENOSPC once `bytes` bytes in all have been written (a short write reaches the limit).
    public func diskFull(after bytes: Int) { state.withLock { $0.diskSize = bytes } }

    /// No write call writes more than `bytes` bytes.
    public func shortWrites(maxBytes bytes: Int) { state.withLock { $0.maxBytesPerWrite = bytes } }

    /// Every `n`th write and read call fails with EINTR.
    public func interrupt(every n: Int) { state.withLock { $0.interruptEvery = n } }

    /// Opening a path for which `predicate` is true fails with EIO (an unreadable file).
    public func failOpen(where predicate: @escaping @Sendable (String) -> Bool) {
        state.withLock { $0.failOpen = predicate }
    }

    /// Bytes written through these calls so far.
    public var bytesWritten: Int { state.withLock { $0.bytesWritten } }

    /// The calls to inject.
    public var calls: SystemCalls {
        var calls = SystemCalls.live
        let live = SystemCalls.live
        calls.open = { [self] path, flags, mode in
            if let fail = state.withLock({ $0.failOpen }), fail(path) { return (-1, EIO) }
            return live.open(path, flags, mode)
        }
        calls.write = { [self] fd, bytes in
            enum Plan { case interrupt, full, write(Int) }
            let plan: Plan = state.withLock { s in
                s.writeCalls += 1
                if let every = s.interruptEvery, s.writeCalls % every == 0 { return .interrupt }
                var n = bytes.count
                if let max = s.maxBytesPerWrite { n = min(n, max) }
                if let size = s.diskSize {
                    let room = size - s.bytesWritten
                    if room <= 0 { return .full }
                    n = min(n, room)
                }
                return .write(n)
            }
            switch plan {
            case .interrupt: return (-1, EINTR)
            case .full: return (-1, ENOSPC)
            case .write(let n):
                let (written, err) = live.write(fd, UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
                if written > 0 { state.withLock { $0.bytesWritten += written } }
                return (written, err)
            }
        }
        calls.pread = { [self] fd, buffer, offset in
            let interrupted = state.withLock { s -> Bool in
                s.writeCalls += 1
                if let every = s.interruptEvery { return s.writeCalls % every == 0 }
                return false
            }
            return interrupted ? (-1, EINTR) : live.pread(fd, buffer, offset)
        }
        return calls
    }
}
