import Foundation

/// Where the daemon's settings come from, lowest precedence first: a `.env` file (`KIS_ENV_FILE`, default `./.env`
/// when it exists), the real environment, then `--set NAME=VALUE` flags.
public enum EffectiveEnvironment {
    /// Parses a `.env` file: `NAME=value` lines, `#` comments, blank lines, optional `export `, values optionally in
    /// single or double quotes. Throws a `ConfigurationError` naming the file and line of anything else.
    public static func parseDotEnv(_ text: String, file: String) throws(ConfigurationError) -> [String: String] {
        var result: [String: String] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let eq = line.firstIndex(of: "=") else {
                throw ConfigurationError("\(file):\(index + 1): expected NAME=value (example: KIS_RECONNECT_DELAY=1s)")
            }
            let name = line[..<eq].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw ConfigurationError("\(file):\(index + 1): \"\(name)\" is not a variable name")
            }
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            result[name] = value
        }
        return result
    }

    /// The merged environment: `.env` < process environment < `overrides` (from `--set`).
    public static func load(overrides: [String]) throws(ConfigurationError) -> [String: String] {
        try load(process: ProcessInfo.processInfo.environment, overrides: overrides)
    }

    public static func load(process: [String: String], overrides: [String]) throws(ConfigurationError) -> [String: String] {
        var merged: [String: String] = [:]
        let file = process["KIS_ENV_FILE"] ?? ".env"
        if FileManager.default.fileExists(atPath: file) {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError("KIS_ENV_FILE=\"\(file)\" cannot be read")
            }
            merged = try parseDotEnv(text, file: file)
        } else if process["KIS_ENV_FILE"] != nil {
            throw ConfigurationError("KIS_ENV_FILE=\"\(file)\" does not exist")
        }
        merged.merge(process) { _, real in real }
        for item in overrides {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw ConfigurationError("--set \"\(item)\" is not NAME=VALUE (example: --set KIS_RECONNECT_RETRIES=0)")
            }
            merged[String(item[..<eq])] = String(item[item.index(after: eq)...])
        }
        return merged
    }
}

extension DaemonConfiguration {
    /// The effective configuration as `NAME=value` lines, secrets masked: what `--print-config` shows.
    public func printable() -> String {
        var lines: [(String, String)] = [
            ("KIS_API_KEY", "*** (\(credentials[0].fingerprint))"), ("KIS_API_SECRET", "***"),
        ]
        if credentials.count > 1 {
            lines.append(("app keys", "\(credentials.count): " + credentials.map(\.fingerprint).joined(separator: ", ")))
        }
        lines += [
            ("KIS_WEBSOCKET_URL", session.endpoint.description), ("KIS_API_URL", restEndpoint.description),
            ("KIS_SUBSCRIPTIONS", session.subscriptions.map(\.description).joined(separator: ",")),
            ("KIS_MAX_REGISTRATIONS", String(registrationLimit)),
            ("KIS_CUSTTYPE", session.custType),
            ("KIS_RECONNECT_RETRIES", session.maxAttempts.map(String.init) ?? "0 (unlimited)"),
            ("KIS_RECONNECT_DELAY", "\(TimeParsing.format(session.reconnectDelay))"), ("KIS_RECONNECT_MAX_DELAY", "\(TimeParsing.format(session.reconnectMaxDelay))"),
            ("KIS_HEARTBEAT_INTERVAL", "\(TimeParsing.format(session.watchdog)) (watchdog)"), ("KIS_SUBSCRIBE_INTERVAL", "\(TimeParsing.format(session.subscribePace))"),
            ("KIS_IN_USE_BACKOFF", "\(TimeParsing.format(session.inUseBackoff))"), ("KIS_MESSAGE_BUFFER_SIZE", String(bufferSize)),
            ("KIS_PIPELINE_INLINE", "\(pipelineInline)"), ("KIS_BACKGROUND_THREADS", backgroundThreads.rawValue),
            ("KIS_TOKEN_CACHE_TTL", "\(TimeParsing.format(tokenCacheTTL))"), ("KIS_TOKEN_REFRESH_BEFORE", "\(TimeParsing.format(tokenRefreshBefore))"),
            ("KIS_TLS_CA_FILE", session.tls.caFile ?? "(system trust store)"), ("KIS_PINGPONG_ECHO", "\(session.echoPingPong)"),
            ("REDIS_HOST", redis?.host ?? "(none: in-memory credential cache only)"),
        ]
        if let redis {
            lines += [("REDIS_PORT", String(redis.port)), ("REDIS_DB", String(redis.database)),
                      ("REDIS_PASSWORD", redis.password == nil ? "(none)" : "***")]
        }
        lines += [("KAFKA_BROKERS", kafka.brokers)]
        for (name, value) in kafka.properties.sorted(by: { $0.key < $1.key }) {
            lines.append(("kafka: \(name)", KafkaConfiguration.isSecret(name) ? "***" : value))
        }
        lines += [("KAFKA_TOPIC_TICK", topics.prefix + topics.tick), ("KAFKA_TOPIC_ORDERBOOK", topics.prefix + topics.orderBook),
                  ("KAFKA_TOPIC_DEADLETTER", topics.prefix + topics.deadLetter),
                  ("KAFKA_TOPIC_NOTICE", topics.notice.map { topics.prefix + $0 } ?? "(off)"),
                  ("KAFKA_TOPIC_STATUS", topics.prefix + statusTopic), ("KAFKA_FLUSH_TIMEOUT", "\(TimeParsing.format(flushTimeout))"),
                  ("METRICS_ADDRESS", metricsAddress.map { "\($0.host):\($0.port)" } ?? "off")]
        for shard in shards {
            lines.append(("session \(shard.index + 1) (\(shard.credentials.fingerprint))",
                          "\(shard.subscriptions.count) registrations: " + shard.subscriptions.map(\.description).joined(separator: ",")))
        }
        return lines.map { "\($0.0)=\($0.1)" }.joined(separator: "\n") + "\n"
    }
}
