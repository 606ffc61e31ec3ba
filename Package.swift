// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]
let librarySwiftSettings = swiftSettings + [.enableUpcomingFeature("InternalImportsByDefault")]

let executableDependencies: [Target.Dependency] = [
    "IngestCore",
    .product(name: "ArgumentParser", package: "swift-argument-parser"),
    .product(name: "Logging", package: "swift-log"),
]

let package = Package(
    name: "kis-ingest",
    products: [
        .library(name: "IngestCore", targets: ["IngestCore"]),
        .executable(name: "ingestd", targets: ["ingestd"]),
        .executable(name: "ingest-record", targets: ["ingest-record"]),
        .executable(name: "ingest-replay", targets: ["ingest-replay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // librdkafka >= 2.2, built by scripts/setup into .deps/librdkafka (PKG_CONFIG_PATH from scripts/env.sh).
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka"),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis"),
        .systemLibrary(name: "CSQLite3", pkgConfig: "sqlite3"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto"),
        // The field-separator scan of the frame path (SSE2 on x86-64).
        .target(name: "CKISScan"),
        .target(
            name: "IngestCore",
            dependencies: [
                "CRdKafka", "CHiredis", "CSQLite3", "COpenSSL", "CKISScan",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: librarySwiftSettings
        ),
        .executableTarget(name: "ingestd", dependencies: executableDependencies, swiftSettings: swiftSettings),
        .executableTarget(name: "ingest-record", dependencies: executableDependencies, swiftSettings: swiftSettings),
        .executableTarget(
            name: "ingest-replay",
            dependencies: executableDependencies + [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: swiftSettings
        ),
        // Stage benchmarks, run by scripts/bench (not part of the tests).
        .executableTarget(name: "kis-bench", dependencies: executableDependencies + ["CRdKafka"], swiftSettings: swiftSettings),
        // The public KIS frame corpus (fixtures/kis-frames), shared by both test targets.
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: swiftSettings),
        .testTarget(
            name: "IngestCoreTests",
            dependencies: ["IngestCore", "TestSupport", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        // Needs the local broker and Redis (scripts/services start); scripts/test provides them.
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["IngestCore", "TestSupport", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: swiftSettings
        ),
    ]
)
