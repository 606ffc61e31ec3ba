import Foundation
import IngestCore
import Testing

/// A background process with its output captured to a file.
final class Background: @unchecked Sendable {
    let process = Process()
    let log: URL

    init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:], log: URL) throws {
        self.log = log
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// SIGTERM, then wait; returns the exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, timeout: Double = 30) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

/// `ingest-replay serve` of a recording on a free loopback port.
final class ServeProcess: @unchecked Sendable {
    let background: Background
    let port: Int

    init(_ recording: String = fixtureSession, _ extra: [String] = [], in dir: URL) throws {
        let portFile = dir.appendingPathComponent("serve-\(UUID().uuidString.prefix(6)).port")
        background = try Background(try Binaries.url("ingest-replay"),
                                    ["serve", recording, "--listen", "127.0.0.1:0", "--port-file", portFile.path] + extra,
                                    log: dir.appendingPathComponent("serve-\(UUID().uuidString.prefix(6)).log"))
        var port: Int?
        for _ in 0..<200 where port == nil {
            port = (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0) }
            if port == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        self.port = try #require(port, "serve did not start: \(background.output)")
    }

    var tls: TLSOptions? = nil
    var base: String { tls == nil ? "http://127.0.0.1:\(port)" : "https://localhost:\(port)" }
    var ws: String { "ws://127.0.0.1:\(port)/tryitout" }

    func status() async throws -> [String: Any] {
        let r = try await HTTPClient.post(try Endpoint(base), path: "/admin/status", json: "{}", tls: tls ?? TLSOptions())
        return try #require(try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any], "status: \(r.body)")
    }

    func int(_ key: String) async throws -> Int { try await status()[key] as? Int ?? -1 }

    func fault(_ action: String, seconds: Double = 0) async throws {
        let r = try await HTTPClient.post(try Endpoint(base), path: "/admin/fault", json: "{\"action\":\"\(action)\",\"seconds\":\(seconds)}", tls: tls ?? TLSOptions())
        #expect(r.status == 200, "\(r.body)")
    }

    deinit { background.stop() }
}

/// The environment of an `ingestd` against a serve process.
func daemonEnvironment(serve: ServeProcess, appKey: String, prefix: String, extra: [String: String] = [:]) throws -> [String: String] {
    [
        "KIS_API_KEY": appKey, "KIS_API_SECRET": "test-secret-\(appKey)", "KIS_WEBSOCKET_URL": serve.ws, "KIS_API_URL": serve.base,
        "KIS_SUBSCRIPTIONS": "H0STCNT0:005930|000660|035720,H0STASP0:005930|000660|035720",
        "KAFKA_BROKERS": try LocalServices.kafkaBrokers, "KAFKA_TOPIC_PREFIX": prefix,
        "REDIS_HOST": "127.0.0.1", "REDIS_PORT": String(try LocalServices.redisPort), "LOG_LEVEL": "info",
        "KIS_RECONNECT_DELAY": "200ms", "KIS_RECONNECT_MAX_DELAY": "1s", "METRICS_ADDRESS": "off",
    ].merging(extra) { _, new in new }
}

func waitUntil(_ seconds: Double, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return try await condition()
}

/// A TCP port on 127.0.0.1 that nothing listens on right now and that no connection can take meanwhile: it lies
/// below the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), from which the source ports of
/// outgoing connections come. A port the kernel picks itself lies inside that range, and a test that binds it
/// seconds later can find it taken by a connection to the broker (seen in CI: "Address already in use"). No port is
/// handed out twice in one test process.
func freePort() throws -> Int {
    let ephemeralStart = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
        .flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) } } ?? 32768
    // Above the local services' ports (redis 16379, broker 19092) and below the ephemeral range.
    let range = 20000..<max(20001, min(ephemeralStart, 32768))
    for _ in 0..<1000 {
        let port = Int.random(in: range)
        guard PortLedger.claim(port) else { continue }
        if try canBind(port) { return port }
    }
    throw PortExhausted(range: range)
}

private struct PortExhausted: Error, CustomStringConvertible {
    let range: Range<Int>
    var description: String { "no free TCP port on 127.0.0.1 in \(range) after 1000 tries" }
}

/// The ports this test process has handed out.
private enum PortLedger {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var taken = Set<Int>()
    static func claim(_ port: Int) -> Bool { lock.withLock { taken.insert(port).inserted } }
}

private func canBind(_ port: Int) throws -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    try #require(fd >= 0, "socket() failed")
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return bound == 0
}
