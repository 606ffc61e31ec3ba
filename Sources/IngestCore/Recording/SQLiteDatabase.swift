internal import CSQLite3

/// An SQLite error with the database's own message and the statement or file it concerns.
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int32
    public let message: String
    public var description: String { message }
}

/// A value bound to or read from an SQLite statement.
public enum SQLiteValue: Sendable, Equatable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null
}

/// Reads large TEXT or BLOB values of one column into a buffer the caller reuses, with SQLite's incremental I/O.
/// `sqlite3_column_text` would allocate a copy of every large value instead; with values of a few hundred KB that
/// churn raised glibc's mmap threshold and left a replay 30 MB bigger (measured: 75 MB against 40 MB peak RSS).
public final class SQLiteValueReader {
    private let database: SQLiteDatabase
    private let table: String
    private let column: String
    private var blob: OpaquePointer?

    public init(database: SQLiteDatabase, table: String, column: String) {
        self.database = database
        self.table = table
        self.column = column
    }

    deinit { if let blob { sqlite3_blob_close(blob) } }

    /// Reads the value of the row `rowID` into the front of `buffer` (grown when too small, never shrunk); returns
    /// its length in bytes.
    public func read(rowID: Int64, into buffer: inout [UInt8]) throws(SQLiteError) -> Int {
        var rc: Int32
        if let blob {
            rc = sqlite3_blob_reopen(blob, rowID)
            if rc != SQLITE_OK {
                sqlite3_blob_close(blob)
                self.blob = nil
            }
        } else {
            rc = sqlite3_blob_open(database.db, "main", table, column, rowID, 0, &blob)
        }
        guard rc == SQLITE_OK, let blob else {
            throw database.error(rc, "reading \(table).\(column) of row \(rowID)")
        }
        let count = Int(sqlite3_blob_bytes(blob))
        if buffer.count < count { buffer.append(contentsOf: repeatElement(0, count: count - buffer.count)) }
        rc = buffer.withUnsafeMutableBytes { sqlite3_blob_read(blob, $0.baseAddress, Int32(count), 0) }
        guard rc == SQLITE_OK else { throw database.error(rc, "reading \(table).\(column) of row \(rowID)") }
        return count
    }
}

/// One SQLite database connection (sqlite3). Not thread-safe: one owner at a time, off the cooperative pool.
public final class SQLiteDatabase {
    fileprivate let db: OpaquePointer
    public let path: String

    /// Opens (creating if needed) the database at `path`.
    public init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        var handle: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        let rc = sqlite3_open_v2(path, &handle, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw SQLiteError(code: rc, message: "cannot open SQLite database \(path): \(message)")
        }
        self.db = handle
        self.path = path
        sqlite3_busy_timeout(db, 5000)
    }

    deinit { sqlite3_close_v2(db) }

    /// Runs one or more statements without results.
    public func execute(_ sql: String) throws(SQLiteError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        guard rc == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(errorMessage)
            throw SQLiteError(code: rc, message: "\(path): \(message) (in: \(sql.prefix(80)))")
        }
    }

    /// Prepares a statement for repeated use.
    public func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        try SQLiteStatement(database: self, sql: sql)
    }

    /// Runs a query and returns every row.
    public func query(_ sql: String, _ bindings: [SQLiteValue] = []) throws(SQLiteError) -> [[SQLiteValue]] {
        let statement = try prepare(sql)
        try statement.bind(bindings)
        var rows: [[SQLiteValue]] = []
        while try statement.step() { rows.append(statement.row()) }
        return rows
    }

    fileprivate func error(_ rc: Int32, _ context: String) -> SQLiteError {
        SQLiteError(code: rc, message: "\(path): \(String(cString: sqlite3_errmsg(db))) (\(context))")
    }
}

/// A prepared statement. Bind, step, read columns, reset.
public final class SQLiteStatement {
    private let database: SQLiteDatabase
    private let statement: OpaquePointer
    private let sql: String

    fileprivate init(database: SQLiteDatabase, sql: String) throws(SQLiteError) {
        var s: OpaquePointer?
        let rc = sqlite3_prepare_v3(database.db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &s, nil)
        guard rc == SQLITE_OK, let s else { throw database.error(rc, "preparing \(sql.prefix(80))") }
        self.database = database
        self.statement = s
        self.sql = sql
    }

    deinit { sqlite3_finalize(statement) }

    /// Binds values to parameters 1…n (text and blobs are copied).
    public func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        for (i, value) in values.enumerated() { try bind(value, at: Int32(i + 1)) }
    }

    public func bind(_ value: SQLiteValue, at index: Int32) throws(SQLiteError) {
        let rc: Int32
        switch value {
        case .integer(let v): rc = sqlite3_bind_int64(statement, index, v)
        case .real(let v): rc = sqlite3_bind_double(statement, index, v)
        case .text(let v): rc = sqlite3_bind_text(statement, index, v, -1, csqlite3_transient())
        case .blob(let v):
            rc = v.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), csqlite3_transient()) }
        case .null: rc = sqlite3_bind_null(statement, index)
        }
        guard rc == SQLITE_OK else { throw database.error(rc, "binding parameter \(index)") }
    }

    /// Binds an integer (hot paths: no value array).
    public func bind(_ value: Int64, at index: Int32) throws(SQLiteError) {
        let rc = sqlite3_bind_int64(statement, index, value)
        guard rc == SQLITE_OK else { throw database.error(rc, "binding parameter \(index)") }
    }

    /// Binds text, all of its UTF-8 bytes (a NUL inside included), copied by SQLite; `nil` binds NULL.
    public func bind(text: String?, at index: Int32) throws(SQLiteError) {
        let rc: Int32
        if var text {
            rc = text.withUTF8 { sqlite3_bind_text(statement, index, $0.baseAddress, Int32($0.count), csqlite3_transient()) }
        } else {
            rc = sqlite3_bind_null(statement, index)
        }
        guard rc == SQLITE_OK else { throw database.error(rc, "binding parameter \(index)") }
    }

    /// Binds text without copying it: `bytes` must stay valid until the statement has been stepped and reset.
    public func bind(borrowedText bytes: UnsafeBufferPointer<UInt8>, at index: Int32) throws(SQLiteError) {
        // A nil destructor is SQLITE_STATIC: SQLite reads the caller's bytes in place.
        let rc = bytes.withMemoryRebound(to: CChar.self) { chars in
            chars.isEmpty
                ? sqlite3_bind_text(statement, index, "", 0, csqlite3_transient())
                : sqlite3_bind_text(statement, index, chars.baseAddress, Int32(chars.count), nil)
        }
        guard rc == SQLITE_OK else { throw database.error(rc, "binding parameter \(index)") }
    }

    /// Advances; `true` while a row is available.
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(statement)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw database.error(rc, "running \(sql.prefix(80))")
        }
    }

    /// Resets for another run with new bindings.
    public func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    /// Runs the statement to completion with the given bindings, then resets it.
    public func run(_ values: [SQLiteValue]) throws(SQLiteError) {
        defer { reset() }
        try bind(values)
        while try step() {}
    }

    /// The current row.
    public func row() -> [SQLiteValue] {
        (0..<sqlite3_column_count(statement)).map { column($0) }
    }

    /// Column `i` of the current row as an integer, or `nil` when it holds anything else (hot paths: no enum).
    public func integer(_ i: Int32) -> Int64? {
        sqlite3_column_type(statement, i) == SQLITE_INTEGER ? sqlite3_column_int64(statement, i) : nil
    }

    /// Calls `body` with the bytes of text column `i` (valid only during the call; not checked for UTF-8); `nil`
    /// when the column is not text.
    public func withText<R>(_ i: Int32, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R? {
        guard sqlite3_column_type(statement, i) == SQLITE_TEXT else { return nil }
        let p = sqlite3_column_text(statement, i)
        let n = Int(sqlite3_column_bytes(statement, i))
        return try body(UnsafeBufferPointer(start: p, count: p == nil ? 0 : n))
    }

    public func column(_ i: Int32) -> SQLiteValue {
        switch sqlite3_column_type(statement, i) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, i))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, i))
        case SQLITE_TEXT:
            let n = Int(sqlite3_column_bytes(statement, i))
            guard let p = sqlite3_column_text(statement, i) else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
        case SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(statement, i))
            guard let p = sqlite3_column_blob(statement, i) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default: return .null
        }
    }
}
