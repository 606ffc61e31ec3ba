import Foundation
import IngestCore
import Testing

@Suite(.serialized) struct ShardingTests {
    /// More registrations than one session allows: three app keys (the primary, an indexed one, one from a
    /// credentials file), one session each, the registrations spread under the budget (serve mode enforces 2 per
    /// session here, as KIS enforces 41). Everything the recording holds for them arrives; tokens stay apart in Redis;
    /// `/metrics` and `/readyz` report per session.
    @Test func threeAppKeysShareTheRegistrations() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--registration-limit", "2"], in: dir)
        let tag = UUID().uuidString.prefix(6)
        let keys = ["PSshardA\(tag)", "PSshardB\(tag)", "PSshardC\(tag)"]
        let credentialsFile = dir.appendingPathComponent("credentials")
        try "# third key\n\(keys[2]) test-secret-\(keys[2])\n".write(to: credentialsFile, atomically: true, encoding: .utf8)
        let prefix = LocalServices.uniquePrefix("shard")
        let port = try freePort()
        var env = try daemonEnvironment(serve: serve, appKey: keys[0], prefix: prefix, extra: [
            "KIS_API_KEY_2": keys[1], "KIS_API_SECRET_2": "test-secret-\(keys[1])", "KIS_CREDENTIALS_FILE": credentialsFile.path,
            "KIS_MAX_REGISTRATIONS": "2", "METRICS_ADDRESS": "127.0.0.1:\(port)",
        ])
        env["KIS_SUBSCRIPTIONS"] = "H0STCNT0:005930|000660|035720,H0STASP0:005930|000660|035720"
        let rec = dir.appendingPathComponent("shard.sqlite").path

        // One key too few is refused before anything connects.
        var short = env
        short["KIS_CREDENTIALS_FILE"] = nil
        let refused = try Binaries.run(try Binaries.url("ingestd"), ["--print-config"], environment: short)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("KIS_SUBSCRIPTIONS has 6 registrations; 2 app keys allow 4 (2 per session"), "\(refused.stderr)")

        let daemon = try Background(try Binaries.url("ingestd"), ["--record", rec], environment: env, log: dir.appendingPathComponent("ingestd.log"))
        let base = try Endpoint("http://127.0.0.1:\(port)")
        func get(_ path: String) async throws -> HTTPResponse { try await HTTPClient.post(base, path: path, json: "") }
        #expect(try await waitUntil(30) { (try? await get("/readyz"))?.status == 200 }, "\(daemon.output)")
        #expect(try await serve.int("connections") == 3)
        let metrics = try await get("/metrics").body
        let fingerprints = keys.map { Secrets.fingerprint($0) }
        for fp in fingerprints {
            #expect(metrics.contains("kis_ingest_registrations_configured{session=\"\(fp)\"} 2"), "\(fp)")
            #expect(metrics.contains("kis_ingest_websocket_status{session=\"\(fp)\",status=\"Connected\"} 1"))
        }
        #expect(metrics.contains("kis_ingest_sessions 3"))
        let done = try await waitUntil(90) { try await serve.status()["done"] as? Bool == true }
        #expect(done, "serve did not finish")
        try await Task.sleep(for: .seconds(1))
        let finalMetrics = try await get("/metrics").body
        #expect(daemon.stop() == 0, "\(daemon.output)")
        #expect(try await serve.int("rejected_in_use") == 0)
        #expect(try await serve.int("subscribes") == 6)

        // Everything the recording has for the six registrations arrived, exactly once.
        let replayPrefix = LocalServices.uniquePrefix("shard-replay")
        let replay = try Binaries.run(try Binaries.url("ingest-replay"), [
            fixtureSession, "--max", "--tr-ids", "H0STCNT0,H0STASP0", "--topic-prefix", replayPrefix,
        ], environment: ["KAFKA_BROKERS": try LocalServices.kafkaBrokers])
        #expect(replay.status == 0, "\(replay.stderr)")
        var figures: [String] = []
        for topic in ["market.tick", "market.orderbook"] {
            let live = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers).readAll([prefix + topic], idle: .seconds(3))
            let replayed = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers).readAll([replayPrefix + topic], idle: .seconds(3))
            #expect(live.count == replayed.count && live.count > 1000, "\(topic): live \(live.count), replay \(replayed.count)")
            let liveKeys = Dictionary(grouping: live, by: \.key).mapValues(\.count)
            let replayKeys = Dictionary(grouping: replayed, by: \.key).mapValues(\.count)
            #expect(liveKeys == replayKeys, "\(topic) per symbol")
            figures.append("\(topic) \(live.count) (replay \(replayed.count))")
        }
        // Tokens and approval keys live apart in Redis, one namespace per app key.
        let redis = try RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: try LocalServices.redisPort))
        for fp in fingerprints {
            #expect(try redis.command(["EXISTS", "kis-ingest:\(fp):approval_key"]) == .integer(1), "\(fp)")
        }
        // One recording per app key.
        for (i, path) in [rec, LiveSession.shardRecordingPath(rec, keyIndex: 1), LiveSession.shardRecordingPath(rec, keyIndex: 2)].enumerated() {
            let rows = try RecordingReader(path: path).all()
            #expect(rows.filter { $0.kind == .subscribe }.count == 2, "\(path)")
            #expect(try RecordingReader(path: path).sessions.first?.appKeyFingerprint == fingerprints[i])
        }
        for text in [daemon.output, metrics, finalMetrics] {
            for key in keys { #expect(!text.contains(key), "app key leaked") }
            #expect(!text.contains("test-secret-"), "app secret leaked")
        }
        print("sharding: 3 app keys × 2 registrations, serve connections 3; \(figures.joined(separator: ", "))")
    }
}
