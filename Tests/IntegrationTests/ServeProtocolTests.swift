import Foundation
import IngestCore
import Synchronization
import Testing

/// A bare KIS client, written from KIS's documentation, against serve mode: the OPSP codes.
@Suite(.serialized) struct ServeProtocolTests {
    final class Inbox: Sendable {
        let messages = Mutex<[String]>([])
        func add(_ s: String) { messages.withLock { $0.append($0.isEmpty ? s : s) } }
        var all: [String] { messages.withLock { $0 } }
    }

    func approvalKey(_ serve: ServeProcess, app: String) async throws -> String {
        let r = try await HTTPClient.post(try Endpoint(serve.base), path: "/oauth2/Approval",
                                          json: "{\"grant_type\":\"client_credentials\",\"appkey\":\"\(app)\",\"secretkey\":\"s\"}")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])
        return try #require(o["approval_key"] as? String)
    }

    @Test func opspCodes() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(in: dir)
        let key = try await approvalKey(serve, app: "PSprotocol")
        let inbox = Inbox()
        let ws = try await WebSocketConnection.connect(to: try Endpoint(serve.ws), onText: { t, _ in inbox.add(t) }, onClose: { _ in })
        func code(_ text: String) -> String? { (try? ControlMessage.parse(text))?.code }
        // Unknown approval key.
        ws.send(Subscription(trID: "H0STCNT0", trKey: "005930").request(approvalKey: "nope"))
        // 41 registrations succeed, the 42nd is refused, a duplicate is ALREADY IN SUBSCRIBE.
        for i in 0..<42 { ws.send(Subscription(trID: "H0STCNT0", trKey: String(format: "%06d", i)).request(approvalKey: key)) }
        ws.send(Subscription(trID: "H0STCNT0", trKey: "000000").request(approvalKey: key))
        ws.send(Subscription(trID: "H0STCNT0", trKey: "000001").request(approvalKey: key, subscribe: false))
        ws.send(Subscription(trID: "H0STCNT0", trKey: "999999").request(approvalKey: key, subscribe: false))
        ws.send("{not json")
        #expect(try await waitUntil(10) { inbox.all.count >= 47 })
        let codes = inbox.all.compactMap(code)
        #expect(codes.first == "OPSP0011")
        #expect(codes.filter { $0 == "OPSP0000" }.count == 41)
        #expect(codes.contains("OPSP0008"))
        #expect(codes.contains("OPSP0002"))
        #expect(codes.contains("OPSP0001"))
        #expect(codes.contains("OPSP0003"))
        #expect(codes.contains("OPSP9999"))
        let ack = try #require(inbox.all.compactMap { try? ControlMessage.parse($0) }.first { $0.code == "OPSP0000" })
        #expect(ack.aesKey?.count == 32 && ack.aesIV?.count == 16)

        // A second session with the same app key: ALREADY IN USE.
        let second = Inbox()
        let ws2 = try await WebSocketConnection.connect(to: try Endpoint(serve.ws), onText: { t, _ in second.add(t) }, onClose: { _ in })
        ws2.send(Subscription(trID: "H0STASP0", trKey: "005930").request(approvalKey: try await approvalKey(serve, app: "PSprotocol")))
        #expect(try await waitUntil(5) { second.all.contains { code($0) == "OPSP8996" } })
        ws.close()
        ws2.close()
    }

    @Test func tokenRateLimitAndShapes() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(in: dir)
        let rest = KISRestClient(base: try Endpoint(serve.base))
        let c = KISCredentials(appKey: "PStoken", appSecret: "secret")
        let t = try await rest.issueToken(c)
        #expect(t.token.count > 100)
        #expect(t.expiresAt > wallClockNanoseconds() + 23 * 3600 * 1_000_000_000)
        do {
            _ = try await rest.issueToken(c)
            Issue.record("a second token within a minute was issued")
        } catch {
            #expect(error.code == "EGW00133")
            #expect(error.status == 403)
            #expect(error.isRateLimited)
        }
        do {
            _ = try await rest.issueToken(KISCredentials(appKey: "", appSecret: "x"))
            Issue.record("an empty app key was accepted")
        } catch {
            #expect(error.code == "EGW00103")
        }
        #expect(KISRestClient.parseKST("2023-12-22 08:16:59") == 1_703_200_619_000_000_000)
    }

    /// Two credential stores (two daemons) sharing Redis issue one token between them, and one survives Redis
    /// being unreachable on its in-memory copy.
    @Test func sharedTokenCache() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let serve = try ServeProcess(in: dir)
        let redis = RedisConfiguration(host: "127.0.0.1", port: try LocalServices.redisPort)
        let c = KISCredentials(appKey: "PSshared\(UUID().uuidString.prefix(6))", appSecret: "secret")
        let rest = KISRestClient(base: try Endpoint(serve.base))
        let a = CredentialStore(credentials: c, rest: rest, redis: redis)
        let b = CredentialStore(credentials: c, rest: rest, redis: redis)
        async let ta = a.accessToken()
        async let tb = b.accessToken()
        let (x, y) = try await (ta, tb)
        #expect(x == y)
        #expect(try await serve.int("tokens_issued") == 1)
        #expect(try await serve.int("tokens_refused") == 0)
        #expect(a.snapshot.tokensIssued + b.snapshot.tokensIssued == 1)
        // A third store finds it in Redis without asking KIS.
        let third = CredentialStore(credentials: c, rest: rest, redis: redis)
        #expect(try await third.accessToken() == x)
        #expect(try await serve.int("tokens_issued") == 1)
        // Redis unreachable: approval keys still work from KIS and memory, errors are counted.
        let offline = CredentialStore(credentials: c, rest: rest, redis: RedisConfiguration(host: "127.0.0.1", port: 1))
        let k1 = try await offline.approvalKey()
        let k2 = try await offline.approvalKey()
        #expect(k1 == k2)
        #expect(offline.snapshot.redisErrors >= 1)
        #expect(offline.snapshot.approvalKeysIssued == 1)
    }
}
