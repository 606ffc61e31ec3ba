import Foundation

/// What a recording says about the session it holds (the `sessions` table).
public struct SessionInfo: Sendable, Equatable {
    public var startedAt: Int64
    /// Where the messages came from (`ws://…`, `import:FILE`, `synth:seed=N`).
    public var sourceURL: String
    /// `TR:KEY` pairs subscribed.
    public var subscriptions: [String]
    public var toolVersion: String
    public var host: String
    /// `Secrets.fingerprint` of the app key, never the key.
    public var appKeyFingerprint: String?

    public init(startedAt: Int64, sourceURL: String, subscriptions: [String], toolVersion: String = KisIngest.version,
                host: String? = nil, appKeyFingerprint: String? = nil) {
        self.startedAt = startedAt
        self.sourceURL = sourceURL
        self.subscriptions = subscriptions
        self.toolVersion = toolVersion
        self.host = host ?? ProcessInfo.processInfo.hostName
        self.appKeyFingerprint = appKeyFingerprint
    }
}

/// How the recorder writes.
public struct RecorderConfiguration: Sendable {
    /// The recording file; must not exist yet. Rotated files are named `<stem>.0001.sqlite`, `<stem>.0002.sqlite`, ….
    public var path: String
    /// Rows per transaction. Environment/flag: `--batch-size`, default 1000.
    public var batchSize: Int
    /// A partial batch is committed once its oldest row is this old; `nil` commits by count only (used for
    /// generated sessions, whose files must be byte-identical run after run). Default 200 ms.
    public var batchInterval: Duration?
    /// Start a new, chained file once the current one reaches this many bytes.
    public var rotateBytes: Int64?
    /// Start a new, chained file once the current one spans this much recorded time.
    public var rotateInterval: Duration?
    /// When more than this many rows wait to be written, `record` waits (offline sources) instead of growing the
    /// queue; `nil` never waits (live sockets must not block).
    public var maxPendingBeforeWaiting: Int?
    /// How the writer and checkpoint threads are scheduled (`KIS_BACKGROUND_THREADS` in the live tools).
    public var backgroundThreads: BackgroundThreads

    public init(path: String, batchSize: Int = 1000, batchInterval: Duration? = .milliseconds(200),
                rotateBytes: Int64? = nil, rotateInterval: Duration? = nil, maxPendingBeforeWaiting: Int? = nil,
                backgroundThreads: BackgroundThreads = .normal) {
        self.path = path
        self.batchSize = max(1, batchSize)
        self.batchInterval = batchInterval
        self.rotateBytes = rotateBytes
        self.rotateInterval = rotateInterval
        self.maxPendingBeforeWaiting = maxPendingBeforeWaiting
        self.backgroundThreads = backgroundThreads
    }
}

/// What a closed recorder wrote.
public struct RecorderSummary: Sendable, Equatable {
    public var rows: Int64
    public var files: [String]
    public var writeErrors: Int
}

/// Writes a session into recording files: a sink any frame source can feed, from any thread.
///
/// `record` only appends to an in-memory queue (and assigns the sequence number); a writer thread commits batches
/// by count and by age, so a burst never blocks the socket. A `kill -9` loses at most the rows not yet committed:
/// the last partial batch. Outbound messages have their secrets masked before they are queued.
public final class SessionRecorder: RawMessageSink, @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `condition` or owned by the writer thread.
    private let configuration: RecorderConfiguration
    private let info: SessionInfo
    private let condition = NSCondition()
    private var pending: [RecordedMessage] = []
    /// Rows the writer has taken from `pending` and not yet committed (they count against the waiting limit).
    private var inFlight = 0
    private var oldestPendingSince: ContinuousClock.Instant?
    private var nextSeq: Int64 = 1
    private var closing = false
    private var finished = false
    private var writerError: String?
    private var writeErrors = 0
    private var rows: Int64 = 0
    private var files: [String] = []
    private let writerDone = DispatchSemaphore(value: 0)
    // Writer-thread state.
    private var file: RecordingFile!

    /// Creates the first file, writes the session row and a `start` marker, and starts the writer thread.
    public init(configuration: RecorderConfiguration, session: SessionInfo) throws(RecordingError) {
        self.configuration = configuration
        self.info = session
        if FileManager.default.fileExists(atPath: configuration.path) {
            throw RecordingError("\(configuration.path) already exists: choose another path or remove it (recordings are never overwritten)")
        }
        file = try RecordingFile.create(path: configuration.path, session: session, previous: nil,
                                        backgroundThreads: configuration.backgroundThreads)
        files = [configuration.path]
        record(RecordedMessage(receivedAt: session.startedAt, kind: .start, trID: nil,
                               body: "{\"source_url\":\(JSONText.quote(session.sourceURL)),\"tool\":\(JSONText.quote(session.toolVersion))}"))
        let thread = Thread { [self] in
            configuration.backgroundThreads.enterCurrentThread(name: "recorder-writer")
            writerLoop()
        }
        thread.start()
    }

    /// Queues one message. Outbound bodies are masked; markers and inbound messages are kept verbatim.
    public func record(_ message: RecordedMessage) {
        var m = message
        if m.kind.direction == .outbound { m.body = Secrets.maskJSON(m.body) }
        condition.lock()
        if let limit = configuration.maxPendingBeforeWaiting {
            while pending.count + inFlight >= limit && !finished { condition.wait() }
        }
        guard !finished else {
            condition.unlock()
            return
        }
        m.seq = nextSeq
        nextSeq += 1
        if pending.isEmpty { oldestPendingSince = .now }
        pending.append(m)
        if pending.count == configuration.batchSize { condition.broadcast() }
        condition.unlock()
    }

    /// Writes a `stop` marker, commits everything, records the end in the session row and closes the file.
    @discardableResult
    public func close(endedAt: Int64, reason: String) -> RecorderSummary {
        record(RecordedMessage(receivedAt: endedAt, kind: .stop, trID: nil, body: "{\"reason\":\(JSONText.quote(reason))}"))
        condition.lock()
        closing = true
        condition.broadcast()
        condition.unlock()
        writerDone.wait()
        file.finish(endedAt: endedAt, reason: reason, next: nil)
        condition.lock()
        defer { condition.unlock() }
        return RecorderSummary(rows: rows, files: files, writeErrors: writeErrors)
    }

    /// The last write error, if any (the recorder keeps the rows and retries with the next batch).
    public var lastError: String? {
        condition.lock()
        defer { condition.unlock() }
        return writerError
    }

    /// Takes every whole batch queued in one swap (so the queue never shifts; only a partial batch is moved back), and
    /// commits them in transactions of `batchSize` rows; a failed transaction puts its rows and the rest back at the
    /// front of the queue and is retried.
    private func writerLoop() {
        let batchSize = configuration.batchSize
        while true {
            condition.lock()
            // Whole batches are taken; a partial one only when it is old enough or the recorder is closing.
            var partialToo = false
            while true {
                if closing {
                    partialToo = true
                    break
                }
                if pending.count >= batchSize { break }
                if let interval = configuration.batchInterval, let since = oldestPendingSince, !pending.isEmpty {
                    let due = since + interval
                    if ContinuousClock.now >= due {
                        partialToo = true
                        break
                    }
                    let wait = ContinuousClock.now.duration(to: due)
                    condition.wait(until: Date(timeIntervalSinceNow: max(0.001, wait.nanosecondsDouble / 1e9)))
                } else {
                    condition.wait()
                }
            }
            let whole = partialToo ? pending.count : pending.count - pending.count % batchSize
            var taken: [RecordedMessage] = []
            swap(&taken, &pending)
            if whole < taken.count {
                pending.append(contentsOf: taken[whole...])
                taken.removeSubrange(whole...)
            }
            oldestPendingSince = pending.isEmpty ? nil : .now
            inFlight = taken.count
            let done = closing
            condition.unlock()

            var start = taken.startIndex
            var failed = false
            while start < taken.endIndex {
                let end = min(start + batchSize, taken.endIndex)
                do {
                    try file.append(taken[start..<end])
                    condition.lock()
                    inFlight -= end - start
                    rows += Int64(end - start)
                    condition.broadcast()
                    condition.unlock()
                    start = end
                    try rotateIfDue(lastReceivedAt: taken[end - 1].receivedAt)
                } catch {
                    condition.lock()
                    writeErrors += 1
                    writerError = "\(error)"
                    if !done, start < taken.endIndex {
                        pending.insert(contentsOf: taken[start...], at: 0)
                        oldestPendingSince = .now
                    }
                    inFlight = 0
                    condition.broadcast()
                    condition.unlock()
                    failed = true
                    break
                }
            }
            condition.lock()
            let finishedNow = done && (failed || pending.isEmpty)
            if finishedNow {
                finished = true
                condition.broadcast()
            }
            condition.unlock()
            if finishedNow { break }
            if failed { Thread.sleep(forTimeInterval: 0.1) }
        }
        writerDone.signal()
    }

    private func rotateIfDue(lastReceivedAt: Int64) throws {
        var due = false
        if let bytes = configuration.rotateBytes, file.sizeBytes >= bytes { due = true }
        if let interval = configuration.rotateInterval,
            lastReceivedAt - file.firstReceivedAt >= Int64(interval.nanosecondsDouble) { due = true }
        guard due else { return }
        let nextPath = Self.rotatedPath(configuration.path, index: files.count)
        let next = try RecordingFile.create(path: nextPath, session: info, previous: file.path,
                                            backgroundThreads: configuration.backgroundThreads)
        file.finish(endedAt: lastReceivedAt, reason: "rotated", next: nextPath)
        file = next
        condition.lock()
        files.append(nextPath)
        condition.unlock()
    }

    /// `dir/name.sqlite` → `dir/name.0001.sqlite` for index 1.
    static func rotatedPath(_ path: String, index: Int) -> String {
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension.isEmpty ? "sqlite" : url.pathExtension
        let stem = url.deletingPathExtension().path
        return "\(stem).\(String(index).leftPadded(to: 4)).\(ext)"
    }
}

/// One open recording file (writer side).
final class RecordingFile {
    let path: String
    let database: SQLiteDatabase
    let sessionID: Int64
    private let insert: SQLiteStatement
    private(set) var firstReceivedAt: Int64 = .max
    /// The JSON of the block being written, reused batch after batch.
    private var block: [UInt8] = []

    private let checkpointer: WALCheckpointer
    /// Block bytes committed since the checkpointer was last asked to run.
    private var sinceCheckpoint = 0

    private init(path: String, database: SQLiteDatabase, sessionID: Int64, backgroundThreads: BackgroundThreads) throws(SQLiteError) {
        self.path = path
        self.database = database
        self.sessionID = sessionID
        self.insert = try database.prepare(
            "INSERT INTO message_blocks (first_seq, last_seq, session_id, min_ns, max_ns, frames) VALUES (?, ?, ?, ?, ?, ?)")
        // Last: once started, its thread runs until `finish`.
        self.checkpointer = try WALCheckpointer(path: path, backgroundThreads: backgroundThreads)
    }

    static func create(path: String, session: SessionInfo, previous: String?, backgroundThreads: BackgroundThreads = .normal)
        throws(RecordingError) -> RecordingFile
    {
        do {
            let db = try SQLiteDatabase(path: path)
            // 16 KiB pages (set before anything is written). A block fills a chain of overflow pages whose last
            // page is partly empty, so big pages waste bytes; small ones cost a write call each. Measured with
            // `kis-bench recorder`: 4 KiB 240–250 k frames/s at 1.081× raw bytes, 16 KiB 310–375 k at 1.084×,
            // 64 KiB 300–340 k at 1.153×.
            try db.execute("PRAGMA page_size=16384")
            _ = try db.query("PRAGMA journal_mode=WAL")
            try db.execute("PRAGMA synchronous=NORMAL")
            // Checkpoints run on a thread of their own (`WALCheckpointer`): a checkpoint waits for two fsyncs, and
            // the writer waited for them (measured: 1.7 s of a 4.3 s run of 1 M frames in `fdatasync`). A WAL
            // that was checkpointed completely is cut back to 64 MiB when it starts over.
            _ = try db.query("PRAGMA wal_autocheckpoint=0")
            _ = try db.query("PRAGMA journal_size_limit=67108864")
            try db.execute("BEGIN")
            try db.execute(RecordingSchema.create)
            let kinds = try db.prepare("INSERT OR REPLACE INTO kinds (id, direction, name, meaning) VALUES (?, ?, ?, ?)")
            for row in RecordingSchema.kindRows { try kinds.run(row) }
            let subscriptions = "[" + session.subscriptions.map(JSONText.quote).joined(separator: ",") + "]"
            try db.prepare("""
                INSERT INTO sessions (started_ns, source_url, subscriptions, tool_version, host, app_key_fingerprint, previous_file)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """).run([
                    .integer(session.startedAt), .text(session.sourceURL), .text(subscriptions), .text(session.toolVersion),
                    .text(session.host), session.appKeyFingerprint.map { .text($0) } ?? .null,
                    previous.map { .text(URL(fileURLWithPath: $0).lastPathComponent) } ?? .null,
                ])
            let id = try db.query("SELECT last_insert_rowid()")
            try db.execute("PRAGMA user_version = \(RecordingSchema.version)")
            try db.execute("COMMIT")
            guard case .integer(let sessionID) = id.first?.first else { throw RecordingError("\(path): no session id") }
            return try RecordingFile(path: path, database: db, sessionID: sessionID, backgroundThreads: backgroundThreads)
        } catch let error as SQLiteError {
            throw RecordingError("cannot create recording \(path): \(error.message)")
        } catch let error as RecordingError {
            throw error
        } catch {
            throw RecordingError("cannot create recording \(path): \(error)")
        }
    }

    /// Commits a batch in one transaction, as one block (more only when its sequence numbers jump or it is huge).
    func append(_ batch: ArraySlice<RecordedMessage>) throws(SQLiteError) {
        guard let first = batch.first else { return }
        if firstReceivedAt == .max { firstReceivedAt = first.receivedAt }
        try database.execute("BEGIN")
        do {
            var written = 0
            var start = batch.startIndex
            while start < batch.endIndex {
                block.removeAll(keepingCapacity: true)
                let (count, minNs, maxNs) = MessageBlock.encode(batch[start...], into: &block)
                defer { insert.reset() }
                try insert.bind(batch[start].seq, at: 1)
                try insert.bind(batch[start + count - 1].seq, at: 2)
                try insert.bind(sessionID, at: 3)
                try insert.bind(minNs, at: 4)
                try insert.bind(maxNs, at: 5)
                try block.withUnsafeBufferPointer { bytes throws(SQLiteError) in
                    try insert.bind(borrowedText: bytes, at: 6)
                    while try insert.step() {}
                }
                start += count
                written += block.count
            }
            try database.execute("COMMIT")
            sinceCheckpoint += written
            if sinceCheckpoint >= WALCheckpointer.every {
                sinceCheckpoint = 0
                checkpointer.request(writer: database)
            }
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
    }

    var sizeBytes: Int64 {
        func pragma(_ name: String) -> Int64 {
            guard let rows = try? database.query("PRAGMA \(name)"), case .integer(let v)? = rows.first?.first else { return 0 }
            return v
        }
        return pragma("page_count") * pragma("page_size")
    }

    /// Records the end of the session in this file and checkpoints the WAL into the main file.
    func finish(endedAt: Int64, reason: String, next: String?) {
        checkpointer.stop()
        _ = try? database.prepare("UPDATE sessions SET ended_ns = ?, end_reason = ?, next_file = ? WHERE id = ?").run([
            .integer(endedAt), .text(reason), next.map { .text(URL(fileURLWithPath: $0).lastPathComponent) } ?? .null,
            .integer(sessionID),
        ])
        _ = try? database.query("PRAGMA wal_checkpoint(TRUNCATE)")
    }
}

/// Checkpoints a recording's WAL into the main file on a thread and a connection of its own (`PASSIVE`: it never
/// blocks the writer), when the writer asks. Should the checkpoints fall behind a writer that never pauses, the writer
/// checkpoints itself once the WAL passes `maxWAL`, so the WAL stays bounded.
final class WALCheckpointer: @unchecked Sendable {
    // @unchecked: `requested` and `stopping` are guarded by `condition`; `database` is used by the thread only.
    /// The writer asks for a checkpoint after this many bytes of blocks.
    static let every = 16 << 20
    /// Above this WAL size the writer checkpoints itself before going on.
    static let maxWAL: Int64 = 512 << 20
    private let walPath: String
    private let database: SQLiteDatabase
    private let condition = NSCondition()
    private var requested = false
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)

    init(path: String, backgroundThreads: BackgroundThreads = .normal) throws(SQLiteError) {
        walPath = path + "-wal"
        database = try SQLiteDatabase(path: path)
        let thread = Thread { [self] in
            backgroundThreads.enterCurrentThread(name: "recorder-ckpt")
            run()
        }
        thread.start()
    }

    /// Asks for a checkpoint (returns at once), or checkpoints on the writer's connection when the WAL is too big.
    /// Never throws: it runs after a commit, whose rows must not be written twice.
    func request(writer: SQLiteDatabase) {
        let size = (try? FileManager.default.attributesOfItem(atPath: walPath)[.size] as? Int64) ?? 0
        if size > Self.maxWAL {
            // Waits up to the busy timeout for the other checkpoint; a failure leaves the WAL to the next request.
            _ = try? writer.query("PRAGMA wal_checkpoint(RESTART)")
            return
        }
        condition.lock()
        requested = true
        condition.signal()
        condition.unlock()
    }

    /// Finishes a checkpoint under way and stops the thread.
    func stop() {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            return
        }
        stopping = true
        condition.signal()
        condition.unlock()
        done.wait()
    }

    private func run() {
        while true {
            condition.lock()
            while !requested && !stopping { condition.wait() }
            let stop = stopping
            requested = false
            condition.unlock()
            if stop { break }
            // A failure here (I/O, busy) only delays the copy: the WAL keeps every committed row, and the writer's
            // own checkpoints (size limit, close) still run.
            _ = try? database.query("PRAGMA wal_checkpoint(PASSIVE)")
        }
        done.signal()
    }
}

/// The package version, recorded in every session.
public enum KisIngest {
    public static let version = "kis-ingest 0.3.0"
}
