import Foundation
import IngestCore
import Testing

@Suite(.serialized) struct DaemonFaultTests {
    /// Two daemons with the same app key sharing one Redis: one token between them; the second WebSocket session is
    /// refused with OPSP8996 and backs off instead of looping.
    @Test func twoDaemonsShareOneToken() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--speed", "2"], in: dir)
        let app = "PStwo\(UUID().uuidString.prefix(6))"
        let env = try daemonEnvironment(serve: serve, appKey: app, prefix: LocalServices.uniquePrefix("two"), extra: ["KIS_IN_USE_BACKOFF": "5s"])
        let a = try Background(try Binaries.url("ingestd"), [], environment: env, log: dir.appendingPathComponent("a.log"))
        let b = try Background(try Binaries.url("ingestd"), [], environment: env, log: dir.appendingPathComponent("b.log"))
        #expect(try await waitUntil(30) { try await serve.int("rejected_in_use") >= 1 }, "\(a.output)\n\(b.output)")
        let firstRefusals = try await serve.int("rejected_in_use")
        try await Task.sleep(for: .seconds(4))
        #expect(try await serve.int("tokens_issued") == 1)
        #expect(try await serve.int("tokens_refused") == 0)
        let laterRefusals = try await serve.int("rejected_in_use") - firstRefusals
        #expect(laterRefusals <= 1, "the refused daemon backs off (≥ 5 s) instead of looping: \(laterRefusals) more refusals in 4 s\n\(a.output)\n\(b.output)")
        let sent = try await serve.int("frames_sent")
        #expect(sent > 0)
        #expect(a.stop() == 0)
        #expect(b.stop() == 0)
        let both = a.output + b.output
        #expect(both.contains("ALREADY IN USE appkey"))
        #expect(both.contains("another process holds the token lock") || both.components(separatedBy: "issued an access token").count == 2)
    }

    /// Redis killed mid-run does not stop ingestion; the daemon keeps its in-memory credentials and says so.
    @Test func redisKilledMidRun() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = try freePort()
        let redis = try Background(URL(fileURLWithPath: "/usr/bin/redis-server"),
                                   ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                   log: dir.appendingPathComponent("redis.log"))
        try await Task.sleep(for: .milliseconds(500))
        let serve = try ServeProcess(fixtureSession, ["--speed", "4"], in: dir)
        let prefix = LocalServices.uniquePrefix("redis")
        let daemon = try Background(try Binaries.url("ingestd"), [],
                                    environment: try daemonEnvironment(serve: serve, appKey: "PSredis\(UUID().uuidString.prefix(6))", prefix: prefix,
                                                                       extra: ["REDIS_PORT": String(port)]),
                                    log: dir.appendingPathComponent("ingestd.log"))
        #expect(try await waitUntil(15) { try await serve.int("frames_sent") > 100 })
        redis.stop(signal: SIGKILL)
        let before = try await serve.int("frames_sent")
        #expect(try await waitUntil(15) { try await serve.int("frames_sent") > before + 300 }, "ingestion continues without Redis")
        #expect(try await serve.int("connections") == 1)
        #expect(daemon.stop() == 0)
        let got = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers).readAll([prefix + "market.tick"], idle: .seconds(3))
        #expect(got.count > 300)
    }

    /// EGW00133 (tokens refused) is handled without a tight loop, and the WebSocket session is not affected.
    @Test func refusedTokensDoNotLoop() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--speed", "4"], in: dir)
        try await serve.fault("refuse-tokens", seconds: 120)
        let daemon = try Background(try Binaries.url("ingestd"), [],
                                    environment: try daemonEnvironment(serve: serve, appKey: "PSegw\(UUID().uuidString.prefix(6))", prefix: LocalServices.uniquePrefix("egw")),
                                    log: dir.appendingPathComponent("ingestd.log"))
        try await Task.sleep(for: .seconds(5))
        #expect(try await serve.int("tokens_refused") == 1, "one attempt, then at least a minute of waiting")
        #expect(try await serve.int("frames_sent") > 100, "market data flows regardless")
        #expect(daemon.stop() == 0)
        #expect(daemon.output.contains("EGW00133"))
    }

    /// A stale approval key (OPSP0011) triggers exactly one fresh issuance and a reconnect.
    @Test func staleApprovalKey() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--speed", "4"], in: dir)
        let daemon = try Background(try Binaries.url("ingestd"), [],
                                    environment: try daemonEnvironment(serve: serve, appKey: "PSstale\(UUID().uuidString.prefix(6))", prefix: LocalServices.uniquePrefix("stale")),
                                    log: dir.appendingPathComponent("ingestd.log"))
        #expect(try await waitUntil(15) { try await serve.int("frames_sent") > 50 })
        #expect(try await serve.int("approval_keys_issued") == 1)
        try await serve.fault("forget-approval-keys")
        try await serve.fault("drop")
        #expect(try await waitUntil(20) { 
            let issued = try await serve.int("approval_keys_issued")
            let open = try await serve.int("connections")
            return issued == 2 && open == 1
        }, "\(daemon.output)")
        let sent = try await serve.int("frames_sent")
        #expect(try await waitUntil(15) { try await serve.int("frames_sent") > sent + 50 })
        #expect(try await serve.int("approval_keys_issued") == 2)
        #expect(daemon.stop() == 0)
        #expect(daemon.output.contains("OPSP0011"))
    }

    /// OPSP0007 SUBSCRIBE INTERNAL ERROR: that registration is retried after a backoff and then subscribed.
    @Test func internalSubscribeErrorIsRetried() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--speed", "4"], in: dir)
        let r = try await HTTPClient.post(try Endpoint(serve.base), path: "/admin/fault", json: "{\"action\":\"subscribe-errors\",\"count\":2}")
        #expect(r.status == 200)
        let prefix = LocalServices.uniquePrefix("opsp0007")
        let daemon = try Background(try Binaries.url("ingestd"), [],
                                    environment: try daemonEnvironment(serve: serve, appKey: "PS0007\(UUID().uuidString.prefix(6))", prefix: prefix),
                                    log: dir.appendingPathComponent("ingestd.log"))
        // 6 registrations: 2 refused, each retried once (2 s later) → 8 subscribe requests, all 6 subscribed.
        #expect(try await waitUntil(20) { try await serve.int("subscribes") == 6 }, "\(daemon.output)")
        try await Task.sleep(for: .seconds(1))
        #expect(daemon.stop() == 0)
        #expect(daemon.output.contains("OPSP0007"))
        let status = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers).readAll([prefix + "market.status"], idle: .seconds(3))
        #expect(status.contains { String(decoding: $0.value, as: UTF8.self).contains("\"event\":\"subscribed\"") })
    }

    /// `wss://` and `https://` with a self-signed certificate trusted through KIS_TLS_CA_FILE; `ingest-record live`
    /// captures the session without Kafka.
    @Test func tlsAndLiveCapture() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("cert.pem").path
        let key = dir.appendingPathComponent("key.pem").path
        let gen = try Binaries.run(URL(fileURLWithPath: "/usr/bin/openssl"), [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
        ])
        #expect(gen.status == 0, "\(gen.stderr)")
        let serve = try ServeProcess(fixtureSession, ["--tls-cert", cert, "--tls-key", key], in: dir)
        serve.tls = TLSOptions(caFile: cert)
        let rec = dir.appendingPathComponent("capture.sqlite").path
        var env = try daemonEnvironment(serve: serve, appKey: "PStls\(UUID().uuidString.prefix(6))", prefix: "")
        env["KIS_WEBSOCKET_URL"] = "wss://localhost:\(serve.port)/tryitout"
        env["KIS_API_URL"] = "https://localhost:\(serve.port)"
        env["KIS_TLS_CA_FILE"] = cert
        let capture = try Background(try Binaries.url("ingest-record"), ["live", "--out", rec], environment: env,
                                     log: dir.appendingPathComponent("capture.log"))
        #expect(try await waitUntil(30) { try await serve.status()["done"] as? Bool == true }, "\(capture.output)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(capture.stop() == 0, "\(capture.output)")
        let rows = try RecordingReader(path: rec).all()
        #expect(rows.filter { $0.kind == .data }.count == 4414)
        #expect(rows.filter { $0.kind == .subscribe }.count == 6)
        #expect(rows.first?.kind == .start && rows.last?.kind == .stop)
        #expect(rows.allSatisfy { !$0.body.contains("test-secret") })
        #expect(try RecordingReader(path: rec).sessions.first?.endReason == "shutdown")
    }
}

@Suite(.serialized) struct ShutdownTests {
    /// SIGTERM under load: every message the daemon counted as published is in Kafka, none more.
    @Test func gracefulShutdownLosesNothing() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--speed", "20"], in: dir)
        let prefix = LocalServices.uniquePrefix("sigterm")
        let daemon = try Background(try Binaries.url("ingestd"), [],
                                    environment: try daemonEnvironment(serve: serve, appKey: "PSterm\(UUID().uuidString.prefix(6))", prefix: prefix),
                                    log: dir.appendingPathComponent("ingestd.log"))
        #expect(try await waitUntil(20) { try await serve.int("frames_sent") > 600 })
        #expect(daemon.stop() == 0, "\(daemon.output)")
        let sent = try await serve.int("frames_sent")
        #expect(sent < 4415, "the shutdown happened mid-stream")
        let line = try #require(daemon.output.split(separator: "\n").first { $0.contains("stopped: received") }.map(String.init))
        // "published P.market.orderbook N, P.market.tick M; dead letters D; …"
        func count(_ topic: String) -> Int {
            guard let r = line.range(of: prefix + topic + " ") else { return 0 }
            return Int(line[r.upperBound...].prefix { $0.isNumber }) ?? -1
        }
        let published = count("market.tick") + count("market.orderbook")
        let deadLetters = Int(line.components(separatedBy: "dead letters ").last?.prefix { $0.isNumber } ?? "") ?? -1
        #expect(line.contains("buffer drops 0"))
        let consumer = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers)
        let landed = try consumer.readAll([prefix + "market.tick", prefix + "market.orderbook", prefix + "market.deadletter"], idle: .seconds(3))
        #expect(landed.count == published + deadLetters, "\(line)")
        print("graceful shutdown: \(sent) frames sent by serve, \(published) market messages + \(deadLetters) dead letters counted, \(landed.count) in Kafka")
    }
}

@Suite(.serialized) struct MoreFaultTests {
    /// Redis down at start: ingestion runs on the in-memory cache, no token storm (one token, one approval key);
    /// once Redis is back, the shared cache is used again (the next issuance is written there).
    @Test func redisDownAtStartThenBack() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = try freePort()
        let serve = try ServeProcess(fixtureSession, ["--speed", "4"], in: dir)
        let appKey = "PSredisstart\(UUID().uuidString.prefix(6))"
        let prefix = LocalServices.uniquePrefix("redisstart")
        let daemon = try Background(try Binaries.url("ingestd"), [],
                                    environment: try daemonEnvironment(serve: serve, appKey: appKey, prefix: prefix, extra: ["REDIS_PORT": String(port)]),
                                    log: dir.appendingPathComponent("ingestd.log"))
        #expect(try await waitUntil(15) { try await serve.int("frames_sent") > 100 }, "\(daemon.output)")
        try await Task.sleep(for: .seconds(6))  // longer than the 5 s Redis retry: still no storm
        #expect(try await serve.int("tokens_issued") == 1)
        #expect(try await serve.int("approval_keys_issued") == 1)
        #expect(daemon.output.contains("Redis unavailable; continuing with the in-memory credential cache"))

        let redis = try Background(URL(fileURLWithPath: "/usr/bin/redis-server"),
                                   ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                   log: dir.appendingPathComponent("redis.log"))
        defer { redis.stop(signal: SIGKILL) }
        try await Task.sleep(for: .seconds(6))
        // Something that needs the cache: KIS forgets the approval key; the new one goes to Redis too.
        try await serve.fault("forget-approval-keys")
        try await serve.fault("drop")
        let client = try RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: port))
        let key = "kis-ingest:\(Secrets.fingerprint(appKey)):approval_key"
        #expect(try await waitUntil(20) { (try? client.command(["EXISTS", key])) == .integer(1) }, "\(daemon.output)")
        #expect(daemon.output.contains("Redis is reachable again; using the shared cache"))
        #expect(try await serve.int("approval_keys_issued") == 2)
        #expect(try await serve.int("tokens_issued") == 1)
        #expect(daemon.stop() == 0)
        let got = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers).readAll([prefix + "market.tick"], idle: .seconds(3))
        #expect(got.count > 300)
        print("redis down at start: \(got.count) trades published, 1 token, 2 approval keys (the second after OPSP0011, cached in Redis again)")
    }

    /// OPSP8996 on reconnect (KIS still holds the dropped session): the daemon backs off at least
    /// KIS_IN_USE_BACKOFF, then comes back, resubscribes, and reports the gap; attempts stay few.
    @Test func alreadyInUseOnReconnect() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--speed", "4"], in: dir)
        let prefix = LocalServices.uniquePrefix("inuse")
        let daemon = try Background(try Binaries.url("ingestd"), [],
                                    environment: try daemonEnvironment(serve: serve, appKey: "PSinuse\(UUID().uuidString.prefix(6))", prefix: prefix,
                                                                       extra: ["KIS_IN_USE_BACKOFF": "3s"]),
                                    log: dir.appendingPathComponent("ingestd.log"))
        #expect(try await waitUntil(15) { try await serve.int("frames_sent") > 100 })
        try await serve.fault("in-use", seconds: 2)
        let droppedAt = ContinuousClock.now
        try await serve.fault("drop")
        #expect(try await waitUntil(30) {
            let total = try await serve.int("connections_total")
            let open = try await serve.int("connections")
            let refused = try await serve.int("rejected_in_use")
            return refused >= 1 && total >= 3 && open == 1
        }, "\(daemon.output)")
        let sent = try await serve.int("frames_sent")
        #expect(try await waitUntil(20) { try await serve.int("frames_sent") > sent + 50 }, "data flows again")
        let recovered = ContinuousClock.now - droppedAt
        #expect(recovered >= .seconds(3), "the in-use backoff was respected: \(recovered)")
        let refusals = try await serve.int("rejected_in_use")
        #expect(refusals <= 2, "no tight loop: \(refusals) OPSP8996 refusals")
        #expect(daemon.stop() == 0)
        let events = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers).readAll([prefix + "market.status"], idle: .seconds(3))
            .map { String(decoding: $0.value, as: UTF8.self) }
        let reconnecting = events.filter { $0.contains("\"event\":\"reconnecting\"") }.count
        #expect(events.contains { $0.contains("\"event\":\"gap\"") })
        #expect(reconnecting >= 2 && reconnecting <= 4, "\(reconnecting) reconnect attempts")
        print("OPSP8996 on reconnect: \(refusals) refusal(s), \(reconnecting) reconnect attempts, data again after \(recovered)")
    }
}
