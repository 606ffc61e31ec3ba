import Foundation
public import Logging

/// Start-up chores shared by the three programs.
public enum ProgramSupport {
    /// Logs to standard error at `LOG_LEVEL` (default `info`).
    public static func bootstrapLogging() {
        let environment = ProcessInfo.processInfo.environment
        let level = environment["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
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
