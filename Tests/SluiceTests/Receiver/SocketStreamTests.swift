import SluiceColumnar
import Glibc
import Synchronization
import Testing
@testable import Sluice
import SluiceTesting

@Suite struct SocketStreamTests {
    /// A context on a manual clock with a quick receiver restart, and a listener of its events.
    func setUp(
        threads: Int = 2, _ settings: [String: String] = [:]
    ) throws -> (clock: ManualClock, ssc: StreamingContext, events: ReceiverEvents) {
        let clock = ManualClock()
        var conf = StreamingConf().setMaster("local[\(threads)]").set("spark.streaming.receiverRestartDelay", "50ms")
        for (key, value) in settings { conf = conf.set(key, value) }
        let ssc = try StreamingContext(conf: conf, batchDuration: .seconds(1), clock: clock)
        let events = ReceiverEvents()
        ssc.addStreamingListener(events)
        return (clock, ssc, events)
    }

    @Test func linesArriveAndAClosedConnectionReconnects() throws {
        try StreamTest.exclusively {
            let server = try LoopbackServer()
            let (clock, ssc, events) = try setUp()
            let lines = Collected<String>()
            ssc.socketTextStream("127.0.0.1", server.port).foreachRDD { rdd in
                for line in try rdd.collect() { lines.append(line) }
            }
            try ssc.start()
            let first = try #require(server.accept())
            try first.send("a b\nc\r\n")
            try first.send("d")  // no newline: the end of the data ends it
            first.close()
            // The receiver restarts after the end of the data and connects again.
            let second = try #require(server.accept())
            try second.send("é ü\n" + String(repeating: "x", count: 100_000) + "\n")
            driveReceiving(ssc, clock) { lines.values.count >= 5 }
            ssc.stop()
            second.close()
            #expect(lines.values.sorted() == ["a b", "c", "d", String(repeating: "x", count: 100_000), "é ü"])
            ssc.waitForListeners()
            #expect(events.all.contains { $0.contains("Socket data stream had no more data") })
        }
    }

    /// `socketTextStream` writes each line's bytes into the block's string column, no `String` made for it: each
    /// line arrives as `String(decoding:as:)` makes it from its bytes (invalid UTF-8 repaired), and its words
    /// count as those of that `String`, checked against a plain split of random bytes (ASCII, multi-byte and
    /// invalid sequences, empty lines, "\r\n") sent in random pieces, at a serialized and a deserialized level.
    @Test(arguments: [StorageLevel.memoryAndDiskSer2, .memoryOnly])
    func textLinesArriveAsStringsOfTheirBytes(level: StorageLevel) throws {
        var random = SeededGenerator(seed: 17)
        let pieces: [[UInt8]] = [
            Array("plain ascii".utf8), Array("é ü 日本 🙂".utf8), [0xFF, 0x41], [0xE2, 0x82], [0xC3], Array("\r".utf8), [],
            Array(String(repeating: "long words ", count: 40).utf8),
        ]
        var data: [UInt8] = []
        for _ in 0..<3_000 {
            for _ in 0..<Int.random(in: 0...3, using: &random) { data += pieces.randomElement(using: &random)! }
            data.append(UInt8(ascii: "\n"))
        }
        // The reference: split at "\n", a "\r" before it dropped, each line decoded as a String would be.
        let expected = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast().map { line in
            String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
        }
        try StreamTest.exclusively {
            let server = try LoopbackServer()
            let (clock, ssc, _) = try setUp()
            let lines = Collected<String>()
            let words = Collected<(String, Int)>()
            let stream = ssc.socketTextStream("127.0.0.1", server.port, storageLevel: level)
            stream.foreachRDD { rdd in
                for line in try rdd.collect() { lines.append(line) }
            }
            // The words count as those of each line's String (every invalid sequence one U+FFFD, one key).
            let repeatedKeys = Collected<String>()
            stream.flatMap { $0.split(ascii: " ") }.map { ($0.string, 1) }.reduceByKey(+).foreachRDD { rdd in
                let pairs = try rdd.collect()
                for pair in pairs { words.append(pair) }
                // A batch's reduceByKey has one pair a key (the lines may come over several batches).
                var seen = Set<String>()
                for (word, _) in pairs where !seen.insert(word).inserted { repeatedKeys.append(word) }
            }
            try ssc.start()
            let connection = try #require(server.accept())
            var start = 0
            while start < data.count {
                let end = min(data.count, start + Int.random(in: 1...20_000, using: &random))
                try connection.send(Array(data[start..<end]))
                start = end
            }
            driveReceiving(ssc, clock) { lines.values.count >= expected.count }
            ssc.stop()
            connection.close()
            #expect(lines.values.count == expected.count)
            #expect(lines.values.sorted() == expected.sorted(), "\(level)")
            let counts = words.values.reduce(into: [String: Int]()) { $0[$1.0, default: 0] += $1.1 }
            let expectedCounts = expected.flatMap { $0.split(separator: " ").map(String.init) }
                .reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
            #expect(counts == expectedCounts, "\(level)")
            #expect(repeatedKeys.values.isEmpty, "\(level): one pair a word in a batch, however its bytes came")
        }
    }

    /// Text records written into a string column hold the bytes that a `String` made of each record holds
    /// (invalid UTF-8 repaired when written, not only when read back), in one copy per read; as `String`s, the
    /// same records.
    @Test func textRecordsHoldTheBytesOfTheirStrings() throws {
        var random = SeededGenerator(seed: 5)
        let pieces: [[UInt8]] = [Array("ascii".utf8), Array("é 日本 🙂".utf8), [0xFF], [0xE2, 0x82], [0xC3], [], [0x80, 0x41]]
        // An invalid byte at each position of two 8-byte words, among ASCII: the ASCII check must see every one.
        let placed = (0..<16).map { at in [UInt8](repeating: 0x61, count: at) + [0xFF] + [UInt8](repeating: 0x62, count: 15 - at) }
        let records = placed + (0..<2_000).map { _ in
            (0..<Int.random(in: 0...4, using: &random)).flatMap { _ in pieces.randomElement(using: &random)! }
        }
        var text = TextRecords()
        for record in records { record.withUnsafeBytes { text.append($0) } }
        var written = try BlockBuilder(schema: [ColumnType(.string)])
        written.withColumn(0) { column in column.withBytesAppender { text.write(to: &$0) } }
        var made = try BlockBuilder(schema: [ColumnType(.string)])
        let strings = records.map { String(decoding: $0, as: UTF8.self) }
        made.withColumn(0) { column in column.withBytesAppender { a in for s in strings { a.append(s) } } }
        let (ours, theirs) = (try written.seal(), try made.seal())
        #expect(ours.rowCount == records.count)
        ours.withUnsafeBytes { ours in theirs.withUnsafeBytes { theirs in #expect(Array(ours) == Array(theirs)) } }
        #expect(text.strings() == strings)
        text.removeAll()
        #expect(text.count == 0 && text.capacity > 0, "an ordinary read's memory is kept")
        [UInt8](repeating: 0x61, count: TextRecords.keptBytes + 1).withUnsafeBytes { text.append($0) }
        text.removeAll()
        #expect(text.capacity == 0, "a very long line's memory is not")
    }

    @Test func aRefusedConnectionIsReportedAndRetried() throws {
        try StreamTest.exclusively {
            let server = try LoopbackServer()
            let port = server.port
            server.close()
            let (_, ssc, events) = try setUp()
            ssc.socketTextStream("127.0.0.1", port).foreachRDD { _ in }
            try ssc.start()
            let retried = eventually {
                ssc.waitForListeners()
                return events.all.filter { $0.contains("Error connecting to 127.0.0.1:\(port)") }.count >= 2
            }
            ssc.stop()
            #expect(retried, "\(events.all)")
        }
    }

    @Test func recordsTheConverterRejectsAreReportedWithTheirOffsetAndSkipped() throws {
        try StreamTest.exclusively {
            struct NotANumber: Error {}
            let server = try LoopbackServer()
            let (clock, ssc, events) = try setUp()
            let numbers = Collected<Int>()
            ssc.socketStream("127.0.0.1", server.port, framing: .delimiter(UInt8(ascii: ";"))) { bytes in
                guard let n = Int(String(decoding: bytes, as: UTF8.self)) else { throw NotANumber() }
                return n
            }.foreachRDD { rdd in for n in try rdd.collect() { numbers.append(n) } }
            try ssc.start()
            let connection = try #require(server.accept())
            try connection.send("1;22;x3;4;")
            driveReceiving(ssc, clock) { numbers.values.count >= 3 }
            ssc.stop()
            connection.close()
            #expect(numbers.values.sorted() == [1, 4, 22])
            ssc.waitForListeners()
            #expect(events.all.contains { $0.contains("record at offset 5") && $0.contains("skipped") }, "\(events.all)")
        }
    }

    @Test func aFixedLengthBelowOneByteIsRefusedAtStart() throws {
        try StreamTest.exclusively {
            let (_, ssc, _) = try setUp()
            ssc.socketStream("127.0.0.1", 9, framing: .fixedLength(0)) { $0.count }.foreachRDD { _ in }
            let error = #expect(throws: StreamingError.self) { try ssc.start() }
            #expect("\(error.map { "\($0)" } ?? "")".contains("a fixed record length must be at least 1 byte, got 0"))
            ssc.stop()
        }
    }

    @Test func fixedLengthRecordsAndATornLastRecord() throws {
        try StreamTest.exclusively {
            let server = try LoopbackServer()
            let (clock, ssc, events) = try setUp()
            let records = Collected<[UInt8]>()
            ssc.socketStream("127.0.0.1", server.port, framing: .fixedLength(3)) { Array($0) }
                .foreachRDD { rdd in for r in try rdd.collect() { records.append(r) } }
            try ssc.start()
            let connection = try #require(server.accept())
            try connection.send([1, 2, 3, 4, 5, 6, 7])
            connection.close()
            driveReceiving(ssc, clock) { records.values.count >= 2 }
            ssc.stop()
            #expect(records.values == [[1, 2, 3], [4, 5, 6]])
            ssc.waitForListeners()
            #expect(events.all.contains { $0.contains("in the middle of a record at offset 6") })
        }
    }
}

/// The socket source against peers that misbehave: an endless line, a reset, a half-close, a trickle.
extension SocketStreamTests {
    @Test func aGigabyteLineIsDroppedWithAClearErrorAndMemoryStaysBounded() throws {
        try StreamTest.exclusively {
            let server = try LoopbackServer()
            let (clock, ssc, events) = try setUp(["sluice.receiver.maxRecordBytes": "1m"])
            let lines = Collected<String>()
            ssc.socketTextStream("127.0.0.1", server.port).foreachRDD { rdd in
                for line in try rdd.collect() { lines.append(line) }
            }
            try ssc.start()
            let connection = try #require(server.accept())
            let before = residentBytes()
            try connection.send("before\n")
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
            for _ in 0..<1_024 { try connection.send(chunk) }  // 1 GiB, no newline
            try connection.send("\nafter\n")
            driveReceiving(ssc, clock) { lines.values.count >= 2 }
            let grown = residentBytes() - before
            ssc.stop()
            connection.close()
            #expect(lines.values.sorted() == ["after", "before"], "the lines around the long one arrive")
            // (The bound leaves room for AddressSanitizer's quarantine; without the limit it grows by over 1 GB.)
            #expect(grown < 512 << 20, "memory grew by \(grown >> 20) MB for a 1 GiB line")
            ssc.waitForListeners()
            #expect(
                events.all.contains {
                    $0.contains("record at offset 7 of 127.0.0.1:\(server.port) is longer than sluice.receiver.maxRecordBytes (1048576 bytes")
                }, "\(events.all)")
            #expect(!events.all.contains { $0.contains("no more data") }, "the connection stays up")
        }
    }

    @Test func aResetAndAHalfCloseReconnectAndATrickleStallsNoOtherReceiver() throws {
        try StreamTest.exclusively {
            let slow = try LoopbackServer()
            let reset = try LoopbackServer()
            let (clock, ssc, events) = try setUp(threads: 3)  // two receivers hold a thread each
            let slowLines = Collected<String>()
            let resetLines = Collected<String>()
            ssc.socketTextStream("127.0.0.1", slow.port).foreachRDD { rdd in for l in try rdd.collect() { slowLines.append(l) } }
            ssc.socketTextStream("127.0.0.1", reset.port).foreachRDD { rdd in for l in try rdd.collect() { resetLines.append(l) } }
            try ssc.start()
            let trickle = try #require(slow.accept())
            let first = try #require(reset.accept())
            try first.send("one\n")
            // A reset (RST, not FIN): the receiver reports the error and connects again.
            first.reset()
            let second = try #require(reset.accept())
            try second.send("two\n")
            // A half-close: the peer stops sending but still reads; the end of data ends the last line.
            second.shutdownWrite()
            let third = try #require(reset.accept())
            try third.send("three\n")
            // Meanwhile the other peer sends one line a byte at a time; batches go on for the first stream.
            var handled = 0
            for byte in Array("slow line\n".utf8) {
                try trickle.send([byte])
                usleep(30_000)
                clock.advance(by: .seconds(1))
                if ssc.waitUntilBatchHandled(clock.time, timeout: .seconds(10)) { handled += 1 }
            }
            driveReceiving(ssc, clock) { slowLines.values.count >= 1 && resetLines.values.count >= 3 }
            ssc.stop()
            #expect(handled == 10, "every batch ran while one peer trickled")
            #expect(resetLines.values.sorted() == ["one", "three", "two"])
            #expect(slowLines.values == ["slow line"])
            ssc.waitForListeners()
            #expect(events.all.contains { $0.contains("Error receiving data from 127.0.0.1:\(reset.port)") }, "\(events.all)")
            #expect(events.all.contains { $0.contains("Socket data stream had no more data") })
        }
    }
}
