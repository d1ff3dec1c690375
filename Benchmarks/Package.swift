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
/// A package-benchmark suite in Benchmarks/<name>, measuring Sluice's `products`.
func suite(_ name: String, using products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: products.map { .product(name: $0, package: sluice) } + [.product(name: "Benchmark", package: "benchmark")],
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}

let package = Package(
    name: "SluiceBenchmarks",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        suite("Columnar", using: ["SluiceColumnar"]),
        suite("Execution", using: ["SluiceExecution", "SluiceColumnar"]),
        suite("Streaming", using: ["Sluice", "SluiceTesting"]),
        // Single-threaded figures of the monitoring page's model (no context: see Monitoring.swift).
        suite("Monitoring", using: ["Sluice"]),
    ],
    swiftLanguageModes: [.v6]
)
