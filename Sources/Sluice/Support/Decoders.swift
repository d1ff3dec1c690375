import SluiceColumnar

/// Sluice's readers of files it wrote, as the program runs them, for the fuzz targets (`SluiceFuzz`,
/// `scripts/fuzz.sh`) and their regression tests: each reads what it is given and returns what it found or
/// throws what the program would.
package enum Decoders {
    /// Reads the checkpoint file at `path`; returns the batch time it holds, in ms.
    package static func readCheckpoint(at path: String) throws -> Int64 {
        try Checkpoint.read(from: path, calls: .live).time.milliseconds
    }

    /// Reads the write-ahead log segments in `directory` (stream 0); returns the number of blocks and
    /// allocations found (torn tails dropped and reported through `warn`).
    package static func readWriteAheadLog(in directory: String, warn: (String) -> Void) throws -> Int {
        let found = try WriteAheadLog.readAll(directory: directory, streamId: 0, calls: .live, warn: warn)
        return found.blocks.count + found.allocations.count
    }

    /// The name the log gives the segment whose first record is `sequence` (in its directory).
    package static func writeAheadLogSegmentName(first sequence: Int64) -> String {
        "\(WriteAheadLog.segmentPrefix)\(sequence)"
    }
}
