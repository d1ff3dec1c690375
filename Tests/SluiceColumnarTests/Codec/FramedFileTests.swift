import Glibc
import Testing
@testable import SluiceColumnar
import SluiceTesting

/// A fresh temporary directory, removed after `body`.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let directory = try TemporaryDirectory(prefix: "sluice-test")
    defer { directory.remove() }
    return try body(directory.path)
}

func blocks(_ count: Int) throws -> [Block] {
    try (0..<count).map { i in try ElementCodecs.tuple(String.self, Int.self).encode((0..<1_000).map { ("w\(($0 + i) % 97)", $0) }) }
}

func readFrames(_ path: String, calls: SystemCalls = .live) throws -> (frames: [[UInt8]], error: Error?) {
    var reader = try FramedFileReader(opening: path, calls: calls)
    var frames: [[UInt8]] = []
    do {
        while let frame = try reader.next() { frames.append(frame.bytes) }
        return (frames, nil)
    } catch {
        return (frames, error)
    }
}

func fileBytes(_ path: String) throws -> [UInt8] {
    let source = try FileSource(opening: path)
    var buffer = try ArenaBuffer()
    _ = try source.read(at: 0, count: 1 << 24, into: &buffer)
    return buffer.bytes
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    var sink = try FileSink(creating: path)
    try bytes.withUnsafeBytes { try sink.write($0) }
}

@Suite struct FramedFileTests {
    @Test(arguments: [Int32?.none, 1, 3])
    func roundTripsEveryFrame(level: Int32?) throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/blocks.slz"
            let written = try blocks(5)
            var writer = try FramedFileWriter(creating: path, level: level)
            for b in written { try writer.append(b) }
            try writer.append(UnsafeRawBufferPointer(start: nil, count: 0))  // an empty frame is a frame
            try writer.finish(sync: true)
            let (frames, error) = try readFrames(path)
            #expect(error == nil)
            #expect(frames.count == 6)
            for (frame, block) in zip(frames, written) {
                #expect(frame == block.withUnsafeBytes { Array($0) })
                #expect(try Block(validating: ArenaBuffer(copying: frame)).rowCount == 1_000)
            }
            #expect(frames[5].isEmpty)
        }
    }

    @Test func aTornTailKeepsEveryCompleteFrame() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/torn.slz"
            var writer = try FramedFileWriter(creating: path)
            for b in try blocks(3) { try writer.append(b) }
            try writer.finish()
            let whole = try fileBytes(path)
            var g = SeededGenerator(seed: 17)
            for _ in 0..<50 {
                let cut = Int.random(in: 16..<(whole.count - 1), using: &g)
                try writeFile(path, Array(whole.prefix(cut)))
                let (frames, error) = try readFrames(path)
                let failure = try #require(error as? FormatError, "a cut at \(cut) must be reported")
                #expect(failure.code == .truncated || failure.code == .checksumMismatch)
                #expect(failure.message.contains(path))
                #expect(failure.offset <= cut)
                #expect(frames.count <= 3)
            }
            try writeFile(path, Array(whole.dropLast(32)))  // every frame, no trailer
            let (frames, error) = try readFrames(path)
            #expect(frames.count == 3)
            #expect((error as? FormatError)?.message.contains("without its trailer") == true)
        }
    }

    @Test func aCorruptMiddleFrameIsAnErrorWithItsOffset() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/corrupt.slz"
            var writer = try FramedFileWriter(creating: path)
            for b in try blocks(3) { try writer.append(b) }
            try writer.finish()
            var bytes = try fileBytes(path)
            let firstHeader = try bytes.withUnsafeBytes { try Envelope.readHeader(UnsafeRawBufferPointer(rebasing: $0[16...]), offset: 16) }
            let second = 16 + firstHeader.totalLength
            bytes[second + Envelope.headerSize + 5] ^= 0x40
            try writeFile(path, bytes)
            let (frames, error) = try readFrames(path)
            #expect(frames.count == 1)
            let failure = try #require(error as? FormatError)
            #expect(failure.code == .checksumMismatch)
            #expect(failure.offset == second + Envelope.headerSize)
            #expect(failure.message.contains("frame 1"))
        }
    }

    @Test func aFullDiskIsAClearErrorAndLosesNoEarlierFrame() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/full.slz"
            let faults = FaultySystemCalls()
            var writer = try FramedFileWriter(creating: path, calls: faults.calls)
            let written = try blocks(4)
            try writer.append(written[0])
            try writer.append(written[1])
            faults.diskFull(after: faults.bytesWritten + 100)
            let error = #expect(throws: FileError.self) { try writer.append(written[2]) }
            #expect(error?.isNoSpace == true)
            #expect(error?.description.contains(path) == true)
            #expect(error?.description.contains("No space left on device") == true)
            let (frames, readError) = try readFrames(path)
            #expect(frames.count == 2, "the frames written before the disk filled stay readable")
            #expect((readError as? FormatError)?.code == .truncated)
        }
    }

    @Test func shortWritesAndInterruptedCallsAreRetried() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/short.slz"
            let faults = FaultySystemCalls()
            faults.shortWrites(maxBytes: 7)
            faults.interrupt(every: 3)
            var writer = try FramedFileWriter(creating: path, calls: faults.calls)
            let written = try blocks(2)
            for b in written { try writer.append(b) }
            try writer.finish()
            let (frames, error) = try readFrames(path, calls: faults.calls)
            #expect(error == nil)
            #expect(frames == written.map { b in b.withUnsafeBytes { Array($0) } })
        }
    }

    @Test func unopenableFilesNameThePath() throws {
        let error = #expect(throws: FileError.self) { _ = try FramedFileReader(opening: "/nonexistent/dir/x.slz") }
        #expect(error?.description.contains("'/nonexistent/dir/x.slz'") == true)
        try withTemporaryDirectory { dir in
            try writeFile(dir + "/junk", Array("not a framed file".utf8))
            let e = #expect(throws: FormatError.self) { _ = try FramedFileReader(opening: dir + "/junk") }
            #expect(e?.code == .badMagic)
        }
    }
}
