import Foundation

/// A row of the `sessions` table.
public struct RecordedSession: Sendable, Equatable {
    public var id: Int64
    public var startedAt: Int64
    public var endedAt: Int64?
    public var endReason: String?
    public var sourceURL: String
    public var subscriptions: String
    public var toolVersion: String
    public var host: String
    public var appKeyFingerprint: String?
    public var previousFile: String?
    public var nextFile: String?
}

/// Reads a recording (and the files chained to it by rotation) in sequence order.
public final class RecordingReader {
    /// The files of the chain, first to last, that exist.
    public let paths: [String]
    public let sessions: [RecordedSession]

    /// Opens a recording; throws a `RecordingError` naming the file when it is not a recording or is newer than this
    /// reader understands.
    public init(path: String, followChain: Bool = true) throws(RecordingError) {
        var paths = [path]
        var sessions: [RecordedSession] = []
        var current = path
        while true {
            let db = try Self.open(current)
            let s = try Self.sessions(db, current)
            sessions += s
            guard followChain, let next = s.last?.nextFile else { break }
            let nextPath = URL(fileURLWithPath: current).deletingLastPathComponent().appendingPathComponent(next).path
            guard FileManager.default.fileExists(atPath: nextPath), !paths.contains(nextPath) else { break }
            paths.append(nextPath)
            current = nextPath
        }
        self.paths = paths
        self.sessions = sessions
    }

    /// `true` when the file starts with SQLite's header.
    public static func isRecording(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 16)) ?? Data()
        return head == Data("SQLite format 3\0".utf8)
    }

    static func open(_ path: String) throws(RecordingError) -> SQLiteDatabase {
        guard FileManager.default.fileExists(atPath: path) else {
            throw RecordingError("recording \(path) does not exist")
        }
        guard isRecording(path: path) else {
            throw RecordingError("\(path) is not an SQLite recording (no SQLite header)")
        }
        let db: SQLiteDatabase
        do {
            db = try SQLiteDatabase(path: path, readOnly: true)
        } catch {
            throw RecordingError("cannot open recording \(path): \(error.message)")
        }
        let version: Int64
        do {
            guard case .integer(let v) = try db.query("PRAGMA user_version").first?.first else {
                throw RecordingError("\(path): cannot read the schema version")
            }
            version = v
        } catch let e as RecordingError {
            throw e
        } catch {
            throw RecordingError("cannot read recording \(path): \(error)")
        }
        guard version >= 1 else {
            throw RecordingError("\(path) is an SQLite file but not a kis-ingest recording (user_version 0)")
        }
        guard version <= RecordingSchema.version else {
            throw RecordingError("\(path) has recording schema version \(version); this kis-ingest reads up to version \(RecordingSchema.version): upgrade kis-ingest")
        }
        return db
    }

    static func sessions(_ db: SQLiteDatabase, _ path: String) throws(RecordingError) -> [RecordedSession] {
        do {
            return try db.query("""
                SELECT id, started_ns, ended_ns, end_reason, source_url, subscriptions, tool_version, host,
                       app_key_fingerprint, previous_file, next_file FROM sessions ORDER BY id
                """).map { r in
                func int(_ v: SQLiteValue) -> Int64? { if case .integer(let i) = v { i } else { nil } }
                func text(_ v: SQLiteValue) -> String? { if case .text(let t) = v { t } else { nil } }
                return RecordedSession(
                    id: int(r[0]) ?? 0, startedAt: int(r[1]) ?? 0, endedAt: int(r[2]), endReason: text(r[3]),
                    sourceURL: text(r[4]) ?? "", subscriptions: text(r[5]) ?? "[]", toolVersion: text(r[6]) ?? "",
                    host: text(r[7]) ?? "", appKeyFingerprint: text(r[8]), previousFile: text(r[9]), nextFile: text(r[10]))
            }
        } catch {
            throw RecordingError("cannot read the sessions of \(path): \(error.message)")
        }
    }

    /// Calls `body` for every row in sequence order across the chain, optionally limited to a receive-time window
    /// (`from` inclusive, `to` exclusive).
    public func forEach(
        from: Int64? = nil, to: Int64? = nil, _ body: (RecordedMessage) throws -> Void
    ) throws {
        try Self.forEach(paths: paths, from: from, to: to, body)
    }

    /// `forEach` with the reading (SQLite, row decoding) on a thread of its own, at most `depth` batches of `batch`
    /// rows ahead, while `body` runs on the calling thread, in sequence order. An error on either side stops both and
    /// is rethrown here. For replay flat out, where reading is a third of the work.
    public func forEachPrefetched(
        from: Int64? = nil, to: Int64? = nil, batch: Int = 512, depth: Int = 4,
        _ body: (RecordedMessage) throws -> Void
    ) throws {
        let queue = PrefetchQueue(depth: depth)
        let paths = paths
        let batch = max(1, batch)
        let thread = Thread {
            var current: [RecordedMessage] = []
            current.reserveCapacity(batch)
            do {
                try Self.forEach(paths: paths, from: from, to: to) { row in
                    current.append(row)
                    if current.count == batch {
                        guard queue.put(current) else { throw PrefetchQueue.Stopped() }
                        current = []
                        current.reserveCapacity(batch)
                    }
                }
                if !current.isEmpty { _ = queue.put(current) }
                queue.finish(nil)
            } catch is PrefetchQueue.Stopped {
                queue.finish(nil)
            } catch {
                // The rows read before the error are delivered first, as `forEach` would have.
                if !current.isEmpty { _ = queue.put(current) }
                queue.finish(error)
            }
        }
        thread.name = "replay-reader"
        thread.start()
        defer { queue.stopAndWait() }
        while let rows = try queue.take() {
            for row in rows { try body(row) }
        }
    }

    private static func forEach(
        paths: [String], from: Int64?, to: Int64?, _ body: (RecordedMessage) throws -> Void
    ) throws {
        for path in paths {
            let db = try Self.open(path)
            let statement = try db.prepare(
                "SELECT seq, session_id, recv_ns, kind, tr_id, body FROM messages WHERE recv_ns >= ? AND recv_ns < ? ORDER BY seq")
            try statement.bind([.integer(from ?? .min), .integer(to ?? .max)])
            while try statement.step() {
                guard case .integer(let seq) = statement.column(0), case .integer(let session) = statement.column(1),
                    case .integer(let ns) = statement.column(2), case .integer(let kindCode) = statement.column(3)
                else { throw RecordingError("\(path): a row has an unexpected type") }
                guard let kind = RecordedKind(rawValue: Int(kindCode)) else {
                    throw RecordingError("\(path): row \(seq) has unknown kind \(kindCode)")
                }
                let trID: String? = if case .text(let t) = statement.column(4) { t } else { nil }
                guard case .text(let text) = statement.column(5) else { throw RecordingError("\(path): row \(seq) has no body") }
                try body(RecordedMessage(seq: seq, sessionID: session, receivedAt: ns, kind: kind, trID: trID, body: text))
            }
        }
    }

    /// All rows (for tests and small recordings).
    public func all(from: Int64? = nil, to: Int64? = nil) throws -> [RecordedMessage] {
        var rows: [RecordedMessage] = []
        try forEach(from: from, to: to) { rows.append($0) }
        return rows
    }

    /// Row count and receive-time range of the chain.
    public func extent() throws -> (rows: Int64, first: Int64?, last: Int64?) {
        var rows: Int64 = 0
        var first: Int64?
        var last: Int64?
        for path in paths {
            let db = try Self.open(path)
            let r = try db.query("SELECT count(*), min(recv_ns), max(recv_ns) FROM messages")[0]
            if case .integer(let n) = r[0] { rows += n }
            if case .integer(let a) = r[1] { first = min(first ?? a, a) }
            if case .integer(let b) = r[2] { last = max(last ?? b, b) }
        }
        return (rows, first, last)
    }

    /// Runs SQLite's integrity check on every file; returns the problems found (empty when sound).
    public func integrityProblems() throws -> [String] {
        var problems: [String] = []
        for path in paths {
            let db = try Self.open(path)
            for row in try db.query("PRAGMA integrity_check") {
                if case .text(let t) = row.first, t != "ok" { problems.append("\(path): \(t)") }
            }
        }
        return problems
    }
}

/// The bounded hand-over of `forEachPrefetched`: batches of rows from the reading thread to the caller.
final class PrefetchQueue: @unchecked Sendable {
    // @unchecked: guarded by `condition`.
    struct Stopped: Error {}
    private let condition = NSCondition()
    private let depth: Int
    private var batches: [[RecordedMessage]] = []
    private var finished = false
    private var failure: (any Error)?
    private var stopped = false

    init(depth: Int) { self.depth = max(1, depth) }

    /// Reading side: waits for room; `false` once the caller has stopped.
    func put(_ rows: [RecordedMessage]) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while batches.count >= depth && !stopped { condition.wait() }
        guard !stopped else { return false }
        batches.append(rows)
        condition.broadcast()
        return true
    }

    /// Reading side: no more batches (with the error that ended the reading, if any).
    func finish(_ error: (any Error)?) {
        condition.lock()
        finished = true
        failure = error
        condition.broadcast()
        condition.unlock()
    }

    /// Caller side: the next batch; `nil` at the end; throws the reading side's error.
    func take() throws -> [RecordedMessage]? {
        condition.lock()
        defer { condition.unlock() }
        while batches.isEmpty && !finished { condition.wait() }
        if !batches.isEmpty {
            condition.broadcast()
            return batches.removeFirst()
        }
        if let failure { throw failure }
        return nil
    }

    /// Caller side, always at the end: tells the reading side to stop and waits until it has.
    func stopAndWait() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }
}
