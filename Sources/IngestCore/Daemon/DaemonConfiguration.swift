import Foundation

/// Everything `ingestd` and `ingest-record live` read from the environment, validated before anything connects.
public struct DaemonConfiguration: Sendable {
    /// The app keys (`KIS_API_KEY`, `KIS_API_KEY_<n>`, `KIS_CREDENTIALS_FILE`): one KIS session per key.
    public var credentials: [KISCredentials]
    /// Every registration; `session.subscriptions` holds them all, `shards` says which session carries which.
    public var session: SessionConfiguration
    /// `KIS_MAX_REGISTRATIONS`: registrations per session (KIS: 41).
    public var registrationLimit: Int
    /// One entry per app key that has registrations: its credentials and its share of `KIS_SUBSCRIPTIONS`.
    public var shards: [Shard]
    /// `KIS_API_URL`.
    public var restEndpoint: Endpoint
    /// `KIS_MESSAGE_BUFFER_SIZE` (default 100 000 frames: two seconds at 50 000 frames/s, about 40 MB when full,
    /// nothing when empty), so a stall of the pipeline thread or the broker of that length loses nothing.
    public var bufferSize: Int
    /// `KIS_PIPELINE_INLINE` (default true): the socket reader processes frames itself while the pipeline thread is
    /// idle (see `IngestEngine`); `false` always hands frames over to the pipeline thread.
    public var pipelineInline: Bool
    /// `KIS_BACKGROUND_THREADS` (`batch`, the default, or `normal`): how librdkafka's threads, the pipeline thread and
    /// the recorder's threads are scheduled; see `BackgroundThreads`.
    public var backgroundThreads: BackgroundThreads
    /// `KIS_TOKEN_CACHE_TTL`, `KIS_TOKEN_REFRESH_BEFORE`.
    public var tokenCacheTTL: Duration
    public var tokenRefreshBefore: Duration
    /// `REDIS_HOST` (empty: no Redis), `REDIS_PORT`, `REDIS_PASSWORD`, `REDIS_DB`.
    public var redis: RedisConfiguration?
    public var kafka: KafkaConfiguration
    public var topics: TopicConfiguration
    /// `KAFKA_TOPIC_STATUS`, default `market.status`.
    public var statusTopic: String
    /// `KAFKA_FLUSH_TIMEOUT`: how long shutdown waits for Kafka deliveries.
    public var flushTimeout: Duration
    /// `METRICS_ADDRESS` (`host:port`, default `127.0.0.1:9464`; `off` disables): `/metrics`, `/healthz`, `/readyz`.
    public var metricsAddress: (host: String, port: Int)?

    /// One app key's session: which key (its position among the configured keys) and which registrations.
    public struct Shard: Sendable {
        public var index: Int
        public var credentials: KISCredentials
        public var subscriptions: [Subscription]
    }

    /// The configuration from `.env`, this process's environment and `--set` overrides (in rising precedence); on a
    /// bad value prints one `error:` line and exits with status 2 (before anything connects).
    public static func fromEnvironmentOrExit(overrides: [String] = []) -> DaemonConfiguration {
        do {
            return try DaemonConfiguration(environment: try EffectiveEnvironment.load(overrides: overrides))
        } catch {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            exit(2)
        }
    }

    /// Reads and validates; throws one `ConfigurationError` line naming the variable, the bad value and an example.
    public init(environment env: [String: String]) throws(ConfigurationError) {
        func value(_ name: String) -> String? {
            guard let v = env[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        func required(_ name: String, _ example: String) throws(ConfigurationError) -> String {
            guard let v = value(name) else { throw ConfigurationError("\(name) is not set: it is required (example: \(name)=\(example))") }
            return v
        }
        func duration(_ name: String, _ fallback: Duration) throws(ConfigurationError) -> Duration {
            guard let text = value(name) else { return fallback }
            guard let d = TimeParsing.duration(text), d > .zero else {
                throw ConfigurationError("\(name)=\"\(text)\" is not a positive duration (examples: 5s, 10m, 24h)")
            }
            return d
        }
        func integer(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            guard let text = value(name) else { return fallback }
            guard let n = Int(text), range.contains(n) else {
                throw ConfigurationError("\(name)=\"\(text)\" is not a whole number from \(range.lowerBound) to \(range.upperBound) (example: \(name)=\(fallback))")
            }
            return n
        }
        func flag(_ name: String, _ fallback: Bool) throws(ConfigurationError) -> Bool {
            guard let text = value(name)?.lowercased() else { return fallback }
            switch text {
            case "1", "true", "yes", "on": return true
            case "0", "false", "no", "off": return false
            default: throw ConfigurationError("\(name)=\"\(text)\" is not true or false")
            }
        }
        func endpoint(_ name: String, _ fallback: String) throws(ConfigurationError) -> Endpoint {
            let text = value(name) ?? fallback
            do { return try Endpoint(text) } catch { throw ConfigurationError("\(name): \(error.message)") }
        }

        credentials = try AppKeys.load(env)
        let ws = try endpoint("KIS_WEBSOCKET_URL", "ws://ops.koreainvestment.com:21000/tryitout")
        guard ws.isWebSocket else { throw ConfigurationError("KIS_WEBSOCKET_URL=\"\(ws)\" must start with ws:// or wss://") }
        restEndpoint = try endpoint("KIS_API_URL", "https://openapi.koreainvestment.com:9443")
        guard !restEndpoint.isWebSocket else { throw ConfigurationError("KIS_API_URL=\"\(restEndpoint)\" must start with http:// or https://") }
        let subscriptions = try Subscription.parseList(try required("KIS_SUBSCRIPTIONS", "H0STCNT0:005930,H0STASP0:005930"))
        registrationLimit = try integer("KIS_MAX_REGISTRATIONS", Subscription.perSessionLimit, 1...Subscription.perSessionLimit)
        let plan = try AppKeys.spread(subscriptions, sessions: credentials.count, limit: registrationLimit)
        shards = zip(credentials, plan).enumerated().filter { !$0.element.1.isEmpty }.map {
            Shard(index: $0.offset, credentials: $0.element.0, subscriptions: $0.element.1)
        }
        let custType = value("KIS_CUSTTYPE") ?? "P"
        guard custType == "P" || custType == "B" else { throw ConfigurationError("KIS_CUSTTYPE=\"\(custType)\" must be P (individual) or B (corporate)") }
        let retries = try integer("KIS_RECONNECT_RETRIES", 5, 0...1_000_000)
        let tls = TLSOptions(caFile: value("KIS_TLS_CA_FILE"), insecure: try flag("KIS_TLS_INSECURE", false))
        if let ca = tls.caFile, !FileManager.default.isReadableFile(atPath: ca) {
            throw ConfigurationError("KIS_TLS_CA_FILE=\"\(ca)\" is not a readable file")
        }
        let delay = try duration("KIS_RECONNECT_DELAY", .seconds(1))
        session = SessionConfiguration(
            endpoint: ws, subscriptions: subscriptions, custType: custType, reconnectDelay: delay,
            reconnectMaxDelay: max(delay, try duration("KIS_RECONNECT_MAX_DELAY", .seconds(30))),
            maxAttempts: retries == 0 ? nil : retries, watchdog: try duration("KIS_HEARTBEAT_INTERVAL", .seconds(150)),
            subscribePace: try duration("KIS_SUBSCRIBE_INTERVAL", .milliseconds(200)),
            inUseBackoff: try duration("KIS_IN_USE_BACKOFF", .seconds(30)), tls: tls,
            echoPingPong: try flag("KIS_PINGPONG_ECHO", true))
        bufferSize = try integer("KIS_MESSAGE_BUFFER_SIZE", 100_000, 1...100_000_000)
        pipelineInline = try flag("KIS_PIPELINE_INLINE", true)
        let threads = value("KIS_BACKGROUND_THREADS")?.lowercased() ?? BackgroundThreads.batch.rawValue
        guard let backgroundThreads = BackgroundThreads(rawValue: threads) else {
            throw ConfigurationError("KIS_BACKGROUND_THREADS=\"\(threads)\" is not batch or normal (batch: helper threads run under SCHED_BATCH and never preempt the socket reader when they wake; normal: the default policy)")
        }
        self.backgroundThreads = backgroundThreads
        tokenCacheTTL = try duration("KIS_TOKEN_CACHE_TTL", .seconds(23 * 3600))
        tokenRefreshBefore = try duration("KIS_TOKEN_REFRESH_BEFORE", .seconds(3600))
        if let host = value("REDIS_HOST") {
            if try flag("REDIS_TLS", false) {
                throw ConfigurationError("REDIS_TLS=true: the hiredis of this platform (Debian bookworm, 0.14) has no TLS; reach Redis through a TLS tunnel (stunnel, spiped) on localhost and set REDIS_TLS=false")
            }
            redis = RedisConfiguration(host: host, port: try integer("REDIS_PORT", 6379, 1...65535), password: value("REDIS_PASSWORD"),
                                       database: try integer("REDIS_DB", 0, 0...15))
        } else {
            redis = nil
        }
        kafka = KafkaConfiguration(environment: env)
        topics = TopicConfiguration(environment: env)
        statusTopic = value("KAFKA_TOPIC_STATUS") ?? "market.status"
        flushTimeout = try duration("KAFKA_FLUSH_TIMEOUT", .seconds(10))
        let metrics = value("METRICS_ADDRESS") ?? "127.0.0.1:9464"
        if metrics.lowercased() == "off" {
            metricsAddress = nil
        } else {
            guard let colon = metrics.lastIndex(of: ":"), let port = Int(metrics[metrics.index(after: colon)...]), (0...65535).contains(port)
            else { throw ConfigurationError("METRICS_ADDRESS=\"\(metrics)\" is not HOST:PORT or off (example: METRICS_ADDRESS=0.0.0.0:9464)") }
            metricsAddress = (String(metrics[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
        }
    }
}
