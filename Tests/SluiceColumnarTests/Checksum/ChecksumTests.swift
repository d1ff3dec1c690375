import CSluiceChecksum
import Testing
import SluiceTesting

@Suite struct ChecksumTests {
    @Test func knownCheckValue() {
        let bytes = Array("123456789".utf8)
        #expect(sluice_crc32c(0, bytes, bytes.count) == 0xE306_9283)
        #expect(sluice_crc32c_portable(0, bytes, bytes.count) == 0xE306_9283)
    }

    @Test func fastPathMatchesThePortableOneAtEveryShape() {
        var g = SeededGenerator(seed: 77)
        let data = (0..<200_000).map { _ in UInt8.random(in: 0...255, using: &g) }
        let lengths = [0, 1, 7, 8, 9, 31, 32, 33, 24_575, 24_576, 24_577, 49_152, 73_731, 200_000]
            + (0..<40).map { _ in Int.random(in: 0...200_000, using: &g) }
        data.withUnsafeBytes { raw in
            for n in lengths {
                let start = n == 0 ? 0 : Int.random(in: 0...(200_000 - n), using: &g)
                let p = raw.baseAddress! + start
                #expect(sluice_crc32c(0, p, n) == sluice_crc32c_portable(0, p, n), "length \(n)")
                // Chaining: the CRC of a split equals the CRC of the whole.
                let cut = n / 3
                let chained = sluice_crc32c(sluice_crc32c(0, p, cut), p + cut, n - cut)
                #expect(chained == sluice_crc32c_portable(0, p, n), "chained at \(cut) of \(n)")
            }
        }
    }
}
