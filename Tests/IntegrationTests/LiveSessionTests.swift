import Foundation
import IngestCore
import SwiftProtobuf
import Testing

@Suite(.serialized) struct LiveSessionTests {
    /// `ingestd` against `serve` of the fixture lands the same messages as `ingest-replay --max` of the same
    /// recording and subscriptions: same code path, same output. Only what depends on the receive time differs: the
    /// `recv_time_ns` header, and the KST date of dateless order books (live: today; replay: the recorded day).
    @Test func liveEqualsReplay() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(in: dir)
        let livePrefix = LocalServices.uniquePrefix("live")
        let replayPrefix = LocalServices.uniquePrefix("replay")
        let rec = dir.appendingPathComponent("live.sqlite").path
        let daemon = try Background(try Binaries.url("ingestd"), ["--record", rec],
                                    environment: try daemonEnvironment(serve: serve, appKey: "PSequality\(UUID().uuidString.prefix(6))", prefix: livePrefix),
                                    log: dir.appendingPathComponent("ingestd.log"))
        let done = try await waitUntil(60) { try await serve.status()["done"] as? Bool == true }
        #expect(done, "serve did not finish: \(daemon.output)")
        try await Task.sleep(for: .seconds(1))
        #expect(daemon.stop() == 0, "\(daemon.output)")
        #expect(daemon.output.contains("stopped: received"))

        let replay = try Binaries.run(try Binaries.url("ingest-replay"), [
            fixtureSession, "--max", "--tr-ids", "H0STCNT0,H0STASP0", "--topic-prefix", replayPrefix,
        ], environment: ["KAFKA_BROKERS": try LocalServices.kafkaBrokers])
        #expect(replay.status == 0, "\(replay.stderr)")

        let consumer = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers)
        for topic in ["market.tick", "market.orderbook"] {
            let live = try consumer.readAll([livePrefix + topic], idle: .seconds(3))
            let replayed = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers).readAll([replayPrefix + topic], idle: .seconds(3))
            #expect(live.count == replayed.count, "\(topic)")
            #expect(live.count > 2000)
            func normalized(_ r: ConsumedRecord) throws -> String {
                var value = r.value
                var ts = r.timestampMs
                if topic == "market.orderbook" {
                    var book = try OrderBook(serializedBytes: r.value)
                    book.timestamp = book.timestamp % 86_400_000_000_000  // time of day only
                    value = try book.serializedBytes()
                    ts = ts % 86_400_000
                }
                let headers = r.headers.filter { $0.name != "recv_time_ns" }
                return "\(r.partition)|\(r.key)|\(value)|\(ts)|\(headers)"
            }
            let a = try live.sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }.map(normalized)
            let b = try replayed.sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }.map(normalized)
            #expect(a == b, "\(topic): live and replay differ")
            print("live = replay: \(topic) \(a.count) messages, \(zip(a, b).filter { $0 != $1 }.count) differences")
        }
        // The live recording holds what the socket delivered, both directions, with markers.
        let rows = try RecordingReader(path: rec).all()
        #expect(rows.contains { $0.kind == .connect })
        #expect(rows.filter { $0.kind == .subscribe }.count == 6)
        #expect(rows.allSatisfy { !$0.body.contains("test-secret") })
    }

    /// The server closes, goes silent, or drops without a close frame: the daemon comes back, resubscribes, and the
    /// gap is visible as a status event and as a recording marker; reconnect attempts stay few.
    @Test(arguments: ["close", "drop", "silence"])
    func reconnects(fault: String) async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--speed", "5", "--pingpong-interval", "30s"], in: dir)
        let prefix = LocalServices.uniquePrefix("reconnect-\(fault)")
        let rec = dir.appendingPathComponent("r.sqlite").path
        let daemon = try Background(try Binaries.url("ingestd"), ["--record", rec],
                                    environment: try daemonEnvironment(serve: serve, appKey: "PSreconnect\(fault)\(UUID().uuidString.prefix(4))", prefix: prefix,
                                                                       extra: ["KIS_HEARTBEAT_INTERVAL": "2s"]),
                                    log: dir.appendingPathComponent("ingestd.log"))
        #expect(try await waitUntil(20) { try await serve.int("frames_sent") > 200 }, "\(daemon.output)")
        try await serve.fault(fault, seconds: 4)
        #expect(try await waitUntil(30) { 
            let total = try await serve.int("connections_total")
            let open = try await serve.int("connections")
            return total >= 2 && open == 1
        }, "\(daemon.output)")
        let sentBefore = try await serve.int("frames_sent")
        #expect(try await waitUntil(20) { try await serve.int("frames_sent") > sentBefore + 50 }, "data flows again")
        #expect(try await serve.int("subscribes") == 12, "every subscription re-sent once")
        #expect(daemon.stop() == 0)

        let status = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers).readAll([prefix + "market.status"], idle: .seconds(3))
        let events = status.map { String(decoding: $0.value, as: UTF8.self) }
        #expect(events.contains { $0.contains("\"event\":\"disconnected\"") })
        #expect(events.contains { $0.contains("\"event\":\"gap\"") && $0.contains("gap_from_ns") })
        #expect(events.filter { $0.contains("\"event\":\"connected\"") }.count == 2)
        let reconnecting = events.filter { $0.contains("\"event\":\"reconnecting\"") }.count
        #expect(reconnecting >= 1 && reconnecting <= 3, "no tight reconnect loop: \(reconnecting) attempts")
        let markers = try RecordingReader(path: rec).all().map(\.kind)
        #expect(markers.contains(.disconnect))
        #expect(markers.contains(.gap))
        #expect(markers.filter { $0 == .connect }.count == 2)
        print("reconnect after \(fault): \(reconnecting) attempt(s), \(events.count) status events")
    }

    /// With PINGPONG echo disabled the server drops the client; with it on the session lives across many periods.
    @Test func pingPong() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(fixtureSession, ["--speed", "1", "--pingpong-interval", "1s", "--pingpong-timeout", "800ms"], in: dir)
        let good = try Background(try Binaries.url("ingestd"), [],
                                  environment: try daemonEnvironment(serve: serve, appKey: "PSpingok\(UUID().uuidString.prefix(4))", prefix: LocalServices.uniquePrefix("ping")),
                                  log: dir.appendingPathComponent("good.log"))
        try await Task.sleep(for: .seconds(6))
        #expect(try await serve.int("pingpongs_echoed") >= 4)
        #expect(try await serve.int("dropped_for_no_echo") == 0)
        #expect(try await serve.int("connections_total") == 1)
        #expect(good.stop() == 0)

        let bad = try Background(try Binaries.url("ingestd"), [],
                                 environment: try daemonEnvironment(serve: serve, appKey: "PSpingno\(UUID().uuidString.prefix(4))", prefix: LocalServices.uniquePrefix("noping"),
                                                                    extra: ["KIS_PINGPONG_ECHO": "false"]),
                                 log: dir.appendingPathComponent("bad.log"))
        #expect(try await waitUntil(10) { try await serve.int("dropped_for_no_echo") >= 1 }, "\(bad.output)")
        bad.stop()
    }

    /// The subscription budget: more than 41 registrations are refused at start with a clear message.
    @Test func subscriptionBudget() throws {
        let keys = (0..<42).map { String(format: "%06d", $0) }.joined(separator: "|")
        let r = try Binaries.run(try Binaries.url("ingestd"), [], environment: [
            "KIS_API_KEY": "PSbudget", "KIS_API_SECRET": "s", "KIS_SUBSCRIPTIONS": "H0STCNT0:\(keys)",
        ])
        #expect(r.status == 2)
        #expect(r.stderr.contains("KIS_SUBSCRIPTIONS has 42 registrations; 1 app key allows 41"))
        let missing = try Binaries.run(try Binaries.url("ingestd"), [], environment: ["KIS_API_KEY": "", "KIS_SUBSCRIPTIONS": "H0STCNT0:005930"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("KIS_API_KEY is not set"))
        let bad = try Binaries.run(try Binaries.url("ingestd"), [], environment: [
            "KIS_API_KEY": "k", "KIS_API_SECRET": "s", "KIS_SUBSCRIPTIONS": "H0STCNT0:005930", "KIS_RECONNECT_DELAY": "5 seconds",
        ])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("KIS_RECONNECT_DELAY=\"5 seconds\" is not a positive duration"))
    }
}
