import Foundation
import IngestCore
import Testing

@Suite struct RedisClientTests {
    @Test func setGetExpire() throws {
        let redis = try RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: try LocalServices.redisPort))
        let key = "kis-test:\(UUID().uuidString)"
        #expect(try redis.command(["SET", key, "값 with spaces\r\n", "EX", "60"]) == .status("OK"))
        #expect(try redis.command(["GET", key]) == .string("값 with spaces\r\n"))
        if case .integer(let ttl) = try redis.command(["TTL", key]) { #expect(ttl > 0 && ttl <= 60) } else { Issue.record("TTL") }
        #expect(try redis.command(["DEL", key]) == .integer(1))
        #expect(try redis.command(["GET", key]) == .null)
        if case .error(let e) = try redis.command(["NOSUCHCOMMAND"]) { #expect(e.contains("unknown command")) } else { Issue.record("no error") }
    }

    @Test func unreachableRedisIsNamed() {
        do {
            _ = try RedisClient(configuration: RedisConfiguration(host: "127.0.0.1", port: 1, password: "s3cret-pw"))
            Issue.record("connected to port 1")
        } catch {
            #expect(error.message.contains("127.0.0.1:1"))
            #expect(error.message.contains("REDIS_HOST"))
            #expect(!error.message.contains("s3cret-pw"))
        }
    }
}

@Suite struct SQLiteDatabaseTests {
    @Test func realFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kis-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.sqlite").path
        do {
            let db = try SQLiteDatabase(path: path)
            #expect(try db.query("PRAGMA journal_mode=WAL") == [[.text("wal")]])
            try db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, ns INTEGER NOT NULL, body TEXT, raw BLOB)")
            let insert = try db.prepare("INSERT INTO t (ns, body, raw) VALUES (?, ?, ?)")
            try db.execute("BEGIN")
            for i in 0..<100 { try insert.run([.integer(Int64(i) * 1_000_000_007), .text("프레임 \(i)"), .blob([UInt8(i), 0, 255])]) }
            try db.execute("COMMIT")
        }
        let db = try SQLiteDatabase(path: path, readOnly: true)
        #expect(try db.query("SELECT count(*), max(ns) FROM t") == [[.integer(100), .integer(99 * 1_000_000_007)]])
        #expect(try db.query("SELECT body, raw FROM t WHERE seq = ?", [.integer(8)]) == [[.text("프레임 7"), .blob([7, 0, 255])]])
        #expect(throws: SQLiteError.self) { try db.execute("INSERT INTO t (ns) VALUES (1)") }
        do {
            _ = try db.query("SELECT nope FROM t")
            Issue.record("bad SQL accepted")
        } catch {
            #expect(error.message.contains("no such column: nope"))
            #expect(error.message.contains(path))
        }
    }
}
