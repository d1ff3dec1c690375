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
        var (making, writing) = (SplitMix(seed: 9), SplitMix(seed: 9))
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
}
