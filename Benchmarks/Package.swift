// swift-tools-version: 6.1
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, so the parent package's name is whatever the clone's
// folder is called ("main", "sluice", ...): read it rather than hard-code it.
let sluice = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

// package-benchmark suites for Sluice's pieces. Run from this folder:
//   swift package benchmark                       (all suites, release build)
//   swift package benchmark thresholds check      (compare with Thresholds/, checked in)
let package = Package(
    name: "SluiceBenchmarks",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "Columnar",
            dependencies: [
                .product(name: "SluiceColumnar", package: sluice),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Columnar",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Execution",
            dependencies: [
                .product(name: "SluiceExecution", package: sluice),
                .product(name: "SluiceColumnar", package: sluice),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Execution",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Streaming",
            dependencies: [
                .product(name: "Sluice", package: sluice),
                .product(name: "SluiceTesting", package: sluice),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Streaming",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Monitoring",
            dependencies: [
                .product(name: "Sluice", package: sluice),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Monitoring",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
