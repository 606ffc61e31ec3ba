/// The recording format: one SQLite file per recording, WAL mode, versioned with `PRAGMA user_version`.
///
/// Migration rule: the version only grows; a change only adds (tables, nullable columns, kinds), so a reader of
/// version N reads every file of version ≤ N; a file newer than the reader is refused with a message naming both
/// versions. Opening an older file for appending upgrades it in place, one version step at a time, in a transaction.
enum RecordingSchema {
    static let version: Int64 = 1

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
        CREATE VIEW IF NOT EXISTS messages_readable AS
            SELECT m.seq, m.session_id,
                   strftime('%Y-%m-%dT%H:%M:%S', m.recv_ns / 1000000000, 'unixepoch')
                       || printf('.%09dZ', m.recv_ns % 1000000000) AS recv_time,
                   k.direction, k.name AS kind, m.tr_id, m.body
            FROM messages m JOIN kinds k ON k.id = m.kind;
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
