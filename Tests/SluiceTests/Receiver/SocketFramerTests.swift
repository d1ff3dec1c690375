import Testing
@testable import Sluice
import SluiceTesting

/// The socket framing alone: records against a plain split of the whole data, whatever the reads' sizes.
@Suite struct SocketFramerTests {
    /// Records of `data` split at `delimiter` by the standard library: the reference. A last record without a
    /// delimiter counts; an empty data has none.
    func reference(_ data: [UInt8], delimiter: UInt8, stripCR: Bool) -> [[UInt8]] {
        var records = data.split(separator: delimiter, omittingEmptySubsequences: false).map(Array.init)
        if data.last == delimiter || data.isEmpty { records.removeLast() }
        return records.map { stripCR && $0.last == UInt8(ascii: "\r") ? Array($0.dropLast()) : $0 }
    }

    func records(_ events: [FuzzTarget.Framed]) -> [[UInt8]] {
        events.compactMap { if case .record(_, let bytes) = $0 { bytes } else { nil } }
    }

    @Test func randomLinesCutInRandomReadsMatchAPlainSplit() {
        var random = SeededGenerator(seed: 17)
        for round in 0..<300 {
            // Short lines over a small alphabet with "\r" and "\n" common, and an occasional long one.
            let alphabet = Array("ab\r\n\n é".utf8)
            let data = (0..<Int.random(in: 0..<400, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
            let seed = UInt8(round % 256)
            let (events, capacity) = FuzzTarget.frame(data, .lines, maxRecordBytes: 1_000, readSeed: seed)
            #expect(records(events) == reference(data, delimiter: UInt8(ascii: "\n"), stripCR: true), "round \(round)")
            #expect(capacity <= 2_000)
            ([0, 0, 200, seed] + data).withUnsafeBytes { FuzzTarget.checkFraming($0) }
        }
    }

    @Test func delimitedAndFixedLengthRecords() {
        let data = Array("1;22;;333;tail".utf8)
        let delimited = FuzzTarget.frame(data, .delimiter(UInt8(ascii: ";")), maxRecordBytes: 100, readSeed: 5).events
        #expect(records(delimited).map { String(decoding: $0, as: UTF8.self) } == ["1", "22", "", "333", "tail"])
        #expect(delimited.compactMap { if case .record(let offset, _) = $0 { offset } else { nil } } == [0, 2, 5, 6, 10] as [Int64])
        let fixed = FuzzTarget.frame(Array("abcdefghij".utf8), .fixedLength(4), maxRecordBytes: 1, readSeed: 1).events
        #expect(fixed == [
            .record(offset: 0, bytes: Array("abcd".utf8)), .record(offset: 4, bytes: Array("efgh".utf8)),
            .torn(offset: 8, count: 2),
        ])
    }

    @Test func aRecordPastTheLimitIsReportedAndSkippedToItsEnd() {
        let data = Array("ok\n\(String(repeating: "x", count: 50))\nnext\n".utf8)
        let (events, capacity) = FuzzTarget.frame(data, .lines, maxRecordBytes: 10, readSeed: 3)
        #expect(events.contains(.tooLong(offset: 3)))
        #expect(records(events).map { String(decoding: $0, as: UTF8.self) } == ["ok", "next"])
        #expect(capacity <= 20, "the buffer stays within twice the limit")
    }
}
