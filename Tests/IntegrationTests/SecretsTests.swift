import Foundation
import IngestCore
import Testing

@Suite(.serialized) struct SecretsTests {
    /// The full loop with known secret values (app key and secret, the approval key and access token KIS hands out,
    /// the Redis password, and a wrong Redis password): logs at trace level in JSON, `/metrics`, `/readyz`,
    /// `--print-config`, every Kafka topic (values and headers: ticks, books, status events, dead letters), the
    /// recording file's bytes, and the error text of a failing Redis login. None contains any of them.
    @Test func noSecretAnywhere() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let redisPort = try freePort()
        let redisPassword = "redis-pw-\(UUID().uuidString.prefix(8))"
        let redis = try Background(URL(fileURLWithPath: "/usr/bin/redis-server"),
                                   ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", redisPassword],
                                   log: dir.appendingPathComponent("redis.log"))
        defer { redis.stop(signal: SIGKILL) }
        try await Task.sleep(for: .milliseconds(500))
        let serve = try ServeProcess(fixtureSession, ["--speed", "4"], in: dir)
        let appKey = "PSsecretKEY\(UUID().uuidString.prefix(8))"
        let appSecret = "app-secret-\(UUID().uuidString)"
        let prefix = LocalServices.uniquePrefix("secrets")
        let metricsPort = try freePort()
        var env = try daemonEnvironment(serve: serve, appKey: appKey, prefix: prefix, extra: [
            "KIS_API_SECRET": appSecret, "REDIS_PORT": String(redisPort), "REDIS_PASSWORD": redisPassword,
            "LOG_LEVEL": "trace", "LOG_FORMAT": "json", "METRICS_ADDRESS": "127.0.0.1:\(metricsPort)",
            "KAFKA_TOPIC_NOTICE": "market.notice",
        ])
        env["KIS_SUBSCRIPTIONS"] = "H0STCNT0:005930|000660,H0STASP0:005930,H0STCNI0:SYNTHUSER"
        let rec = dir.appendingPathComponent("secrets.sqlite").path
        let printed = try Binaries.run(try Binaries.url("ingestd"), ["--print-config"], environment: env)
        #expect(printed.status == 0)
        let daemon = try Background(try Binaries.url("ingestd"), ["--record", rec], environment: env, log: dir.appendingPathComponent("ingestd.log"))
        let base = try Endpoint("http://127.0.0.1:\(metricsPort)")
        #expect(try await waitUntil(20) { (try? await HTTPClient.post(base, path: "/readyz", json: ""))?.status == 200 }, "\(daemon.output)")
        #expect(try await waitUntil(20) { try await serve.int("frames_sent") > 200 })
        try await serve.fault("malformed")  // dead letters
        try await serve.fault("drop")  // status events: disconnected, reconnecting, gap
        #expect(try await waitUntil(20) {
            let total = try await serve.int("connections_total")
            let open = try await serve.int("connections")
            return total >= 2 && open == 1
        })
        try await Task.sleep(for: .seconds(2))
        let metrics = try await HTTPClient.post(base, path: "/metrics", json: "").body
        let ready = try await HTTPClient.post(base, path: "/readyz", json: "").body

        // What KIS handed out, read from the shared cache (the daemon stores "<time> <secret>").
        let client = try RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: redisPort, password: redisPassword))
        let fp = Secrets.fingerprint(appKey)
        func cached(_ name: String) throws -> String? {
            try client.command(["GET", "kis-ingest:\(fp):\(name)"]).text?.split(separator: " ", maxSplits: 1).last.map(String.init)
        }
        let approvalKey = try #require(try cached("approval_key"))
        let accessToken = try #require(try cached("access_token"))
        #expect(daemon.stop() == 0)

        // A wrong Redis password: the login fails, the error text must not echo it.
        let wrongPassword = "wrong-pw-\(UUID().uuidString.prefix(8))"
        var wrongEnv = env
        wrongEnv["REDIS_PASSWORD"] = wrongPassword
        wrongEnv["METRICS_ADDRESS"] = "off"
        wrongEnv["KAFKA_TOPIC_PREFIX"] = prefix + "wrong."
        let wrong = try Background(try Binaries.url("ingestd"), [], environment: wrongEnv, log: dir.appendingPathComponent("wrong.log"))
        #expect(try await waitUntil(20) { wrong.output.contains("Redis unavailable") }, "\(wrong.output)")
        #expect(wrong.stop() == 0)

        var outputs: [(String, String)] = [
            ("ingestd log", daemon.output), ("wrong-password log", wrong.output), ("metrics", metrics), ("readyz", ready),
            ("print-config", printed.stdout + printed.stderr),
        ]
        for topic in ["market.tick", "market.orderbook", "market.status", "market.deadletter", "market.notice"] {
            let records = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers).readAll([prefix + topic], idle: .seconds(2))
            let text = records.map { r in
                String(decoding: r.key + r.value, as: UTF8.self) + r.headers.map { $0.name + String(decoding: $0.value, as: UTF8.self) }.joined()
            }.joined(separator: "\n")
            outputs.append(("kafka \(topic) (\(records.count) messages)", text))
        }
        for suffix in ["", "-wal"] {
            if let data = FileManager.default.contents(atPath: rec + suffix) {
                outputs.append(("recording\(suffix)", String(decoding: data, as: UTF8.self)))
            }
        }
        #expect(outputs.first { $0.0.hasPrefix("kafka market.deadletter") }.map { !$0.1.isEmpty } == true, "dead letters were produced")
        #expect(outputs.first { $0.0.hasPrefix("kafka market.status") }.map { $0.1.contains("gap") } == true, "status events were produced")
        #expect(outputs.first { $0.0 == "recording" }.map { $0.1.contains("approval_key") } == true, "subscribe messages were recorded")
        let secrets = [("app key", appKey), ("app secret", appSecret), ("approval key", approvalKey), ("access token", accessToken),
                       ("Redis password", redisPassword), ("wrong Redis password", wrongPassword)]
        var checked = 0
        for (what, text) in outputs {
            for (name, secret) in secrets {
                #expect(!text.contains(secret), "\(name) leaked into \(what)")
                checked += 1
            }
        }
        print("secrets: \(secrets.count) secrets × \(outputs.count) outputs (\(outputs.map(\.0).joined(separator: ", "))): \(checked) checks, 0 leaks")
    }
}
