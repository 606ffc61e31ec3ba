import Foundation
public import Logging

/// Start-up chores shared by the three programs.
public enum ProgramSupport {
    /// Logs to standard error at `LOG_LEVEL` (`trace` … `critical`, default `info`), as `LOG_FORMAT` `console`
    /// (default) or `json` (the seed's shape, with `SERVICE_NAME` and `ENVIRONMENT`). A bad value exits with status 2
    /// and one line naming it.
    public static func bootstrapLogging() {
        bootstrapLogging(environment: ProcessInfo.processInfo.environment)
    }

    /// As `bootstrapLogging()`, from a given environment (the daemon's `.env` + environment + `--set`).
    public static func bootstrapLogging(environment: [String: String]) {
        let levelText = environment["LOG_LEVEL"]?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        let level: Logger.Level
        if levelText.isEmpty {
            level = .info
        } else if let l = Logger.Level(rawValue: levelText == "warn" ? "warning" : levelText == "fatal" ? "critical" : levelText) {
            level = l
        } else {
            FileHandle.standardError.write(Data("error: LOG_LEVEL=\"\(levelText)\" is not one of trace, debug, info, notice, warning, error, critical (example: LOG_LEVEL=info)\n".utf8))
            exit(2)
        }
        let format = environment["LOG_FORMAT"]?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard ["", "console", "text", "json"].contains(format) else {
            FileHandle.standardError.write(Data("error: LOG_FORMAT=\"\(format)\" is not json or console (example: LOG_FORMAT=json)\n".utf8))
            exit(2)
        }
        let service = environment["SERVICE_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "kis-ingest"
        let env = environment["ENVIRONMENT"].flatMap { $0.isEmpty ? nil : $0 } ?? "development"
        LoggingSystem.bootstrap { label in
            if format == "json" { return JSONLogHandler(label: label, level: level, service: service, environment: env) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Caps glibc's malloc arenas at `count` (`mallopt(M_ARENA_MAX, count)`), unless `MALLOC_ARENA_MAX` is set (then
    /// glibc has applied it). glibc gives every allocating thread an arena of its own, each keeping the memory freed
    /// into it; a multi-threaded batch tool pays for that in peak RSS. Returns `false` when `mallopt` is unavailable.
    @discardableResult
    public static func limitMallocArenas(to count: Int32, environment: [String: String]) -> Bool {
        guard environment["MALLOC_ARENA_MAX"] == nil else { return true }
        // `mallopt` is not in the Glibc module's headers; look it up (glibc's malloc.h: M_ARENA_MAX is -8).
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return false }
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        return unsafeBitCast(symbol, to: Mallopt.self)(-8, count) == 1
    }

    /// Exits with status 1 and a clear message when the loaded librdkafka is older than 2.2.
    public static func requireSupportedLibrdkafka() {
        do {
            try RdKafkaVersion.checkLoaded()
        } catch {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            exit(1)
        }
    }
}
