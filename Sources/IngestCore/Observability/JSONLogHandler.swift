import Foundation
public import Logging

/// One JSON object per line in the seed's shape: `level`, `service`, `env`, `time` (RFC 3339, UTC), `message`, then
/// the structured fields (`symbol`, `price`, … as given in the metadata). Selected with `LOG_FORMAT=json`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let service: String
    let environment: String

    public init(label: String, level: Logger.Level, service: String, environment: String) {
        self.label = label
        self.logLevel = level
        self.service = service
        self.environment = environment
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        var line = "{\"level\":\"\(event.level.rawValue)\",\"service\":\(JSONText.quote(service)),\"env\":\(JSONText.quote(environment))"
        line += ",\"time\":\"\(Self.rfc3339(wallClockNanoseconds()))\",\"message\":\(JSONText.quote("\(event.message)"))"
        line += ",\"logger\":\(JSONText.quote(label))"
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) where !["level", "service", "env", "time", "message"].contains(key) {
            line += ",\(JSONText.quote(key)):\(JSONText.quote("\(value)"))"
        }
        line += "}\n"
        Self.writeLine(line)
    }

    private static let lock = NSLock()

    /// One `write(2)` per line under a lock, errors ignored: a closed stderr must never crash the daemon
    /// (`FileHandle.write` traps on EPIPE).
    static func writeLine(_ line: String) {
        lock.withLock {
            var bytes = Array(line.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeMutableBytes { write(STDERR_FILENO, $0.baseAddress! + offset, $0.count - offset) }
                if n <= 0 { return }
                offset += n
            }
        }
    }

    static func rfc3339(_ ns: Int64) -> String {
        let iso = TimeParsing.iso8601(nanoseconds: ns)  // …T09:00:00.123456789Z
        return String(iso.prefix(23)) + "Z"  // millisecond precision
    }
}
