/// The recording format: one SQLite file per recording, WAL mode, versioned with `PRAGMA user_version`.
///
/// Migration rule: the version only grows; a change only adds (tables, nullable columns, kinds), so a reader of
/// version N reads every file of version ≤ N; a file newer than the reader is refused with a message naming both
/// versions. (The recorder never appends to an existing file, so no file is ever rewritten to a newer version.)
///
/// - Version 1: one row of `messages` per message.
/// - Version 2: one row of `message_blocks` per committed batch (`MessageBlock`), `messages` left empty by the
///   recorder; the view `message_rows` shows the rows of both tables alike, and `messages_readable` reads it.
enum RecordingSchema {
    static let version: Int64 = 2

    static let create = """
        CREATE TABLE IF NOT EXISTS sessions (
            id INTEGER PRIMARY KEY,
            started_ns INTEGER NOT NULL,
            ended_ns INTEGER,
            end_reason TEXT,
            source_url TEXT NOT NULL,
            subscriptions TEXT NOT NULL,
            tool_version TEXT NOT NULL,
            host TEXT NOT NULL,
            app_key_fingerprint TEXT,
            previous_file TEXT,
            next_file TEXT
        );
        CREATE TABLE IF NOT EXISTS kinds (
            id INTEGER PRIMARY KEY,
            direction TEXT NOT NULL,
            name TEXT NOT NULL,
            meaning TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS messages (
            seq INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL,
            recv_ns INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            tr_id TEXT,
            body TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS message_blocks (
            first_seq INTEGER PRIMARY KEY,
            last_seq INTEGER NOT NULL,
            session_id INTEGER NOT NULL,
            min_ns INTEGER NOT NULL,
            max_ns INTEGER NOT NULL,
            frames TEXT NOT NULL
        );
        CREATE VIEW IF NOT EXISTS message_rows AS
            SELECT seq, session_id, recv_ns, kind, tr_id, body FROM messages
            UNION ALL
            SELECT b.first_seq + j.key, b.session_id, b.min_ns + json_extract(j.value, '$[0]'),
                   json_extract(j.value, '$[1]'), json_extract(j.value, '$[2]'), json_extract(j.value, '$[3]')
            FROM message_blocks b, json_each(b.frames) j;
        CREATE VIEW IF NOT EXISTS messages_readable AS
            SELECT m.seq, m.session_id,
                   strftime('%Y-%m-%dT%H:%M:%S', m.recv_ns / 1000000000, 'unixepoch')
                       || printf('.%09dZ', m.recv_ns % 1000000000) AS recv_time,
                   k.direction, k.name AS kind, m.tr_id, m.body
            FROM message_rows m LEFT JOIN kinds k ON k.id = m.kind;
        """

    static var kindRows: [[SQLiteValue]] {
        RecordedKind.allCases.map {
            [.integer(Int64($0.rawValue)), .text($0.direction.rawValue), .text($0.name), .text($0.meaning)]
        }
    }
}

/// An error reading or writing a recording, naming the file and what to do.
public struct RecordingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
