import Glibc
import Synchronization
import Testing
@testable import Sluice
import SluiceTesting

@Suite struct SocketStreamTests {
    /// A context on a manual clock with a quick receiver restart, and a listener of its events.
    func setUp() throws -> (clock: ManualClock, ssc: StreamingContext, events: ReceiverEvents) {
        let clock = ManualClock()
        let ssc = try StreamingContext(
            conf: StreamingConf().setMaster("local[2]").set("spark.streaming.receiverRestartDelay", "50ms"),
            batchDuration: .seconds(1), clock: clock)
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
