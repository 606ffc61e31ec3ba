import Foundation
import Testing

@testable import IngestCore

@Suite struct AppKeysTests {
    @Test func keysFromVariablesAndFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("creds-\(UUID().uuidString).txt")
        try "# two more keys\nPSfilekeyA secretA\n\n  PSfilekeyB\tsecretB  \n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let keys = try AppKeys.load([
            "KIS_API_KEY": "PSmain", "KIS_API_SECRET": "m", "KIS_API_KEY_10": "PSten", "KIS_API_SECRET_10": "t",
            "KIS_API_KEY_2": "PStwo", "KIS_API_SECRET_2": "w", "KIS_CREDENTIALS_FILE": file.path,
        ])
        #expect(keys.map(\.appKey) == ["PSmain", "PStwo", "PSten", "PSfilekeyA", "PSfilekeyB"])
        #expect(keys.map(\.appSecret) == ["m", "w", "t", "secretA", "secretB"])
        // Only indexed keys is fine too.
        #expect(try AppKeys.load(["KIS_API_KEY_1": "a", "KIS_API_SECRET_1": "b"]).count == 1)
    }

    @Test func badKeysAreNamedNeverShown() throws {
        func message(_ env: [String: String]) -> String {
            do { _ = try AppKeys.load(env); return "" } catch { return error.message }
        }
        #expect(message(["KIS_API_KEY_3": "PSsecretvalue"]).hasPrefix("KIS_API_SECRET_3 is not set but KIS_API_KEY_3 is"))
        #expect(message(["KIS_API_SECRET": "x"]).hasPrefix("KIS_API_KEY is not set but KIS_API_SECRET is"))
        #expect(message([:]).hasPrefix("KIS_API_KEY is not set: it is required"))
        #expect(message(["KIS_API_KEY_x": "v"]).contains("KIS_API_KEY_x: expected KIS_API_KEY_<number>"))
        let dup = message(["KIS_API_KEY": "PSsame", "KIS_API_SECRET": "a", "KIS_API_KEY_2": "PSsame", "KIS_API_SECRET_2": "b"])
        #expect(dup.contains("is the same as the one in KIS_API_KEY"))
        #expect(!dup.contains("PSsame"))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("creds-\(UUID().uuidString).txt")
        try "PSonlykey\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let bad = message(["KIS_CREDENTIALS_FILE": file.path])
        #expect(bad.contains("\(file.path):1: expected two fields"))
        #expect(!bad.contains("PSonlykey"))
        #expect(message(["KIS_CREDENTIALS_FILE": "/nonexistent/creds"]).contains("cannot be read"))
    }

    @Test func spreadKeepsSymbolsTogetherAndBalances() throws {
        let subs = try Subscription.parseList("H0STCNT0:A|B|C|D|E,H0STASP0:A|B|C|D|E,H0STCNI0:USER")
        let plan = try AppKeys.spread(subs, sessions: 3, limit: 5)
        #expect(plan.map(\.count).reduce(0, +) == subs.count)
        #expect(Set(plan.flatMap { $0 }) == Set(subs))
        #expect(plan[0].contains(Subscription(trID: "H0STCNI0", trKey: "USER")))
        for session in plan {
            #expect(session.count <= 5)
            // A symbol's trade and book registrations share a session.
            for s in session where s.trID == "H0STCNT0" { #expect(session.contains(Subscription(trID: "H0STASP0", trKey: s.trKey))) }
        }
        #expect(plan.map(\.count).max()! - plan.map(\.count).min()! <= 2, "balanced: \(plan.map(\.count))")

        // Fewer symbols than keys: some sessions stay empty; one key takes up to its limit.
        #expect(try AppKeys.spread(try Subscription.parseList("H0STCNT0:A"), sessions: 3, limit: 41).map(\.count) == [1, 0, 0])
        // A group larger than the limit is split.
        let wide = try AppKeys.spread(try Subscription.parseList("H0STCNT0:A,H0STASP0:A,H0STMKO0:A"), sessions: 2, limit: 2)
        #expect(wide.map(\.count) == [2, 1])
    }

    @Test func spreadRefusesWhatDoesNotFit() throws {
        let keys = (0..<83).map { String(format: "%06d", $0) }.joined(separator: "|")
        do {
            _ = try AppKeys.spread(try Subscription.parseList("H0STCNT0:\(keys)"), sessions: 2, limit: 41)
            Issue.record("83 registrations fit into 2 × 41")
        } catch {
            #expect(error.message == "KIS_SUBSCRIPTIONS has 83 registrations; 2 app keys allow 82 (41 per session, trades + books + notices together): remove 1 or add 1 app key (KIS_API_KEY_<n>/KIS_API_SECRET_<n> or KIS_CREDENTIALS_FILE)")
        }
        #expect(throws: ConfigurationError.self) { try AppKeys.spread(try Subscription.parseList("H0STCNI0:A|B|C"), sessions: 3, limit: 2) }
    }

    @Test func configurationShardsAndPrintsFingerprintsOnly() throws {
        let c = try DaemonConfiguration(environment: [
            "KIS_API_KEY": "PSfirstSECRET", "KIS_API_SECRET": "s1", "KIS_API_KEY_2": "PSsecondSECRET", "KIS_API_SECRET_2": "s2",
            "KIS_API_KEY_3": "PSthirdSECRET", "KIS_API_SECRET_3": "s3",
            "KIS_SUBSCRIPTIONS": "H0STCNT0:005930|000660,H0STASP0:005930|000660", "KIS_MAX_REGISTRATIONS": "2",
        ])
        #expect(c.shards.count == 2, "two symbols, three keys: one key idle")
        #expect(c.shards.map(\.index) == [0, 1])
        #expect(c.shards.map(\.subscriptions.count) == [2, 2])
        let printed = c.printable()
        #expect(printed.contains("app keys=3: " + c.credentials.map(\.fingerprint).joined(separator: ", ")))
        #expect(printed.contains("session 2 (\(c.credentials[1].fingerprint))=2 registrations: H0STCNT0:000660,H0STASP0:000660"))
        #expect(!printed.contains("PSfirstSECRET") && !printed.contains("PSsecondSECRET") && !printed.contains("=s2"))
        #expect(throws: ConfigurationError.self) {
            try DaemonConfiguration(environment: ["KIS_API_KEY": "k", "KIS_API_SECRET": "s", "KIS_SUBSCRIPTIONS": "H0STCNT0:1", "KIS_MAX_REGISTRATIONS": "42"])
        }
    }

    @Test func shardRecordingNames() {
        #expect(LiveSession.shardRecordingPath("/d/day.sqlite", keyIndex: 1) == "/d/day.key2.sqlite")
        #expect(LiveSession.shardRecordingPath("day", keyIndex: 2).hasSuffix("/day.key3.sqlite"))
    }
}

@Suite struct LatencyHistogramTests {
    @Test func quantilesWithinOneSixteenth() {
        var h = LatencyHistogram()
        for v in 1...100_000 { h.record(nanoseconds: Int64(v) * 10) }  // 10 ns … 1 ms, uniform
        #expect(h.count == 100_000)
        for (q, exact) in [(0.5, 500_000.0), (0.99, 990_000.0), (0.999, 999_000.0)] {
            let got = Double(h.quantile(q))
            #expect(got >= exact && got <= exact * (1 + 1.0 / 16), "q\(q): \(got) vs \(exact)")
        }
        #expect(h.quantile(1) == 1_000_000)
        #expect(h.maxNanoseconds == 1_000_000)
        #expect(h.countAtOrBelow(15) == 1)
        var other = LatencyHistogram()
        other.record(nanoseconds: 5_000_000_000)
        h.merge(other)
        #expect(h.count == 100_001 && h.maxNanoseconds == 5_000_000_000)
        #expect(h.quantile(0.5) < 600_000)
    }

    @Test func bucketBoundsAreMonotonicAndContainTheirValues() {
        var last: Int64 = -1
        for i in 0..<LatencyHistogram.bucketCount - 1 {
            let upper = LatencyHistogram.upperBound(i)
            #expect(upper > last)
            #expect(LatencyHistogram.index(upper) == i)
            #expect(LatencyHistogram.index(last + 1) == i)
            last = upper
        }
    }

    @Test func prometheusExposition() {
        var h = LatencyHistogram()
        h.record(nanoseconds: 3_000)
        h.record(nanoseconds: 2_000_000)
        var m = PrometheusText()
        m.add(histogram: "x_seconds", "help", h, [("a", "b")])
        let text = m.text
        #expect(text.contains("# TYPE x_seconds histogram"))
        #expect(text.contains("x_seconds_bucket{a=\"b\",le=\"5e-06\"} 1"))
        #expect(text.contains("x_seconds_bucket{a=\"b\",le=\"0.0025\"} 2"))
        #expect(text.contains("x_seconds_bucket{a=\"b\",le=\"+Inf\"} 2"))
        #expect(text.contains("x_seconds_count{a=\"b\"} 2"))
        #expect(text.contains("x_seconds_sum{a=\"b\"} 0.002003"))
    }
}
