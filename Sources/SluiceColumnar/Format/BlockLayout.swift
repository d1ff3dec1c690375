import CSluiceChecksum

/// Sluice's block format, version 1. All integers little-endian.
///
/// ```
/// header, 32 bytes
///   0  magic "SLCB"     4  version u16     6  flags u16 (0)
///   8  columnCount u32  12 rowCount u32     16 totalLength u64
///   24 checksum u32 (CRC-32C of every byte of the block but these four)   28 reserved u32 (0)
/// directory, 32 bytes per column
///   0  kind u8  1 flags u8 (bit 0: nullable)  2 reserved u16 (0)  4 nullCount u32
///   8  validity offset u32, length u32   16 values offset u32, length u32   24 data offset u32, length u32
/// buffers, each starting at a multiple of 64 bytes from the start of the block
/// ```
/// Validity and `bool` values are bit-packed (bit i in byte i/8); `string`/`binary` values are rowCount + 1
/// UInt32 offsets into the data buffer. Offsets are relative to the start of the block, so one block is at
/// most 4 GiB.
enum BlockLayout {
    static let magic: UInt32 = 0x4243_4C53  // "SLCB" in little-endian byte order
    static let version: UInt16 = 1
    static let headerSize = 32
    static let directoryEntrySize = 32
    static let bufferAlignment = 64
    static let checksumOffset = 24
    /// A sanity bound on the directory, checked before it is read.
    static let maxColumns = 4096

    static func align(_ n: Int) -> Int { (n + bufferAlignment - 1) & ~(bufferAlignment - 1) }

    static func directoryEnd(columns: Int) -> Int { headerSize + columns * directoryEntrySize }

    /// CRC-32C of the block, skipping the checksum field.
    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count >= headerSize else { return 0 }
        let head = sluice_crc32c(0, base, checksumOffset)
        return sluice_crc32c(head, base + checksumOffset + 4, bytes.count - checksumOffset - 4)
    }
}

extension UnsafeRawBufferPointer {
    /// A little-endian integer at `offset`; the caller has checked the range.
    @inlinable
    func readLE<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
