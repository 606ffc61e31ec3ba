import Foundation

/// librdkafka producer settings: the seed's defaults plus anything set in the environment.
public struct KafkaConfiguration: Sendable, Equatable {
    /// `bootstrap.servers`. Environment: `KAFKA_BROKERS`, default `localhost:9092`.
    public var brokers: String
    /// Every other librdkafka property, defaults applied first.
    public var properties: [String: String]

    /// The seed's producer defaults: acks=all, idempotence on, snappy, and the Java client's `murmur2_random`
    /// partitioner so a symbol lands on the partition a Java producer would choose.
    ///
    /// Plus `enable.metrics.push=false`: librdkafka ≥ 2.5 pushes client metrics to brokers that ask for them (KIP-714),
    /// and `rd_kafka_destroy` then waits up to 1 s for the push to end, on a condition variable that librdkafka's main
    /// thread sometimes signals before the wait starts (`rd_kafka_telemetry_await_termination`: a lost wake-up, the
    /// whole second is waited). Measured: `ingest-replay --max` spent 1.005 s after its last delivery in 3 runs of 5,
    /// 4–5 ms in 5 of 5 with the push off. Our metrics are Prometheus's (`/metrics`);
    /// `KAFKA_PROPERTY_ENABLE_METRICS_PUSH=true` turns the push back on.
    public static let defaultProperties: [String: String] = [
        "acks": "all",
        "enable.idempotence": "true",
        "compression.type": "snappy",
        "partitioner": "murmur2_random",
        "linger.ms": "5",
        "client.id": "kis-ingest",
        "message.timeout.ms": "300000",
        "enable.metrics.push": "false",
    ]

    /// Environment variables that set librdkafka properties: `KAFKA_PROPERTY_` + the property name in upper case
    /// with `.` written as `_` and a literal `_` written as `__` (`KAFKA_PROPERTY_LINGER_MS=20` → `linger.ms=20`,
    /// `KAFKA_PROPERTY_SASL_MECHANISMS=PLAIN` → `sasl.mechanisms=PLAIN`).
    public static let propertyPrefix = "KAFKA_PROPERTY_"

    public init(brokers: String = "localhost:9092", properties: [String: String] = [:]) {
        self.brokers = brokers
        self.properties = Self.defaultProperties.merging(properties) { _, new in new }
    }

    /// Reads `KAFKA_BROKERS` and every `KAFKA_PROPERTY_*` variable.
    public init(environment: [String: String]) {
        var overrides: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix(Self.propertyPrefix) {
            overrides[Self.propertyName(fromVariable: name)] = value
        }
        let brokers = environment["KAFKA_BROKERS"]?.trimmingCharacters(in: .whitespaces)
        self.init(brokers: brokers.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost:9092", properties: overrides)
    }

    /// `KAFKA_PROPERTY_QUEUE_BUFFERING_MAX__MS` style name → `queue.buffering.max_ms`.
    public static func propertyName(fromVariable variable: String) -> String {
        let raw = variable.dropFirst(propertyPrefix.count).lowercased()
        return raw.replacingOccurrences(of: "__", with: "\u{0}")
            .replacingOccurrences(of: "_", with: ".")
            .replacingOccurrences(of: "\u{0}", with: "_")
    }

    /// All properties handed to librdkafka, `bootstrap.servers` included.
    public var librdkafkaProperties: [String: String] {
        properties.merging(["bootstrap.servers": brokers]) { _, new in new }
    }

    /// Property names whose values must never be printed.
    static func isSecret(_ property: String) -> Bool {
        property.contains("password") || property.contains("secret") || property.hasSuffix(".key.pem")
            || property.contains("sasl.oauthbearer.config") || property == "ssl.key.password"
    }
}
