import Glibc
import Testing
import SluiceColumnar
import SluiceTesting
@testable import SluiceExecution

/// Spill directories left by engines that are gone are reclaimed by the lock their engine held, never one of a
/// live engine.
@Suite struct SpillDirectoryTests {
    /// Makes an engine's spill subdirectory `name` under `parent` with a spill file and, unless `locked` is
    /// false, its lock file.
    func leftover(_ name: String, in parent: String, lockFile: Bool = true) throws {
        let directory = "\(parent)/\(name)"
        #expect(mkdir(directory, 0o700) == 0)
        var names = ["shuffle-3-map-1.slf"]
        if lockFile { names.append(SpillDirectory.lockName) }
        for file in names {
            let fd = open("\(directory)/\(file)", O_CREAT | O_WRONLY, 0o600)
            #expect(fd >= 0)
            close(fd)
        }
    }

    /// Whether some open file holds the lock of `directory`'s lock file.
    func isLocked(_ directory: String) -> Bool {
        let fd = open("\(directory)/\(SpillDirectory.lockName)", O_RDWR)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) != 0
    }

    /// A process holding the lock of `directory` (one process: util-linux's `flock` would pass the lock on to
    /// its command), once it does.
    func holder(of directory: String) throws -> ChildProcess {
        let script = "import fcntl, sys, time; f = open(sys.argv[1], 'r+'); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(300)"
        let child = try ChildProcess("/usr/bin/python3", ["-c", script, "\(directory)/\(SpillDirectory.lockName)"], logPath: "/dev/null")
        for _ in 0..<500 where !isLocked(directory) { usleep(10_000) }
        #expect(isLocked(directory), "flock took the lock")
        return child
    }

    /// Spills one partition on `engine`: the RDD whose file it is (the file lives as long as it does).
    @discardableResult
    func spill(_ engine: ExecutionEngine) throws -> RDD<Int> {
        let persisted = engine.parallelize(Array(0..<1_000), numSlices: 1).persist(.diskOnly)
        #expect(try persisted.count() == 1_000)
        return persisted
    }

    @Test func leftoversOfEnginesThatAreGoneAreReclaimedAndLiveOnesKept() throws {
        let parent = try TemporaryDirectory()
        defer { parent.remove() }
        let p = parent.path
        // A live engine of this very process, spilling before the leftovers below exist.
        let live = ExecutionEngine(pool: try WorkStealingPool(workers: 1), spillDirectory: p)
        let kept = try spill(live)
        let liveDirectory = try #require(live.spill.path)
        #expect(isLocked(liveDirectory), "an engine holds its directory's lock while it lives")
        // An engine that ended without removing its directory: nobody holds its lock.
        try leftover("sluice-spill-101-dead", in: p)
        // A process killed with SIGKILL while it held its lock.
        try leftover("sluice-spill-102-killed", in: p)
        let killed = try holder(of: "\(p)/sluice-spill-102-killed")
        killed.killAndWait()
        // A live process holding its lock, and a directory with no lock file (one being made looks like that).
        try leftover("sluice-spill-103-alive", in: p)
        let alive = try holder(of: "\(p)/sluice-spill-103-alive")
        defer { alive.killAndWait() }
        try leftover("sluice-spill-104-nolock", in: p, lockFile: false)

        let next = ExecutionEngine(pool: try WorkStealingPool(workers: 1), spillDirectory: p)
        try spill(next)
        #expect(next.spill.statistics.directoriesReclaimed == 2)
        let names = Set(directoryNames(p) ?? [])
        #expect(!names.contains("sluice-spill-101-dead") && !names.contains("sluice-spill-102-killed"))
        #expect(names.isSuperset(of: ["sluice-spill-103-alive", "sluice-spill-104-nolock"]))
        #expect(isDirectory(liveDirectory) && isLocked(liveDirectory), "the live engine's directory stays")
        #expect(!live.spill.liveFiles.isEmpty && live.spill.liveFiles.allSatisfy { access($0, F_OK) == 0 }, "and its files")
        #expect(try kept.count() == 1_000)
    }

    @Test func anEngineRemovesItsDirectoryAndLockWhenItGoesAway() throws {
        let parent = try TemporaryDirectory()
        defer { parent.remove() }
        var engine: ExecutionEngine? = ExecutionEngine(pool: try WorkStealingPool(workers: 1), spillDirectory: parent.path)
        try spill(try #require(engine))
        let name = try #require(engine?.spill.path.map { String($0.split(separator: "/").last ?? "") })
        #expect(name.hasPrefix(SpillDirectory.namePrefix))
        #expect(directoryNames(parent.path) == [name], "made under a hidden name, then renamed: nothing else left")
        engine = nil
        #expect(directoryNames(parent.path) == [])
    }
}
