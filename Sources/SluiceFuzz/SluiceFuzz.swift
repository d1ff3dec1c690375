import CSluiceIntrinsics
import Glibc
import SluiceColumnar
import SluiceTesting

// The fuzz targets of `FuzzTarget` (Sources/SluiceTesting/FuzzTargets.swift) as one program. Built by
// scripts/fuzz.sh with AddressSanitizer, libFuzzer's coverage and `-DSLUICE_FUZZING`, it runs libFuzzer on the
// target named by $SLUICE_FUZZ_TARGET; built plainly, it writes seed corpora and replays inputs:
//   SluiceFuzz targets                   the targets' names
//   SluiceFuzz seeds DIR                 real files of every target, in DIR/<target>/
//   SluiceFuzz replay TARGET FILE...     runs each file through TARGET, printing whether it decoded

/// A scratch directory for the decoders that read files, in memory when /dev/shm exists.
let scratch: String = {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    let path = "\(base)/sluice-fuzz-\(getpid())"
    mkdir(path, 0o755)
    return path
}()

/// Writes `message` and a newline to standard error.
func printError(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

#if SLUICE_FUZZING
let target: FuzzTarget = {
    let name = getenv("SLUICE_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        printError("SLUICE_FUZZ_TARGET must name a target (\(names)), not '\(name)'")
        exit(2)
    }
    return target
}()

/// One input through the target.
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target.run(UnsafeRawBufferPointer(start: data, count: size), scratch: scratch)
    return 0
}

/// The program's entry (SwiftPM links an executable's main under this name): libFuzzer's loop.
@_cdecl("SluiceFuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { fuzzOne($0, $1) }
}
#else
@main
struct SluiceFuzz {
    /// Runs the command; a bad command line or a file that cannot be read or written is a message and exit
    /// status 2, not a trap.
    static func main() {
        do {
            try run(Array(CommandLine.arguments.dropFirst()))
        } catch {
            printError("\(error)")
            exit(2)
        }
    }

    static func run(_ arguments: [String]) throws {
        switch arguments.first {
        case "targets" where arguments.count == 1:
            print(FuzzTarget.allCases.map(\.rawValue).joined(separator: " "))
        case "seeds" where arguments.count == 2:
            mkdir(arguments[1], 0o755)
            for target in FuzzTarget.allCases {
                let directory = "\(arguments[1])/\(target.rawValue)"
                mkdir(directory, 0o755)
                for (i, seed) in try target.seeds(scratch: scratch).enumerated() {
                    _ = try seed.withUnsafeBytes { try FuzzTarget.file($0, in: directory, named: "seed-\(i)") }
                }
            }
        case "replay" where arguments.count >= 3:
            guard let target = FuzzTarget(rawValue: arguments[1]) else { throw Usage("unknown target '\(arguments[1])'") }
            for path in arguments.dropFirst(2) {
                let bytes = try SystemCalls.live.readFile(path)
                let decoded = bytes.withUnsafeBytes { target.run($0, scratch: scratch) }
                print("\(path): \(decoded ? "decoded" : "refused with an error")")
            }
        default:
            throw Usage("usage: SluiceFuzz targets | SluiceFuzz seeds DIR | SluiceFuzz replay TARGET FILE...")
        }
    }
}

/// A command line SluiceFuzz does not take.
struct Usage: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
#endif
