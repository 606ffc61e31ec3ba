import Foundation
import Testing

@testable import IngestCore

func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kis-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

func info(_ start: Int64 = 1_753_833_600_000_000_000) -> SessionInfo {
    SessionInfo(startedAt: start, sourceURL: "test:recording", subscriptions: ["H0STCNT0:005930"],
                toolVersion: "test", host: "testhost", appKeyFingerprint: Secrets.fingerprint("PSabcdefappkey"))
}

@Suite struct RecordingTests {
    static let approvalKey = "a2585daf-8c09-4587-9fce-8ab893123456"

    @Test func roundTripWithMaskingAndMetadata() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("r.sqlite").path
        let recorder = try SessionRecorder(configuration: RecorderConfiguration(path: path, batchSize: 7), session: info())
        let t0: Int64 = 1_753_833_600_000_000_000
        let subscribe = "{\"header\":{\"approval_key\":\"\(Self.approvalKey)\",\"custtype\":\"P\",\"tr_type\":\"1\",\"content-type\":\"utf-8\"},\"body\":{\"input\":{\"tr_id\":\"H0STCNT0\",\"tr_key\":\"005930\"}}}"
        recorder.record(RecordedMessage(receivedAt: t0 + 1, kind: .connect, trID: nil, body: "{\"url\":\"ws://x\"}"))
        recorder.record(RecordedMessage(receivedAt: t0 + 2, kind: .subscribe, trID: "H0STCNT0", body: subscribe))
        var bodies: [String] = []
        for i in 0..<50 {
            let body = "0|H0STCNT0|001|005930^0930\(String(i % 60).leftPadded(to: 2))^71900^프레임\(i)"
            bodies.append(body)
            recorder.record(RecordedMessage(receivedAt: t0 + 10 + Int64(i), kind: .data, trID: "H0STCNT0", body: body))
        }
        let summary = recorder.close(endedAt: t0 + 100, reason: "test done")
        #expect(summary.rows == 54)  // start + connect + subscribe + 50 + stop
        #expect(summary.files == [path])

        let reader = try RecordingReader(path: path)
        let rows = try reader.all()
        #expect(rows.map(\.seq) == Array(1...54))
        #expect(rows.first?.kind == .start)
        #expect(rows.last?.kind == .stop)
        #expect(rows.last?.body == "{\"reason\":\"test done\"}")
        #expect(rows[2].kind == .subscribe)
        #expect(!rows[2].body.contains(Self.approvalKey))
        #expect(rows[2].body.contains("\"approval_key\":\"***\""))
        #expect(rows.filter { $0.kind == .data }.map(\.body) == bodies)
        #expect(rows.map(\.receivedAt) == rows.map(\.receivedAt).sorted())
        let s = try #require(reader.sessions.first)
        #expect(s.sourceURL == "test:recording")
        #expect(s.subscriptions == "[\"H0STCNT0:005930\"]")
        #expect(s.endedAt == t0 + 100)
        #expect(s.endReason == "test done")
        #expect(s.appKeyFingerprint == Secrets.fingerprint("PSabcdefappkey"))
        #expect(s.appKeyFingerprint?.contains("PSabcdef") == false)
        #expect(try reader.integrityProblems().isEmpty)
        let db = try SQLiteDatabase(path: path, readOnly: true)
        #expect(try db.query("PRAGMA user_version") == [[.integer(2)]])
        #expect(try db.query("PRAGMA journal_mode") == [[.text("wal")]])
        #expect(try db.query("SELECT direction, kind FROM messages_readable WHERE seq = 3") == [[.text("out"), .text("subscribe")]])
        // Nothing in the whole file contains the secret.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(bytes.range(of: Data(Self.approvalKey.utf8)) == nil)
    }

    @Test func batchesCommitByCount() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("r.sqlite").path
        let recorder = try SessionRecorder(configuration: RecorderConfiguration(path: path, batchSize: 10, batchInterval: nil), session: info())
        for i in 0..<25 { recorder.record(RecordedMessage(receivedAt: Int64(i), kind: .data, trID: "X", body: "0|X|001|\(i)")) }
        // 26 rows queued (with the start marker): two full batches are committed, six wait.
        var committed: Int64 = 0
        for _ in 0..<100 {
            committed = try RecordingReader(path: path).extent().rows
            if committed >= 20 { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        Thread.sleep(forTimeInterval: 0.2)
        #expect(try RecordingReader(path: path).extent().rows == 20)
        #expect(recorder.close(endedAt: 100, reason: "x").rows == 27)
        #expect(try RecordingReader(path: path).extent().rows == 27)
    }

    @Test func batchesCommitByAge() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("r.sqlite").path
        let recorder = try SessionRecorder(configuration: RecorderConfiguration(path: path, batchSize: 1000, batchInterval: .milliseconds(50)), session: info())
        for i in 0..<5 { recorder.record(RecordedMessage(receivedAt: Int64(i), kind: .data, trID: "X", body: "0|X|001|\(i)")) }
        Thread.sleep(forTimeInterval: 0.4)
        #expect(try RecordingReader(path: path).extent().rows == 6)
        recorder.close(endedAt: 10, reason: "x")
    }

    /// The WAL is copied into the main file while recording (by the checkpoint thread), not only when the file closes.
    @Test func theWALIsCheckpointedWhileRecording() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("w.sqlite").path
        let recorder = try SessionRecorder(
            configuration: RecorderConfiguration(path: path, batchSize: 1000, batchInterval: nil, maxPendingBeforeWaiting: 10_000),
            session: info())
        let body = String(repeating: "0|H0STCNT0|001|005930^093000^71900^", count: 9)
        // About 26 MB of blocks; record() waits while 10 000 rows are pending, so at least 23 MB are committed below,
        // past the 16 MiB after which the writer asks for a checkpoint.
        for i in 0..<80_000 { recorder.record(RecordedMessage(receivedAt: Int64(i), kind: .data, trID: "H0STCNT0", body: body)) }
        var mainFile = 0
        for _ in 0..<200 {
            mainFile = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            if mainFile > 8 << 20 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(mainFile > 8 << 20, "the main file holds \(mainFile) bytes while recording: nothing was checkpointed")
        let summary = recorder.close(endedAt: 100_000, reason: "test")
        #expect(summary.rows == 80_002)
        #expect(try RecordingReader(path: path).extent().rows == 80_002)
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        #expect(wal == 0, "close leaves the WAL empty")
    }

    @Test func rotationChainsFiles() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("day.sqlite").path
        let recorder = try SessionRecorder(
            configuration: RecorderConfiguration(path: path, batchSize: 100, batchInterval: nil, rotateBytes: 64 * 1024),
            session: info())
        let payload = String(repeating: "7", count: 300)
        for i in 0..<2000 { recorder.record(RecordedMessage(receivedAt: Int64(i) * 1000, kind: .data, trID: "H0STCNT0", body: "0|H0STCNT0|001|\(payload)\(i)")) }
        let summary = recorder.close(endedAt: 3_000_000, reason: "end")
        #expect(summary.files.count > 3)
        #expect(summary.files[1] == dir.appendingPathComponent("day.0001.sqlite").path)
        let reader = try RecordingReader(path: path)
        #expect(reader.paths == summary.files)
        let rows = try reader.all()
        #expect(rows.count == 2002)
        #expect(rows.map(\.seq) == Array(1...2002))
        #expect(reader.sessions.first?.nextFile == "day.0001.sqlite")
        #expect(reader.sessions.first?.endReason == "rotated")
        #expect(reader.sessions[1].previousFile == "day.sqlite")
        #expect(reader.sessions.last?.endReason == "end")
        // Reading from the middle of the chain starts there.
        #expect(try RecordingReader(path: summary.files[1]).all().first?.seq ?? 0 > 1)
    }

    @Test func refusesToOverwrite() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("r.sqlite").path
        FileManager.default.createFile(atPath: path, contents: Data("x".utf8))
        do {
            _ = try SessionRecorder(configuration: RecorderConfiguration(path: path), session: info())
            Issue.record("overwrote an existing file")
        } catch {
            #expect(error.message.contains("already exists"))
        }
    }

    @Test func refusesFilesThatAreNotRecordingsOrTooNew() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = dir.appendingPathComponent("t.sqlite").path
        FileManager.default.createFile(atPath: text, contents: Data("0|H0STCNT0|001|x\n".utf8))
        #expect(throws: RecordingError.self) { try RecordingReader(path: text) }
        let path = dir.appendingPathComponent("r.sqlite").path
        try SessionRecorder(configuration: RecorderConfiguration(path: path), session: info()).close(endedAt: 1, reason: "x")
        try SQLiteDatabase(path: path).execute("PRAGMA user_version = 99")
        do {
            _ = try RecordingReader(path: path)
            Issue.record("read a version-99 file")
        } catch {
            #expect(error.message.contains("version 99"))
            #expect(error.message.contains("reads up to version 2"))
        }
        #expect(throws: RecordingError.self) { try RecordingReader(path: dir.appendingPathComponent("missing.sqlite").path) }
    }

    @Test func maskingCoversEverySecretField() {
        let text = #"{"appkey":"PSKEY123","appsecret" : "SECRET456","secretkey":"SECRET456","token":"tok\"en","access_token":"eyJ","approval_key":"ak"}"#
        let masked = Secrets.maskJSON(text)
        for secret in ["PSKEY123", "SECRET456", "tok\\\"en", "eyJ", "\"ak\""] { #expect(!masked.contains(secret), "\(secret)") }
        #expect(masked.contains(#""appkey":"***""#))
        #expect(Secrets.maskJSON("0|H0STCNT0|001|a^b") == "0|H0STCNT0|001|a^b")
        #expect(Secrets.maskJSON(#"{"approval_key":"#) == #"{"approval_key":"#)
    }

    @Test func inboundClassification() {
        #expect(RecordedKind.inbound("0|H0STCNT0|001|x") == (.data, "H0STCNT0"))
        #expect(RecordedKind.inbound("1|H0STCNI0|001|x") == (.encrypted, "H0STCNI0"))
        #expect(RecordedKind.inbound(#"{"header":{"tr_id":"PINGPONG","datetime":"20230502221924"}}"#) == (.pingPong, "PINGPONG"))
        #expect(RecordedKind.inbound(#"{"header":{"tr_id":"H0STASP0"},"body":{"msg_cd":"OPSP0000"}}"#) == (.control, "H0STASP0"))
        #expect(RecordedKind.inbound("{oops") == (.control, nil))
        #expect(RecordedKind.inbound("<html>") == (.unknown, nil))
        #expect(RecordedKind.inbound("") == (.unknown, nil))
    }
}

/// The replay's read-ahead (`forEachPrefetched`): the same rows in the same order as `forEach`, and errors from
/// either side end it cleanly.
@Suite struct PrefetchedReadingTests {
    func recording(rows: Int) throws -> (URL, String) {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("p.sqlite").path
        let recorder = try SessionRecorder(configuration: RecorderConfiguration(path: path, batchSize: 97, batchInterval: nil), session: info())
        for i in 0..<rows {
            recorder.record(RecordedMessage(receivedAt: 1_000 + Int64(i), kind: .data, trID: "H0STCNT0", body: "0|H0STCNT0|001|\(i)"))
        }
        recorder.close(endedAt: 1_000 + Int64(rows), reason: "test")
        return (dir, path)
    }

    @Test func sameRowsInTheSameOrder() throws {
        let (dir, path) = try recording(rows: 5_000)
        defer { try? FileManager.default.removeItem(at: dir) }
        let reader = try RecordingReader(path: path)
        let expected = try reader.all()
        #expect(expected.count == 5_002)
        for (batch, depth) in [(1, 1), (7, 2), (512, 4), (10_000, 1)] {
            var seen: [RecordedMessage] = []
            try reader.forEachPrefetched(batch: batch, depth: depth) { seen.append($0.message) }
            #expect(seen == expected, "batch \(batch), depth \(depth)")
        }
        var windowed: [RecordedMessage] = []
        try reader.forEachPrefetched(from: 2_000, to: 3_000, batch: 64) { windowed.append($0.message) }
        #expect(windowed == (try reader.all(from: 2_000, to: 3_000)))
        #expect(windowed.count == 1_000)
    }

    /// Bodies that are not plain ASCII: the borrowed bytes spell exactly what `forEach`'s `String` holds, and a body
    /// that is not valid UTF-8 (a damaged or hand-edited file) is repaired the same way on every path.
    @Test func nonASCIIAndInvalidUTF8BodiesReadAlikeOnEveryPath() throws {
        let (dir, path) = try recording(rows: 300)
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            let db = try SQLiteDatabase(path: path)
            try editMessage(db, seq: 10, field: .body, to: "'{\"msg1\":\"정상처리 되었습니다.\"}'")
            try editMessage(db, seq: 20, field: .body, to: "CAST(X'307C4830535443\(String(repeating: "4E", count: 9))FF7C' AS TEXT)")
            try editMessage(db, seq: 30, field: .body, to: "CAST(X'C3' AS TEXT)")
        }
        let reader = try RecordingReader(path: path)
        let expected = try reader.all()
        #expect(expected[9].body == "{\"msg1\":\"정상처리 되었습니다.\"}")
        #expect(expected[19].body.hasSuffix("\u{FFFD}|"))
        #expect(expected[29].body == "\u{FFFD}")
        var direct: [RecordedMessage] = []
        try reader.forEachRow { direct.append($0.message) }
        #expect(direct == expected)
        var rawBytes: [[UInt8]] = []
        try reader.forEachPrefetched(batch: 7, depth: 2) { rawBytes.append(Array($0.body)) }
        let wanted = expected.map { Array($0.body.utf8) }
        let firstDifferent = zip(rawBytes, wanted).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(rawBytes.count == wanted.count && firstDifferent == nil, "first row that differs: \(firstDifferent.map { "\($0 + 1)" } ?? "none")")
    }

    struct Enough: Error {}

    @Test func aThrowingBodyStopsTheReader() throws {
        let (dir, path) = try recording(rows: 20_000)
        defer { try? FileManager.default.removeItem(at: dir) }
        let reader = try RecordingReader(path: path)
        var seen = 0
        #expect(throws: Enough.self) {
            try reader.forEachPrefetched(batch: 16, depth: 2) { _ in
                seen += 1
                if seen == 100 { throw Enough() }
            }
        }
        #expect(seen == 100)
    }

    @Test func aReadingErrorArrivesAfterTheRowsBeforeIt() throws {
        let (dir, path) = try recording(rows: 1_000)
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            let db = try SQLiteDatabase(path: path)
            try editMessage(db, seq: 601, field: .kind, to: "99")
        }
        let reader = try RecordingReader(path: path)
        var seen: [Int64] = []
        #expect {
            try reader.forEachPrefetched(batch: 64, depth: 2) { seen.append($0.seq) }
        } throws: { error in
            "\(error)".contains("row 601 has unknown kind 99")
        }
        #expect(seen == Array(1...600))
    }
}
