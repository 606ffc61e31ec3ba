import Foundation
import Synchronization
import Testing

@testable import IngestCore

final class CollectingSink: RawMessageSink {
    let rows = Mutex<[RecordedMessage]>([])
    func record(_ message: RecordedMessage) { rows.withLock { $0.append(message) } }
}

@Suite struct SessionTests {
    func session(buffer: FrameBuffer, sink: CollectingSink, maxAttempts: Int? = 5) throws -> KISSession {
        let credentials = CredentialStore(credentials: KISCredentials(appKey: "k", appSecret: "s"),
                                          rest: KISRestClient(base: try Endpoint("http://127.0.0.1:1")), redis: nil)
        return KISSession(configuration: SessionConfiguration(endpoint: try Endpoint("ws://127.0.0.1:1/tryitout"),
                                                              subscriptions: [Subscription(trID: "H0STCNT0", trKey: "005930")],
                                                              reconnectDelay: .seconds(1), reconnectMaxDelay: .seconds(30), maxAttempts: maxAttempts),
                          credentials: credentials, buffer: buffer, recorder: sink) { _ in }
    }

    /// A full buffer drops data frames (counted) but the recorder still has them; control messages always pass.
    @Test func fullBufferDropsButRecords() throws {
        let buffer = FrameBuffer(capacity: 2)
        let sink = CollectingSink()
        let s = try session(buffer: buffer, sink: sink)
        for i in 0..<5 { s.inbound("0|H0STCNT0|001|005930^09300\(i)", receivedAt: Int64(i)) }
        s.inbound("{\"header\":{\"tr_id\":\"H0STCNT0\",\"tr_key\":\"005930\"},\"body\":{\"rt_cd\":\"0\",\"msg_cd\":\"OPSP0000\",\"msg1\":\"SUBSCRIBE SUCCESS\"}}", receivedAt: 9)
        #expect(s.counters.droppedBufferFull == 3)
        #expect(s.counters.messagesReceived == 6)
        #expect(s.counters.subscribed == 1)
        #expect(buffer.count == 3)  // two frames and the ack
        #expect(sink.rows.withLock { $0.filter { $0.kind == .data }.count } == 5)
    }

    @Test func backoffIsExponentialJitteredAndCapped() throws {
        let s = try session(buffer: FrameBuffer(capacity: 1), sink: CollectingSink())
        for attempt in 1...12 {
            let ceiling = min(30.0, pow(2, Double(attempt - 1)))
            for _ in 0..<50 {
                let d = s.backoff(attempt: attempt).nanosecondsDouble / 1e9
                #expect(d >= 0.1 && d <= ceiling + 1e-9, "attempt \(attempt): \(d)")
            }
        }
        let late = (0..<200).map { _ in s.backoff(attempt: 10).nanosecondsDouble / 1e9 }
        #expect(late.max()! > 15, "full jitter reaches up to the cap")
        #expect(late.min()! < 15)
    }

    @Test func subscriptionsParse() throws {
        #expect(try Subscription.parseList("H0STCNT0:005930|000660, H0STASP0:005930") == [
            Subscription(trID: "H0STCNT0", trKey: "005930"), Subscription(trID: "H0STCNT0", trKey: "000660"),
            Subscription(trID: "H0STASP0", trKey: "005930"),
        ])
        #expect(throws: ConfigurationError.self) { try Subscription.parseList("H0STCNT0") }
        #expect(throws: ConfigurationError.self) { try Subscription.parseList("h0stcnt0:005930") }
        #expect(throws: ConfigurationError.self) { try Subscription.parseList("H0STCNT0:00 5930") }
        #expect(throws: ConfigurationError.self) { try Subscription.parseList("") }
        let request = Subscription(trID: "H0STCNT0", trKey: "005930").request(approvalKey: "ak")
        #expect(request == #"{"header":{"approval_key":"ak","custtype":"P","tr_type":"1","content-type":"utf-8"},"body":{"input":{"tr_id":"H0STCNT0","tr_key":"005930"}}}"#)
    }

    @Test func configurationErrorsNameTheVariable() {
        let base = ["KIS_API_KEY": "k", "KIS_API_SECRET": "s", "KIS_SUBSCRIPTIONS": "H0STCNT0:005930"]
        let cases: [([String: String], String)] = [
            (["KIS_RECONNECT_RETRIES": "-1"], "KIS_RECONNECT_RETRIES=\"-1\""),
            (["KIS_WEBSOCKET_URL": "http://x"], "KIS_WEBSOCKET_URL"),
            (["KIS_API_URL": "ftp://x"], "KIS_API_URL"),
            (["KIS_HEARTBEAT_INTERVAL": "soon"], "KIS_HEARTBEAT_INTERVAL=\"soon\""),
            (["REDIS_HOST": "r", "REDIS_PORT": "99999"], "REDIS_PORT=\"99999\""),
            (["REDIS_HOST": "r", "REDIS_TLS": "true"], "REDIS_TLS=true"),
            (["KIS_CUSTTYPE": "X"], "KIS_CUSTTYPE"),
            (["KIS_BACKGROUND_THREADS": "idle"], "KIS_BACKGROUND_THREADS=\"idle\" is not batch or normal"),
        ]
        for (extra, needle) in cases {
            do {
                _ = try DaemonConfiguration(environment: base.merging(extra) { _, n in n })
                Issue.record("accepted \(extra)")
            } catch {
                #expect(error.message.contains(needle), "\(error.message)")
                #expect(!error.message.contains("secret"))
            }
        }
        let ok = try? DaemonConfiguration(environment: base.merging(["KIS_RECONNECT_RETRIES": "0"]) { _, n in n })
        #expect(ok?.session.maxAttempts == nil, "0 means unlimited")
        #expect(ok?.redis == nil)
        #expect(ok?.session.watchdog == .seconds(150))
        #expect(ok?.backgroundThreads == .batch, "helpers run under SCHED_BATCH unless told otherwise")
        let normal = try? DaemonConfiguration(environment: base.merging(["KIS_BACKGROUND_THREADS": "Normal"]) { _, n in n })
        #expect(normal?.backgroundThreads == .normal)
    }

    @Test func statusEventJSON() {
        let e = StatusEvent(kind: .gap, time: 5, session: "sha256:ab", reason: "disconnected", gapFrom: 1, gapTo: 4)
        #expect(e.json() == #"{"event":"gap","time_ns":5,"session":"sha256:ab","reason":"disconnected","gap_from_ns":1,"gap_to_ns":4}"#)
        #expect(e.markerKind == .gap)
    }
}

@Suite struct EffectiveEnvironmentTests {
    @Test func dotEnvParsing() throws {
        let env = try EffectiveEnvironment.parseDotEnv("""
            # comment
            KIS_API_KEY=PSabc
            export KIS_RECONNECT_DELAY = 2s
            REDIS_PASSWORD="p w"
            EMPTY=

            SINGLE='x=y'
            """, file: ".env")
        #expect(env == ["KIS_API_KEY": "PSabc", "KIS_RECONNECT_DELAY": "2s", "REDIS_PASSWORD": "p w", "EMPTY": "", "SINGLE": "x=y"])
        #expect(throws: ConfigurationError.self) { try EffectiveEnvironment.parseDotEnv("just words", file: ".env") }
        do {
            _ = try EffectiveEnvironment.parseDotEnv("A=1\nB C=2", file: "my.env")
        } catch {
            #expect(error.message.hasPrefix("my.env:2:"))
        }
    }

    @Test func precedenceDotEnvThenEnvironmentThenFlags() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kis-env-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("test.env").path
        try "A=from-file\nB=from-file\nC=from-file\n".write(toFile: file, atomically: true, encoding: .utf8)
        let merged = try EffectiveEnvironment.load(process: ["KIS_ENV_FILE": file, "B": "from-env", "C": "from-env"], overrides: ["C=from-flag"])
        #expect(merged["A"] == "from-file")
        #expect(merged["B"] == "from-env")
        #expect(merged["C"] == "from-flag")
        #expect(throws: ConfigurationError.self) { try EffectiveEnvironment.load(process: ["KIS_ENV_FILE": file + ".missing"], overrides: []) }
        #expect(throws: ConfigurationError.self) { try EffectiveEnvironment.load(process: ["KIS_ENV_FILE": file], overrides: ["novalue"]) }
    }

    @Test func printableConfigurationMasksSecrets() throws {
        let c = try DaemonConfiguration(environment: [
            "KIS_API_KEY": "PSsecretappkey", "KIS_API_SECRET": "topsecret", "KIS_SUBSCRIPTIONS": "H0STCNT0:005930",
            "REDIS_HOST": "r", "REDIS_PASSWORD": "redispw", "KAFKA_PROPERTY_SASL_PASSWORD": "kafkapw",
        ])
        let text = c.printable()
        for secret in ["PSsecretappkey", "topsecret", "redispw", "kafkapw"] { #expect(!text.contains(secret), "\(secret)") }
        #expect(text.contains("KIS_API_KEY=*** (sha256:"))
        #expect(text.contains("kafka: sasl.password=***"))
        #expect(text.contains("KIS_SUBSCRIPTIONS=H0STCNT0:005930"))
    }
}
