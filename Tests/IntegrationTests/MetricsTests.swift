import Foundation
import IngestCore
import Testing

@Suite(.serialized) struct MetricsTests {
    /// `/metrics`, `/healthz`, `/readyz` of a running daemon; the app key and secret appear in none of its output.
    @Test func metricsAndHealth() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--speed", "4"], in: dir)
        let port = Int.random(in: 30000...32000)
        let appKey = "PSmetricsSECRETKEY\(UUID().uuidString.prefix(6))"
        var env = try daemonEnvironment(serve: serve, appKey: appKey, prefix: LocalServices.uniquePrefix("metrics"))
        env["METRICS_ADDRESS"] = "127.0.0.1:\(port)"
        env["LOG_LEVEL"] = "debug"
        let daemon = try Background(try Binaries.url("ingestd"), [], environment: env, log: dir.appendingPathComponent("ingestd.log"))
        let base = try Endpoint("http://127.0.0.1:\(port)")
        func get(_ path: String) async throws -> HTTPResponse { try await HTTPClient.post(base, path: path, json: "") }
        #expect(try await waitUntil(20) { (try? await get("/readyz"))?.status == 200 }, "\(daemon.output)")
        #expect(try await waitUntil(20) { try await serve.int("frames_sent") > 300 })
        let health = try await get("/healthz")
        #expect(health.status == 200)
        let metrics = try await get("/metrics").body
        func value(_ line: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(line + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        #expect((value("tick_count") ?? 0) > 0)
        #expect((value("orderbook_count") ?? 0) > 0)
        #expect(value("error_count") != nil)
        #expect(metrics.contains("kis_ingest_websocket_status{session=\"sha256:"))
        #expect(metrics.contains("status=\"Connected\"} 1"))
        #expect(metrics.contains("kis_ingest_frames_received_total{tr_id=\"H0STCNT0\"}"))
        #expect(metrics.contains("kis_ingest_deadletters_total{reason=\"bad_field\"} 0"))
        #expect(metrics.contains("kis_ingest_registrations{session="))
        #expect(metrics.contains("# TYPE kis_ingest_kafka_delivered_total counter"))
        print("metrics: \(metrics.split(separator: "\n").filter { !$0.hasPrefix("#") }.count) samples")
        // Not ready once KIS is gone.
        serve.background.stop()
        #expect(try await waitUntil(10) { (try? await get("/readyz"))?.status == 503 })
        let notReady = try await get("/readyz").body
        #expect(notReady.contains("KIS session is"))
        let finalMetrics = try await get("/metrics").body
        #expect(daemon.stop() == 0)
        for text in [daemon.output, metrics, finalMetrics, notReady] {
            #expect(!text.contains(appKey), "app key leaked")
            #expect(!text.contains("test-secret-"), "app secret leaked")
        }
    }
}
