import CSluiceChecksum
import SluiceColumnar

/// Makes corrupted copies of encoded bytes for mutation tests: bit flips, overwritten bytes, truncation,
/// appended garbage, and lying length fields, optionally with the block checksum recomputed so that the
/// structural checks behind it are exercised too.
public struct ByteCorruptor {
    /// The kind of damage done.
    public enum Mutation: CaseIterable, Sendable {
        case flipBit, setByte, truncate, extend, lieAboutLength, swapBytes
    }

    private var random: SeededGenerator

    /// A corruptor whose mutations replay for the same seed.
    public init(seed: UInt64) { random = SeededGenerator(seed: seed) }

    /// A damaged copy of `bytes` and the mutation applied. With `resealBlock`, the copy is given a correct
    /// block checksum (bytes 24..<28, CRC-32C of the rest), as a forger would.
    public mutating func corrupt(_ bytes: [UInt8], resealBlock: Bool = false) -> (bytes: [UInt8], mutation: Mutation) {
        var out = bytes
        let mutation = Mutation.allCases.randomElement(using: &random)!
        switch mutation {
        case .flipBit:
            if !out.isEmpty {
                let i = Int.random(in: 0..<out.count, using: &random)
                out[i] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &random)
            }
        case .setByte:
            if !out.isEmpty {
                out[Int.random(in: 0..<out.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
        case .truncate:
            out.removeLast(Int.random(in: 1...max(1, out.count), using: &random))
        case .extend:
            out += (0..<Int.random(in: 1...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        case .lieAboutLength:
            // Overwrite an aligned 4-byte field (counts, offsets, lengths live there) with a plausible lie.
            if out.count >= 8 {
                let i = Int.random(in: 0..<(out.count / 4), using: &random) * 4
                let lies: [UInt32] = [0, 1, 0xFFFF_FFFF, 0x7FFF_FFFF, UInt32(out.count), UInt32(out.count + 1),
                    UInt32.random(in: 0...UInt32.max, using: &random)]
                let lie = lies.randomElement(using: &random)!
                withUnsafeBytes(of: lie.littleEndian) { for k in 0..<4 { out[i + k] = $0[k] } }
            }
        case .swapBytes:
            if out.count >= 2 {
                let a = Int.random(in: 0..<out.count, using: &random)
                let b = Int.random(in: 0..<out.count, using: &random)
                out.swapAt(a, b)
            }
        }
        if resealBlock && out.count >= 32 {
            let crc = out.withUnsafeBytes { b -> UInt32 in
                let head = sluice_crc32c(0, b.baseAddress, 24)
                return sluice_crc32c(head, b.baseAddress! + 28, b.count - 28)
            }
            withUnsafeBytes(of: crc.littleEndian) { for k in 0..<4 { out[24 + k] = $0[k] } }
        }
        return (out, mutation)
    }
}
