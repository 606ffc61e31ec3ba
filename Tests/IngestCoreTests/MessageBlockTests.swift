import Foundation
import TestSupport
import Testing

@testable import IngestCore

/// Which element of a stored message `editMessage` changes.
enum BlockField: Int { case offset = 0, kind = 1, trID = 2, body = 3 }

/// Edits one message of a format-2 recording in place with SQLite's own JSON functions, as a hand edit would.
/// `sqlValue` is an SQL expression.
func editMessage(_ db: SQLiteDatabase, seq: Int64, field: BlockField, to sqlValue: String) throws {
    try db.execute("""
        UPDATE message_blocks SET frames = json_replace(frames, '$[' || (\(seq) - first_seq) || '][\(field.rawValue)]', \(sqlValue))
        WHERE \(seq) BETWEEN first_seq AND last_seq
        """)
}

/// The `message_rows` view (SQLite's JSON reading of the blocks), in sequence order.
func viewRows(_ path: String) throws -> [RecordedMessage] {
    let db = try SQLiteDatabase(path: path, readOnly: true)
    return try db.query("SELECT seq, session_id, recv_ns, kind, tr_id, body FROM message_rows ORDER BY seq").map { r in
        func int(_ v: SQLiteValue) -> Int64 { if case .integer(let i) = v { i } else { -1 } }
        func text(_ v: SQLiteValue) -> String? { if case .text(let t) = v { t } else { nil } }
        return RecordedMessage(
            seq: int(r[0]), sessionID: int(r[1]), receivedAt: int(r[2]), kind: RecordedKind(rawValue: Int(int(r[3]))) ?? .unknown,
            trID: text(r[4]), body: text(r[5]) ?? "<not text>")
    }
}

@Suite struct MessageBlockTests {
    static let awkwardBodies: [String] = [
        "0|H0STCNT0|001|005930^093000^71900", "", "\"", "\\", "a\"b\\c\"", "line\nbreak\ttab\rreturn",
        "\u{01}\u{08}\u{0C}\u{1F}\u{7F}", "{\"msg1\":\"정상처리 되었습니다.\"}", "😀 and ✓", "/slash/", "\\u0041 is not an escape here",
        String(repeating: "x\"", count: 3_000), String(repeating: "^", count: 10_000),
    ]

    /// What the recorder writes reads back exactly, through our decoder and through SQLite's JSON functions alike
    /// (the `message_rows` view), whatever a body holds.
    @Test func awkwardBodiesRoundTripAndSQLiteReadsThemAlike() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("b.sqlite").path
        let recorder = try SessionRecorder(configuration: RecorderConfiguration(path: path, batchSize: 5, batchInterval: nil), session: info())
        var sent: [RecordedMessage] = []
        for (i, body) in Self.awkwardBodies.enumerated() {
            // Receive times out of order on purpose (markers carry their own times): offsets go negative too.
            let m = RecordedMessage(receivedAt: 5_000 - Int64(i * 37 % 11) * 100, kind: i % 3 == 0 ? .control : .data,
                                    trID: i % 4 == 0 ? nil : "H0STCNT0", body: body)
            recorder.record(m)
            sent.append(m)
        }
        recorder.close(endedAt: 9_000, reason: "done")
        let rows = try RecordingReader(path: path).all()
        let data = Array(rows.dropFirst().dropLast())
        #expect(data.count == sent.count)
        for (got, want) in zip(data, sent) {
            #expect(got.body == want.body)
            #expect(got.trID == want.trID)
            #expect(got.kind == want.kind)
            #expect(got.receivedAt == want.receivedAt)
        }
        #expect(rows.map(\.seq) == Array(1...Int64(sent.count + 2)))
        let view = try viewRows(path)
        #expect(view.count == rows.count)
        let firstDifferent = zip(view, rows).first { $0.0 != $0.1 }
        #expect(firstDifferent == nil, "our reading and SQLite's differ at seq \(firstDifferent?.0.seq ?? 0)")
        // Three blocks were written (fifteen rows in batches of five), none holds a raw control character.
        let db = try SQLiteDatabase(path: path, readOnly: true)
        #expect(try db.query("SELECT count(*) FROM message_blocks") == [[.integer(3)]])
        #expect(try db.query("SELECT count(*) FROM message_blocks WHERE NOT json_valid(frames)") == [[.integer(0)]])
        #expect(try db.query("SELECT count(*) FROM messages") == [[.integer(0)]])
    }

    /// A block written by someone else (whitespace, every JSON escape, surrogate pairs): we read it as SQLite does.
    @Test func handWrittenBlocksReadAsSQLiteReadsThem() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("h.sqlite").path
        try SessionRecorder(configuration: RecorderConfiguration(path: path, batchSize: 1), session: info(100)).close(endedAt: 200, reason: "x")
        let frames = #"""
             [ [ 5 , 1 , "H0STCNT0" , "0|H0STCNT0|001|caf\u00e9^\u00E9" ] ,
               [-3,3,null,"{\"a\":\"\/\b\f\n\r\t\\\ud83d\ude00\uD55C\"}"],
               [0,5,"X\u0059Z",""] ]
            """#
        let db = try SQLiteDatabase(path: path)
        try db.prepare("INSERT INTO message_blocks VALUES (10, 12, 1, 1000, 1005, ?)").run([.text(frames)])
        let ours = try RecordingReader(path: path).all().filter { $0.seq >= 10 }
        #expect(ours.map(\.seq) == [10, 11, 12])
        #expect(ours.map(\.receivedAt) == [1005, 997, 1000])
        #expect(ours[0].body == "0|H0STCNT0|001|café^é")
        #expect(ours[1].body == "{\"a\":\"/\u{08}\u{0C}\n\r\t\\😀한\"}")
        #expect(ours[1].trID == nil)
        #expect(ours[2].trID == "XYZ")
        #expect(ours[2].kind == .unknown)
        #expect(try viewRows(path).filter { $0.seq >= 10 } == ours)
    }

    @Test func loneSurrogatesBecomeReplacementCharacters() throws {
        var scratch: [UInt8] = []
        var bodies: [String] = []
        let text = Array(#"[[0,1,null,"a\ud800b"],[0,1,null,"\udc00"],[0,1,null,"\ud800\u0041"]]"#.utf8)
        try text.withUnsafeBufferPointer { t in
            try MessageBlock.decode(t, scratch: &scratch) { bodies.append(String(decoding: $0.body, as: UTF8.self)) }
        }
        #expect(bodies == ["a\u{FFFD}b", "\u{FFFD}", "\u{FFFD}A"])
    }

    /// A damaged block is refused with the file, the block and the byte; the rows before it are delivered first.
    @Test(arguments: [
        ("'[[0,1,null,\"x\"]'", "no , or ] after message 0"),
        ("'[[0,1,null,\"x\"],[0,1,null,\"unterminated]]'", "a string closed by"),
        ("'[[0,\"1\",null,\"x\"]]'", "message 0's kind (an integer)"),
        ("'[[0,1,null,\"bad \\q escape\"]]'", "a JSON escape"),
        ("'[[99999999999999999999,1,null,\"x\"]]'", "fits 64 bits"),
        ("'[[0,1,null,\"x\"]] trailing'", "the end of the block"),
        ("'[[0,1,null,\"x\"],[0,1,null,\"y\"]]'", "holds 2 messages instead of 1"),
        ("X'5B5D'", "has no frames text"),
    ])
    func damagedBlocksAreRefusedWithThePlace(frames: String, expected: String) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("d.sqlite").path
        let recorder = try SessionRecorder(configuration: RecorderConfiguration(path: path, batchSize: 10, batchInterval: nil), session: info())
        for i in 0..<29 { recorder.record(RecordedMessage(receivedAt: 1_000 + Int64(i), kind: .data, trID: "X", body: "0|X|001|\(i)")) }
        recorder.close(endedAt: 2_000, reason: "x")
        do {
            let db = try SQLiteDatabase(path: path)
            // The third block (seq 21–30) becomes one message, damaged.
            try db.execute("PRAGMA ignore_check_constraints = 1")
            try db.execute("UPDATE message_blocks SET last_seq = 21, frames = \(frames) WHERE first_seq = 21")
            try db.execute("DELETE FROM message_blocks WHERE first_seq > 21")
        }
        var seen: [Int64] = []
        do {
            try RecordingReader(path: path).forEachPrefetched(batch: 4, depth: 2) { seen.append($0.seq) }
            Issue.record("a damaged block was read without an error")
        } catch {
            #expect("\(error)".contains("the block of seq 21–21"), "\(error)")
            #expect("\(error)".contains(expected), "\(error)")
            #expect("\(error)".contains(path))
        }
        #expect(Array(seen.prefix(20)) == Array(1...20))
    }

    /// Format 1 files (a row per message, written by kis-ingest 0.3 and before) read exactly like the same messages
    /// in format 2: the committed fixture is format 1 and stays so.
    @Test func formatOneAndFormatTwoReadAlike() throws {
        let v1 = Corpus.root.appendingPathComponent("fixtures/session-small.v1.sqlite").path
        let v1Reader = try RecordingReader(path: v1)
        let db1 = try SQLiteDatabase(path: v1, readOnly: true)
        #expect(try db1.query("PRAGMA user_version") == [[.integer(1)]])
        let rows = try v1Reader.all()
        #expect(rows.count > 1_000)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let v2 = dir.appendingPathComponent("v2.sqlite").path
        let session = try #require(v1Reader.sessions.first)
        let file = try RecordingFile.create(
            path: v2, session: SessionInfo(startedAt: session.startedAt, sourceURL: session.sourceURL, subscriptions: []), previous: nil)
        var start = 0
        while start < rows.count {
            try file.append(rows[start..<min(start + 333, rows.count)])
            start += 333
        }
        file.finish(endedAt: session.endedAt ?? 0, reason: "copy", next: nil)
        let v2Reader = try RecordingReader(path: v2)
        let copied = try v2Reader.all()
        #expect(copied.count == rows.count)
        // The committed format-2 fixture is the same generated session: it reads the same too.
        let committed = try RecordingReader(path: Corpus.root.appendingPathComponent("fixtures/session-small.sqlite").path).all()
        #expect(committed.count == rows.count)
        let firstCommittedDifferent: Int64? = zip(committed, rows).first { (a: RecordedMessage, b: RecordedMessage) in a != b }?.0.seq
        #expect(firstCommittedDifferent == nil)
        let firstCopyDifferent: Int64? = zip(copied, rows).first { (a: RecordedMessage, b: RecordedMessage) in a != b }?.0.seq
        #expect(firstCopyDifferent == nil)
        let e1 = try v1Reader.extent()
        let e2 = try v2Reader.extent()
        #expect(e1.rows == e2.rows && e1.first == e2.first && e1.last == e2.last)
        let window = (rows[100].receivedAt, rows[900].receivedAt)
        #expect(try v2Reader.all(from: window.0, to: window.1) == v1Reader.all(from: window.0, to: window.1))
        // The readable view says the same in both formats.
        let query = "SELECT seq, recv_time, direction, kind, tr_id, body FROM messages_readable ORDER BY seq"
        let a = try db1.query(query)
        let b = try SQLiteDatabase(path: v2, readOnly: true).query(query)
        #expect(a.count == b.count)
        let firstViewDifferent: [SQLiteValue]? = zip(a, b).first { (x: [SQLiteValue], y: [SQLiteValue]) in x != y }?.0
        #expect(firstViewDifferent == nil)
    }
}
