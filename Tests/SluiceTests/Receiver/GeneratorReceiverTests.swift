import SluiceColumnar
import Testing
@testable import Sluice
import SluiceTesting

@Suite struct GeneratorReceiverTests {
    /// The generator writes records straight into a block's column, and makes them as elements when a stream
    /// keeps those: both give the same records for the same seed, in runs of any length (across the column's
    /// refills), each within the bound asked for.
    @Test func theIntGeneratorWritesIntoABlockWhatItMakesAsElements() throws {
        let ssc = try StreamingContext(
            conf: StreamingConf().setMaster("local[1]"), batchDuration: .seconds(1), clock: ManualClock())
        defer { ssc.stop() }
        let stream = ssc.generatedIntStream(ratePerSecond: nil, distinctValues: 1_000, seed: 9)
        let generator = try #require(stream.receiver as? GeneratorReceiver<Int>)
        var (making, writing) = (WyRand(seed: 9), WyRand(seed: 9))
        var all: [Int] = []
        for n in [0, 1, 63, 64, 65, 4_096, 50_000] {
            let made = generator.make(&making, n)
            var builder = try BlockBuilder(schema: [ColumnType(.int64)])
            generator.write(&writing, n, &builder)
            let column = try builder.seal().column(0)
            #expect(column.count == n)
            #expect((0..<column.count).map { Int(column.value(at: $0, as: Int64.self)) } == made, "a run of \(n)")
            all += made
        }
        #expect(all.allSatisfy { (0..<1_000).contains($0) })
        #expect(Set(all).count == 1_000, "54,289 draws over 1,000 values reach every one")
    }

    /// The line generator writes whole runs of lines into the column at once, and makes them one by one as
    /// elements: both give the same lines for the same seed, in any number (runs cut short, across the column's
    /// refills), each of ten words from the vocabulary.
    @Test func theLineGeneratorWritesIntoABlockWhatItMakesAsElements() throws {
        let ssc = try StreamingContext(
            conf: StreamingConf().setMaster("local[1]"), batchDuration: .seconds(1), clock: ManualClock())
        defer { ssc.stop() }
        let stream = ssc.generatedLineStream(ratePerSecond: nil, wordsPerLine: 10, vocabulary: 500, seed: 4)
        let generator = try #require(stream.receiver as? GeneratorReceiver<String>)
        var (making, writing) = (WyRand(seed: 4), WyRand(seed: 4))
        var builder = try BlockBuilder(schema: [ColumnType(.string)])
        var all: [String] = []
        for n in [0, 1, 15, 16, 17, 33, 4_096, 50_000] {
            let made = generator.make(&making, n)
            generator.write(&writing, n, &builder)
            let column = try builder.seal().column(0)
            builder.reset()
            #expect(column.count == n)
            #expect((0..<column.count).map(column.string(at:)) == made, "a run of \(n)")
            all += made
        }
        let vocabulary = Set((0..<500).map { "w\($0)" })
        #expect(all.allSatisfy { line in
            let words = line.split(separator: " ", omittingEmptySubsequences: false)
            return words.count == 10 && words.allSatisfy { vocabulary.contains(String($0)) }
        })
    }
}
