// swift-tools-version: 6.1
import PackageDescription

// Layers, lowest first; each target imports only those below it (see README "Source layout"):
//   C shims (CJemalloc, CZstd, CSluiceChecksum, CSluiceIntrinsics; CSluiceLimits, streambench's C floors)
//   -> SluiceColumnar: memory and format (arena buffers, memory budget, columns, blocks, serializer, codec)
//   -> SluiceExecution: threads (the work-stealing pool; partitions, shuffle, block store and spill to come)
//   -> Sluice: the streaming library users import
//   -> SluiceTesting: test doubles for users and for our own tests
//   -> SluiceBench (streambench's workloads, measuring and reports) -> streambench
/// `SLUICE_SYSTEM_ALLOCATOR=1 swift test --sanitize=thread` (or `address`): buffers come from the system
/// allocator instead of jemalloc, which replaces `malloc` in the whole process and so cannot run beside a
/// sanitizer's own allocator.
let systemAllocator = Context.environment["SLUICE_SYSTEM_ALLOCATOR"] == "1"
/// Every Swift target sees the setting: in those builds `Mutex` is a pthread mutex (see `PthreadMutex`).
let sanitizerSettings: [SwiftSetting] = systemAllocator ? [.define("SLUICE_SYSTEM_ALLOCATOR")] : []

let package = Package(
    name: "Sluice",
    products: [
        .library(name: "Sluice", targets: ["Sluice"]),
        .library(name: "SluiceTesting", targets: ["SluiceTesting"]),
        // The lower layers, products only so that Benchmarks/ (its own package) can measure them.
        .library(name: "SluiceColumnar", targets: ["SluiceColumnar"]),
        .library(name: "SluiceExecution", targets: ["SluiceExecution"]),
        .executable(name: "streambench", targets: ["streambench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .systemLibrary(name: "CJemalloc", providers: [.apt(["libjemalloc-dev"])]),
        .systemLibrary(name: "CZstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CRdKafka", providers: [.apt(["librdkafka-dev"])]),
        .target(name: "CSluiceChecksum"),
        .target(name: "CSluiceIntrinsics"),
        // The C floors streambench reports its figures against (the loops of Benchmarks/Limits/; clang -O2 runs
        // them as fast as gcc -O3 does).
        .target(name: "CSluiceLimits"),
        .target(
            name: "SluiceColumnar",
            dependencies: (systemAllocator ? [] : ["CJemalloc"]) + ["CZstd", "CSluiceChecksum"],
            swiftSettings: [.enableUpcomingFeature("InternalImportsByDefault")] + sanitizerSettings
        ),
        .target(
            name: "SluiceExecution",
            dependencies: [
                "SluiceColumnar", "CSluiceIntrinsics", .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: sanitizerSettings
        ),
        .target(
            name: "Sluice",
            dependencies: [
                "SluiceColumnar", "SluiceExecution", "CSluiceIntrinsics", "CRdKafka",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: sanitizerSettings
        ),
        .target(
            name: "SluiceTesting",
            dependencies: ["Sluice", "SluiceColumnar", "SluiceExecution", "CSluiceChecksum", "CRdKafka"],
            swiftSettings: sanitizerSettings
        ),
        .target(
            name: "SluiceBench",
            dependencies: [
                "Sluice", "SluiceColumnar", "SluiceTesting", "CSluiceIntrinsics", "CSluiceLimits",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: sanitizerSettings
        ),
        .executableTarget(name: "streambench", dependencies: ["SluiceBench"]),
        // The decoders' fuzz targets as one program (scripts/fuzz.sh builds it with libFuzzer).
        .executableTarget(name: "SluiceFuzz", dependencies: ["SluiceTesting", "SluiceColumnar", "CSluiceIntrinsics"]),
        .executableTarget(name: "NetworkWordCount", dependencies: ["Sluice"], path: "Examples/NetworkWordCount"),
        .executableTarget(name: "CustomReceiver", dependencies: ["Sluice"], path: "Examples/CustomReceiver"),
        .executableTarget(
            name: "RecoverableWordCount", dependencies: ["Sluice"], path: "Examples/RecoverableWordCount"),
        .testTarget(
            name: "SluiceColumnarTests", dependencies: ["SluiceColumnar", "SluiceTesting", "CSluiceChecksum"],
            swiftSettings: sanitizerSettings),
        .testTarget(
            name: "SluiceExecutionTests", dependencies: ["SluiceExecution", "SluiceTesting"],
            swiftSettings: sanitizerSettings),
        .testTarget(
            name: "SluiceTests",
            dependencies: [
                "Sluice", "SluiceTesting", "SluiceColumnar", "SluiceExecution", .product(name: "Logging", package: "swift-log"),
            ],
            // Inputs fuzzing found, replayed by FuzzTargetTests (read from the source tree, not bundled).
            exclude: ["Fuzz/Regressions"], swiftSettings: sanitizerSettings),
        .testTarget(
            name: "SluiceBenchTests",
            dependencies: [
                "SluiceBench", "Sluice", "SluiceTesting", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: sanitizerSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
