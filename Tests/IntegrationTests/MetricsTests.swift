import Foundation
import IngestCore
import Testing

@Suite(.serialized) struct MetricsTests {
    /// `/metrics`, `/healthz`, `/readyz` of a running daemon; the app key and secret appear in none of its output.
    @Test func metricsAndHealth() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--speed", "4"], in: dir)
        let port = try freePort()
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
        #expect(metrics.contains("# TYPE kis_ingest_pipeline_latency_seconds histogram"))
        #expect((value("kis_ingest_pipeline_latency_seconds_count") ?? 0) > 0)
        #expect((value("kis_ingest_kafka_produce_latency_seconds_count") ?? 0) > 0)
        #expect(metrics.contains("kis_ingest_kafka_produce_latency_seconds_bucket{le=\"+Inf\"}"))
        #expect(metrics.contains("kis_ingest_redis_errors_total{session=\"sha256:"))
        print("metrics: \(metrics.split(separator: "\n").filter { !$0.hasPrefix("#") }.count) samples")
        // Not ready once KIS is gone.
        serve.background.stop()
        #expect(try await waitUntil(10) { (try? await get("/readyz"))?.status == 503 })
        let notReady = try await get("/readyz").body
        #expect(notReady.contains("KIS session sha256:"))
        let finalMetrics = try await get("/metrics").body
        #expect(daemon.stop() == 0)
        for text in [daemon.output, metrics, finalMetrics, notReady] {
            #expect(!text.contains(appKey), "app key leaked")
            #expect(!text.contains("test-secret-"), "app secret leaked")
        }
    }

    /// `ingest-replay` (replay and serve) and `ingest-record live` expose the same endpoints when asked.
    @Test func toolsExposeEndpointsWhenAsked() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func get(_ port: Int, _ path: String) async throws -> HTTPResponse {
            try await HTTPClient.post(try Endpoint("http://127.0.0.1:\(port)"), path: path, json: "")
        }
        func sample(_ text: String, _ name: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        let ports = [try freePort(), try freePort(), try freePort()]
        try #require(Set(ports).count == 3)

        // serve: its own counters.
        let serve = try ServeProcess(fixtureSession, ["--speed", "2", "--metrics-address", "127.0.0.1:\(ports[0])"], in: dir)
        // ingest-record live against it.
        var env = try daemonEnvironment(serve: serve, appKey: "PSrecmetrics\(UUID().uuidString.prefix(4))", prefix: "unused.")
        env["METRICS_ADDRESS"] = nil
        let recorder = try Background(try Binaries.url("ingest-record"), ["live", "--out", dir.appendingPathComponent("rec.sqlite").path,
                                                                             "--metrics-address", "127.0.0.1:\(ports[1])"],
                                      environment: env, log: dir.appendingPathComponent("record.log"))
        #expect(try await waitUntil(20) { (try? await get(ports[1], "/readyz"))?.status == 200 }, "\(recorder.output)")
        #expect(try await waitUntil(20) { try await serve.int("frames_sent") > 50 })
        let recordMetrics = try await get(ports[1], "/metrics").body
        #expect((sample(recordMetrics, "kis_ingest_sessions") ?? 0) == 1)
        #expect(recordMetrics.contains("kis_ingest_messages_received_total{session=\"sha256:"))
        #expect(!recordMetrics.contains("kis_ingest_kafka_delivered_total"), "no producer in ingest-record")
        let serveMetrics = try await get(ports[0], "/metrics").body
        #expect((sample(serveMetrics, "kis_serve_frames_sent_total") ?? 0) > 50, "\(serveMetrics)")
        #expect((sample(serveMetrics, "kis_serve_connections") ?? 0) == 1)
        #expect(try await get(ports[0], "/healthz").status == 200)
        #expect(recorder.stop() == 0)

        // replay at 2×: progress while it runs.
        let prefix = LocalServices.uniquePrefix("replay-metrics")
        let replay = try Background(try Binaries.url("ingest-replay"), [fixtureSession, "--speed", "2", "--topic-prefix", prefix,
                                                                          "--metrics-address", "127.0.0.1:\(ports[2])"],
                                    environment: ["KAFKA_BROKERS": try LocalServices.kafkaBrokers], log: dir.appendingPathComponent("replay.log"))
        #expect(try await waitUntil(20) {
            guard let m = try? await get(ports[2], "/metrics").body else { return false }
            return (sample(m, "tick_count") ?? 0) > 0 && (sample(m, "kis_ingest_kafka_delivered_total") ?? 0) > 0
        }, "\(replay.output)")
        let replayMetrics = try await get(ports[2], "/metrics").body
        #expect((sample(replayMetrics, "kis_ingest_replay_rows") ?? 0) > 4000)
        #expect(sample(replayMetrics, "kis_ingest_replay_done") == 0)
        #expect(replayMetrics.contains("kis_ingest_kafka_produce_latency_seconds_count"))
        #expect(try await get(ports[2], "/readyz").status == 200)
        replay.stop()  // stopped early on purpose
        print("endpoints: serve sent \(sample(serveMetrics, "kis_serve_frames_sent_total") ?? 0) frames; replay tick_count \(sample(replayMetrics, "tick_count") ?? 0) while running")
    }
}
