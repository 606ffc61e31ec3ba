import Foundation
import IngestCore
import Testing

/// Serve mode must be faithful enough that a KIS client written from KIS's documentation, knowing nothing of our
/// code (Tests/kis_client.py: Python, the `websockets` library, openssl for AES), works against it unchanged.
@Suite(.serialized) struct IndependentClientTests {
    @Test func pythonClientFromTheDocumentation() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--pingpong-interval", "1s"], in: dir)
        // The venv scripts/setup made: KIS_VENV (scripts/env.sh; KIS_DEPS moves it), else the checkout's own.
        let venv = ProcessInfo.processInfo.environment["KIS_VENV"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? Binaries.repositoryRoot.appendingPathComponent(".deps/venv")
        let python = venv.appendingPathComponent("bin/python")
        let r = try Binaries.run(python, [
            Binaries.repositoryRoot.appendingPathComponent("Tests/kis_client.py").path, serve.base, serve.ws,
            "PSpython", "secret", "4", "H0STCNT0:005930", "H0STASP0:005930", "H0STCNI0:SYNTHUSER",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout) \(r.stderr)")
        let frames = o["frames"] as? [String: Int] ?? [:]
        print("independent client: \(r.stdout)")
        #expect(o["acks"] as? Int == 3)
        #expect((frames["H0STCNT0"] ?? 0) > 100)
        #expect((frames["H0STASP0"] ?? 0) > 100)
        #expect((o["notices_decrypted"] as? Int ?? 0) >= 5, "notices re-encrypted with the key the client was handed")
        #expect((o["pingpong"] as? Int ?? 0) >= 2)
        #expect((o["first_fields"] as? [String: String])?["H0STCNT0"] == "005930")
        #expect((o["first_fields"] as? [String: String])?["H0STCNI0"] == "SYNTHUSER")
        #expect(try await serve.int("dropped_for_no_echo") == 0)
    }
}
