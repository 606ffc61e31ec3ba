/// A Kafka header: a name and raw bytes.
public struct KafkaHeader: Sendable, Equatable, Hashable {
    public var name: String
    public var value: [UInt8]

    public init(_ name: String, _ value: [UInt8]) {
        self.name = name
        self.value = value
    }

    public init(_ name: String, _ value: String) { self.init(name, Array(value.utf8)) }
}

/// One message to produce: topic, key, value, CreateTime and headers.
public struct KafkaRecord: Sendable, Equatable {
    public var topic: String
    public var key: [UInt8]
    public var value: [UInt8]
    /// CreateTime in milliseconds since the Unix epoch: the event's own time, never the clock, so replays are
    /// identical.
    public var timestampMs: Int64
    public var headers: [KafkaHeader]

    public init(topic: String, key: [UInt8], value: [UInt8], timestampMs: Int64, headers: [KafkaHeader]) {
        self.topic = topic
        self.key = key
        self.value = value
        self.timestampMs = timestampMs
        self.headers = headers
    }
}

/// Header names kis-ingest sets.
public enum KafkaHeaderName {
    /// The KIS tr_id of the frame (`H0STCNT0`, …).
    public static let trID = "tr_id"
    /// The frame's receive time, decimal nanoseconds since the Unix epoch (UTC).
    public static let receivedAt = "recv_time_ns"
    /// `index/count` of the record within its frame (1-based), e.g. `2/3`.
    public static let record = "record"
    /// Dead letters: the machine-readable reason (`malformed_header`, …).
    public static let deadLetterReason = "dlq.reason"
    /// Dead letters: a human-readable detail.
    public static let deadLetterDetail = "dlq.detail"

    /// The bytes of the three header names every market message carries.
    public static let marketHeaderNameBytes = trID.utf8.count + receivedAt.utf8.count + record.utf8.count
}
