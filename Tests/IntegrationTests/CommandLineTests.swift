import Foundation
import IngestCore
import Testing

@Suite(.serialized) struct CommandLineTests {
    /// The committed fixture is exactly what scripts/gen-fixtures generates.
    @Test func fixtureRegeneratesByteIdentically() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("session.sqlite").path
        let script = Binaries.repositoryRoot.appendingPathComponent("scripts/gen-fixtures")
        let r = try Binaries.run(script, [out], environment: ["KIS_BIN_DIR": try Binaries.directory.path])
        #expect(r.status == 0, "\(r.stderr)")
        let fresh = try Data(contentsOf: URL(fileURLWithPath: out))
        let committed = try Data(contentsOf: URL(fileURLWithPath: fixtureSession))
        #expect(fresh.count == committed.count)
        // A Bool, not `fresh == committed` inside #expect: on failure that would diff two megabytes element by element.
        let identical = fresh == committed
        let firstDifference = identical ? nil : zip(fresh, committed).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(identical, "first differing byte at \(firstDifference.map(String.init) ?? "the end of the shorter file")")
        #expect(committed.count < 4 << 20)
    }

    /// `--speed 1` and `--speed 10` over short windows take the expected wall time, and the reported pacing error
    /// stays small.
    @Test(arguments: [(1.0, Int64(3)), (10.0, Int64(20))])
    func pacing(speed: Double, seconds: Int64) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let summaryPath = dir.appendingPathComponent("summary.json").path
        let from: Int64 = 1_753_833_630_000_000_000  // 09:00:30 KST, outside the bursts
        let started = ContinuousClock.now
        let r = try Binaries.run(try Binaries.url("ingest-replay"), [
            fixtureSession, "--speed", String(speed), "--from", String(from), "--to", String(from + seconds * 1_000_000_000),
            "--topic-prefix", LocalServices.uniquePrefix("pacing"), "--summary-json", summaryPath,
        ], environment: ["KAFKA_BROKERS": try LocalServices.kafkaBrokers])
        let wall = (ContinuousClock.now - started).nanosecondsDouble / 1e9
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: summaryPath))) as! [String: Any]
        let pacing = try #require(json["pacing"] as? [String: Any])
        let p50 = try #require(pacing["p50_ns"] as? Int)
        let p99 = try #require(pacing["p99_ns"] as? Int)
        let max = try #require(pacing["max_ns"] as? Int)
        let first = try #require(json["first_recorded_ns"] as? Int)
        let last = try #require(json["last_recorded_ns"] as? Int)
        let expected = Double(last - first) / 1e9 / speed
        print(String(format: "pacing --speed %.0f: %.3f s recorded → expected %.3f s, wall %.3f s; error p50 %.3f ms p99 %.3f ms max %.3f ms over %d frames",
                     speed, Double(last - first) / 1e9, expected, wall, Double(p50) / 1e6, Double(p99) / 1e6, Double(max) / 1e6, pacing["samples"] as? Int ?? 0))
        #expect(wall >= expected)
        #expect(wall < expected + 2.5, "process start-up, replay and flush")
        #expect(p99 < 5_000_000, "p99 schedule error below 5 ms even on a loaded CI machine")
        #expect((pacing["samples"] as? Int ?? 0) > 10)
    }

    /// import → export round trip, with and without receive times.
    @Test func importExport() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.txt")
        try """
            # comment
            {"header":{"tr_id":"PINGPONG","datetime":"20250730090000"}}
            2025-07-30T00:00:05.5Z\t0|H0STCNT0|001|a^b
            0|H0STASP0|001|c^d

            1753833610000000000\t<junk>
            """.write(to: input, atomically: true, encoding: .utf8)
        let rec = dir.appendingPathComponent("r.sqlite").path
        let imp = try Binaries.run(try Binaries.url("ingest-record"), ["import", input.path, "--out", rec, "--start", "2025-07-30T09:00:00+09:00", "--rate", "10"])
        #expect(imp.status == 0, "\(imp.stderr)")
        let rows = try RecordingReader(path: rec).all().filter { $0.kind.direction == .inbound }
        #expect(rows.map(\.receivedAt) == [1_753_833_600_000_000_000, 1_753_833_605_500_000_000, 1_753_833_605_600_000_000, 1_753_833_610_000_000_000])
        #expect(rows.map(\.kind) == [.pingPong, .data, .data, .unknown])
        let exp = try Binaries.run(try Binaries.url("ingest-record"), ["export", rec])
        #expect(exp.status == 0)
        let lines = exp.stdout.split(separator: "\n")
        #expect(lines.count == 6)  // start, 4 messages, stop
        #expect(lines[2] == #"{"seq":3,"recv_ns":1753833605500000000,"recv_time":"2025-07-30T00:00:05.500000000Z","direction":"in","kind":"data","tr_id":"H0STCNT0","message":"0|H0STCNT0|001|a^b"}"#)
        // The recording decodes like the text it came from.
        let fromText = try Binaries.run(try Binaries.url("ingest-replay"), ["decode", input.path])
        let fromRecording = try Binaries.run(try Binaries.url("ingest-replay"), ["decode", rec])
        #expect(fromText.status == 0 && fromRecording.status == 0)
        #expect(fromText.stdout == fromRecording.stdout)
        #expect(fromText.stdout.split(separator: "\n").count == 3)
    }

    /// `LOG_FORMAT=json` lines in the seed's shape; KIS unreachable → retries run out → exit 3, secrets nowhere.
    @Test func jsonLogsAndRetriesExhausted() throws {
        let r = try Binaries.run(try Binaries.url("ingestd"), [], environment: [
            "LOG_FORMAT": "json", "SERVICE_NAME": "kis-test", "ENVIRONMENT": "ci", "KIS_API_KEY": "PSjsonSECRETappkey",
            "KIS_API_SECRET": "json-secret-value", "KIS_SUBSCRIPTIONS": "H0STCNT0:005930", "KIS_WEBSOCKET_URL": "ws://127.0.0.1:1/x",
            "KIS_API_URL": "http://127.0.0.1:1", "KIS_RECONNECT_RETRIES": "2", "KIS_RECONNECT_DELAY": "100ms",
            "METRICS_ADDRESS": "off", "KAFKA_BROKERS": try LocalServices.kafkaBrokers,
        ])
        #expect(r.status == 3, "\(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count >= 5)
        for line in lines {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            #expect(o["service"] as? String == "kis-test")
            #expect(o["env"] as? String == "ci")
            #expect(["info", "notice", "warning", "error", "critical"].contains(o["level"] as? String ?? ""))
            #expect((o["time"] as? String)?.hasSuffix("Z") == true)
            #expect(o["message"] is String)
        }
        #expect(r.stderr.contains("gave up after 2 reconnect attempts"))
        #expect(!r.stderr.contains("PSjsonSECRETappkey") && !r.stderr.contains("json-secret-value"))
        let bad = try Binaries.run(try Binaries.url("ingestd"), [], environment: ["LOG_LEVEL": "loud"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("LOG_LEVEL=\"loud\""))
    }

    /// Bad arguments get one clear line and a non-zero exit, never a crash.
    @Test func badArguments() throws {
        let replay = try Binaries.url("ingest-replay")
        for (args, needle) in [
            (["/nonexistent.sqlite"], "does not exist"),
            ([fixtureSession, "--speed", "0"], "--speed must be a positive number"),
            ([fixtureSession, "--speed", "2", "--max"], "exclude each other"),
            ([fixtureSession, "--from", "yesterday", "--dry-run"], "--from \"yesterday\""),
            (["decode", "--recv-time", "soon", "-"], "--recv-time \"soon\""),
        ] {
            let r = try Binaries.run(replay, args)
            #expect(r.status != 0, "\(args)")
            #expect(r.stderr.contains(needle), "\(args): \(r.stderr)")
        }
        let record = try Binaries.url("ingest-record")
        let r = try Binaries.run(record, ["synth", "--out", fixtureSession])
        #expect(r.status != 0)
        #expect(r.stderr.contains("already exists"))
    }
}
