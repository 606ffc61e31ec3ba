import Foundation
import Testing

/// The package's executables, built by scripts/test before the tests run.
enum Binaries {
    static var directory: URL {
        get throws {
            if let dir = ProcessInfo.processInfo.environment["KIS_BIN_DIR"] { return URL(fileURLWithPath: dir) }
            let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            for candidate in [here, here.deletingLastPathComponent()] where
                FileManager.default.isExecutableFile(atPath: candidate.appendingPathComponent("ingest-replay").path) {
                return candidate
            }
            Issue.record("cannot find the built executables: run the tests through scripts/test (sets KIS_BIN_DIR)")
            throw CocoaError(.fileNoSuchFile)
        }
    }

    static func url(_ name: String) throws -> URL { try directory.appendingPathComponent(name) }

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Runs a program to completion; returns its exit status, standard output and standard error.
    @discardableResult
    static func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:])
        throws -> (status: Int32, stdout: String, stderr: String)
    {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes while the program runs so neither can fill up and block it.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        p.waitUntilExit()
        group.wait()
        return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}

func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kis-it-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}
