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
        try Self.readRows(paths: paths, from: from, to: to) { row in try body(row.message) }
    }

    /// `forEach` without a `String` per row: each row's body is borrowed from SQLite for the call. `fromSeq` skips
    /// the rows before that sequence number (by index: a resumed reading does not read what it skips).
    public func forEachRow(
        from: Int64? = nil, to: Int64? = nil, fromSeq: Int64 = .min, _ body: (RecordedRowView) throws -> Void
    ) throws {
        try Self.readRows(paths: paths, from: from, to: to, fromSeq: fromSeq, body)
    }

    /// `forEachRow` with the reading (SQLite, row decoding) on a thread of its own, at most `depth` batches of `batch`
    /// rows ahead, while `body` runs on the calling thread, in sequence order. A batch keeps its bodies in one byte
    /// buffer: two allocations per batch instead of one per row, all made and freed in batches. An error on either
    /// side stops both and is rethrown here. For replay flat out, where reading is a third of the work.
    public func forEachPrefetched(
        from: Int64? = nil, to: Int64? = nil, fromSeq: Int64 = .min, batch: Int = 512, depth: Int = 4,
        _ body: (RecordedRowView) throws -> Void
    ) throws {
        let queue = PrefetchQueue<RowBatch>(depth: depth)
        let paths = paths
        let batch = max(1, batch)
        let thread = Thread {
            BackgroundThreads.nameCurrentThread("replay-reader")
            var current = RowBatch(rows: batch, bytes: 0)
            do {
                try Self.readRows(paths: paths, from: from, to: to, fromSeq: fromSeq) { row in
                    current.append(row)
                    if current.rows.count == batch {
                        let size = current.bytes.count
                        guard queue.put(current) else { throw Stopped() }
                        // A batch the caller is done with, emptied, its storage kept: allocating and freeing the
                        // buffers of every batch (hundreds of KB, freed on the other thread) made glibc consolidate
                        // its free lists on the caller's thread, the one that produces (measured: 8 % of it).
                        current = queue.reused() ?? RowBatch(rows: batch, bytes: size)
                    }
                }
                if !current.rows.isEmpty { _ = queue.put(current) }
                queue.finish(nil)
            } catch is Stopped {
                queue.finish(nil)
            } catch {
                // The rows read before the error are delivered first, as `forEachRow` would have.
                if !current.rows.isEmpty { _ = queue.put(current) }
                queue.finish(error)
            }
        }
        thread.start()
        defer { queue.stopAndWait() }
        while var rows = try queue.take() {
            try rows.bytes.withUnsafeBufferPointer { all in
                for row in rows.rows {
                    try body(
                        RecordedRowView(
                            seq: row.seq, sessionID: row.sessionID, receivedAt: row.receivedAt, kind: row.kind,
                            trID: row.trID, body: UnsafeBufferPointer(rebasing: all[row.start..<(row.start + row.count)])))
                }
            }
            rows.clear()
            queue.recycle(rows)
        }
    }

    private struct Stopped: Error {}

    /// The one reading loop: every row in sequence order across the chain, its body borrowed from SQLite for the call
    /// and always valid UTF-8 (a body that is not is repaired exactly as `String(decoding:as:)` repairs it). A file
    /// holds rows of `messages` (format 1) or blocks of `message_blocks` (format 2); both are read, rows first.
    private static func readRows(
        paths: [String], from: Int64?, to: Int64?, fromSeq: Int64 = .min, _ body: (RecordedRowView) throws -> Void
    ) throws {
        let from = from ?? .min
        let to = to ?? .max
        var scratch: [UInt8] = []
        for path in paths {
            let db = try Self.open(path)
            let statement = try db.prepare(
                "SELECT seq, session_id, recv_ns, kind, tr_id, body FROM messages WHERE recv_ns >= ? AND recv_ns < ? AND seq >= ? ORDER BY seq")
            try statement.bind(from, at: 1)
            try statement.bind(to, at: 2)
            try statement.bind(fromSeq, at: 3)
            while try statement.step() {
                guard let seq = statement.integer(0), let session = statement.integer(1),
                    let ns = statement.integer(2), let kindCode = statement.integer(3)
                else { throw RecordingError("\(path): a row has an unexpected type") }
                let trID = statement.withText(4) { String(decoding: $0, as: UTF8.self) }
                let read: Void? = try statement.withText(5) { bytes in
                    try deliver(path, seq, session, ns, kindCode, trID, bytes, body)
                }
                guard read != nil else { throw RecordingError("\(path): row \(seq) has no body") }
            }
            guard try hasBlocks(db) else { continue }
            // The metadata by statement; each block's text by incremental I/O into one reused buffer.
            let blocks = try db.prepare(
                "SELECT first_seq, last_seq, session_id, min_ns, typeof(frames) FROM message_blocks WHERE max_ns >= ? AND min_ns < ? AND last_seq >= ? ORDER BY first_seq")
            try blocks.bind(from, at: 1)
            try blocks.bind(to, at: 2)
            try blocks.bind(fromSeq, at: 3)
            let frames = SQLiteValueReader(database: db, table: "message_blocks", column: "frames")
            var text: [UInt8] = []
            while try blocks.step() {
                guard let firstSeq = blocks.integer(0), let lastSeq = blocks.integer(1), let session = blocks.integer(2),
                    let minNs = blocks.integer(3)
                else { throw RecordingError("\(path): a block has an unexpected type") }
                let place = "\(path): the block of seq \(firstSeq)–\(lastSeq)"
                guard blocks.withText(4, { $0.elementsEqual("text".utf8) }) == true else {
                    throw RecordingError("\(place) has no frames text")
                }
                let length = try frames.read(rowID: firstSeq, into: &text)
                let count: Int
                do {
                    count = try text.withUnsafeBufferPointer { all in
                        try MessageBlock.decode(UnsafeBufferPointer(rebasing: all[..<length]), scratch: &scratch) { frame in
                            let ns = minNs &+ frame.offsetNs
                            guard ns >= from && ns < to && firstSeq &+ Int64(frame.index) >= fromSeq else { return }
                            let trID = frame.trID.map { String(decoding: $0, as: UTF8.self) }
                            try deliver(path, firstSeq &+ Int64(frame.index), session, ns, frame.kind, trID, frame.body, body)
                        }
                    }
                } catch let malformed as MessageBlock.Malformed {
                    throw RecordingError(
                        "\(place) is damaged: its frames JSON has no \(malformed.expected) at byte \(malformed.offset); restore the file from a copy, or read the other blocks with sqlite3")
                }
                guard Int64(count) == lastSeq &- firstSeq &+ 1 else {
                    throw RecordingError("\(place) holds \(count) messages instead of \(lastSeq &- firstSeq &+ 1): the file was damaged or edited")
                }
            }
        }
    }

    /// Hands one row to `body`, its kind checked and its body repaired when it is not valid UTF-8.
    @inline(__always)
    private static func deliver(
        _ path: String, _ seq: Int64, _ session: Int64, _ ns: Int64, _ kindCode: Int64, _ trID: String?,
        _ bytes: UnsafeBufferPointer<UInt8>, _ body: (RecordedRowView) throws -> Void
    ) throws {
        guard let kind = RecordedKind(rawValue: Int(truncatingIfNeeded: kindCode)) else {
            throw RecordingError("\(path): row \(seq) has unknown kind \(kindCode)")
        }
        if SWAR.isASCII(bytes) {
            try body(RecordedRowView(seq: seq, sessionID: session, receivedAt: ns, kind: kind, trID: trID, body: bytes))
        } else {
            var text = String(decoding: bytes, as: UTF8.self)
            try text.withUTF8 {
                try body(RecordedRowView(seq: seq, sessionID: session, receivedAt: ns, kind: kind, trID: trID, body: $0))
            }
        }
    }

    /// `true` when the file has format 2's `message_blocks` table.
    private static func hasBlocks(_ db: SQLiteDatabase) throws -> Bool {
        try !db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'message_blocks'").isEmpty
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
            var queries = ["SELECT count(*), min(recv_ns), max(recv_ns) FROM messages"]
            if try Self.hasBlocks(db) {
                queries.append("SELECT sum(last_seq - first_seq + 1), min(min_ns), max(max_ns) FROM message_blocks")
            }
            for query in queries {
                let r = try db.query(query)[0]
                if case .integer(let n) = r[0] { rows += n }
                if case .integer(let a) = r[1] { first = min(first ?? a, a) }
                if case .integer(let b) = r[2] { last = max(last ?? b, b) }
            }
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

/// One row of a recording, its body borrowed: valid only during the call that receives it (`message` makes an owned
/// copy). What replay reads flat out.
public struct RecordedRowView {
    public let seq: Int64
    public let sessionID: Int64
    public let receivedAt: Int64
    public let kind: RecordedKind
    public let trID: String?
    /// The body's bytes, always valid UTF-8.
    public let body: UnsafeBufferPointer<UInt8>

    /// The row as an owned `RecordedMessage`.
    public var message: RecordedMessage {
        RecordedMessage(
            seq: seq, sessionID: sessionID, receivedAt: receivedAt, kind: kind, trID: trID,
            body: String(decoding: body, as: UTF8.self))
    }
}

/// Rows read ahead: the fixed columns of each, and every body in one byte buffer.
struct RowBatch: Sendable {
    struct Row: Sendable {
        let seq: Int64
        let sessionID: Int64
        let receivedAt: Int64
        let kind: RecordedKind
        let trID: String?
        let start: Int
        let count: Int
    }

    var rows: [Row] = []
    var bytes: [UInt8] = []

    init(rows: Int, bytes: Int) {
        self.rows.reserveCapacity(rows)
        self.bytes.reserveCapacity(bytes)
    }

    /// Empties the batch for reuse, keeping its storage.
    mutating func clear() {
        rows.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
    }

    var isEmpty: Bool { rows.isEmpty }

    mutating func append(_ row: RecordedRowView) {
        rows.append(
            Row(
                seq: row.seq, sessionID: row.sessionID, receivedAt: row.receivedAt, kind: row.kind, trID: row.trID,
                start: bytes.count, count: row.body.count))
        bytes.append(contentsOf: row.body)
    }
}

/// The bounded hand-over of `forEachPrefetched`: batches from the reading thread to the caller.
final class PrefetchQueue<Batch: Sendable>: @unchecked Sendable {
    // @unchecked: guarded by `condition`.
    private let condition = NSCondition()
    private let depth: Int
    private var batches: [Batch] = []
    /// Batches the caller is done with, for the reading side to fill again (at most `depth`).
    private var spare: [Batch] = []
    private var finished = false
    private var failure: (any Error)?
    private var stopped = false

    init(depth: Int) { self.depth = max(1, depth) }

    /// Reading side: waits for room; `false` once the caller has stopped.
    func put(_ rows: Batch) -> Bool {
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

    /// Caller side: hands a batch it is done with back for reuse (kept only while fewer than `depth` are spare).
    func recycle(_ batch: Batch) {
        condition.lock()
        if spare.count < depth { spare.append(batch) }
        condition.unlock()
    }

    /// Reading side: a batch handed back by `recycle`, if any.
    func reused() -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        return spare.popLast()
    }

    /// Caller side: the next batch; `nil` at the end; throws the reading side's error.
    func take() throws -> Batch? {
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
