// swift-tools-version: 6.2
// The libFuzzer target for the frame path: classifier, parser, AES decryptor, mapper and Protobuf encoding.
// `FrameCore` is IngestCore's frame-path source files (symbolic links, so the code fuzzed is the code shipped),
// without the network, Kafka, Redis and SQLite parts: built with `-sanitize=fuzzer` it then needs only
// swift-protobuf and OpenSSL. scripts/fuzz builds it with `-parse-as-library` (libFuzzer provides `main`).
import PackageDescription

let package = Package(
    name: "kis-fuzz",
    dependencies: [.package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0")],
    targets: [
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto"),
        .target(name: "CKISScan"),
        .target(
            name: "FrameCore",
            dependencies: ["COpenSSL", "CKISScan", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Pipeline/PipelineOutput+JSON.swift"],
            swiftSettings: [.enableUpcomingFeature("InternalImportsByDefault")]
        ),
        .executableTarget(name: "kis-fuzz", dependencies: ["FrameCore"]),
    ]
)
