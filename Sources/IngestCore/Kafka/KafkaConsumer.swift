internal import CRdKafka
import Foundation

/// A message read back from Kafka.
public struct ConsumedRecord: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]
    public var value: [UInt8]
    public var timestampMs: Int64
    public var headers: [KafkaHeader]

    /// The first header with this name, as text.
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }.map { String(decoding: $0.value, as: UTF8.self) }
    }
}

/// A simple librdkafka consumer that reads whole topics from the beginning, without a consumer group: for tests,
/// inspection (`ingest-replay consume`) and verification.
///
/// Reads until an expected count or until the topics go idle, never until "end of partition" (some brokers, such
/// as tansu, report wrong high watermarks).
public final class KafkaConsumer {
    private let rk: OpaquePointer

    public init(brokers: String, properties: [String: String] = [:]) throws(KafkaError) {
        try RdKafkaVersion.checkLoaded()
        let conf = rd_kafka_conf_new()!
        var errorBuffer = [CChar](repeating: 0, count: 512)
        let all = [
            "bootstrap.servers": brokers, "group.id": "kis-ingest-reader-\(UUID().uuidString)",
            "enable.auto.commit": "false", "auto.offset.reset": "earliest", "enable.partition.eof": "false",
            // As the producer (KafkaConfiguration.defaultProperties): no KIP-714 push, no 1 s wait in destroy.
            "enable.metrics.push": "false",
        ].merging(properties) { _, new in new }
        for (name, value) in all where rd_kafka_conf_set(conf, name, value, &errorBuffer, errorBuffer.count) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            let reason = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw KafkaError(code: "configuration", message: "consumer property \(name): \(reason)")
        }
        guard let rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &errorBuffer, errorBuffer.count) else {
            rd_kafka_conf_destroy(conf)
            let reason = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw KafkaError(code: "create", message: "could not create the Kafka consumer: \(reason)")
        }
        rd_kafka_poll_set_consumer(rk)
        self.rk = rk
    }

    deinit {
        rd_kafka_consumer_close(rk)
        rd_kafka_destroy(rk)
    }

    /// The number of partitions of a topic, from the broker's metadata; 0 when the topic does not exist.
    public func partitionCount(_ topic: String, timeout: Duration = .seconds(5)) throws(KafkaError) -> Int {
        let ms = Int32(clamping: timeout.components.seconds * 1000)
        guard let t = rd_kafka_topic_new(rk, topic, nil) else {
            throw KafkaError(code: "metadata", message: "invalid topic name \(topic)")
        }
        defer { rd_kafka_topic_destroy(t) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk, 0, t, &metadata, ms)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError(err, "metadata for \(topic)") }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt > 0 else { return 0 }
        let tm = metadata.pointee.topics[0]
        if tm.err != RD_KAFKA_RESP_ERR_NO_ERROR { return 0 }
        return Int(tm.partition_cnt)
    }

    /// Assigns every partition of `topics` from the beginning. Topics that do not exist yet are skipped.
    public func assignFromBeginning(_ topics: [String]) throws(KafkaError) {
        let list = rd_kafka_topic_partition_list_new(16)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics {
            let n = try partitionCount(topic)
            for p in 0..<n {
                rd_kafka_topic_partition_list_add(list, topic, Int32(p)).pointee.offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
            }
        }
        let err = rd_kafka_assign(rk, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "assigning partitions") }
    }

    /// Reads one message, waiting at most `timeout`; `nil` when none arrived. Partition-EOF events are skipped.
    public func poll(timeout: Duration) throws(KafkaError) -> ConsumedRecord? {
        let ms = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard let message = rd_kafka_consumer_poll(rk, ms) else { return nil }
        defer { rd_kafka_message_destroy(message) }
        let m = message.pointee
        if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return nil }
        guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(m.err, "consuming") }
        let key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) } ?? []
        let value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &timestampType)
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var index = 0
            while true {
                var name: UnsafePointer<CChar>?
                var valuePtr: UnsafeRawPointer?
                var size = 0
                guard rd_kafka_header_get_all(hdrs, index, &name, &valuePtr, &size) == RD_KAFKA_RESP_ERR_NO_ERROR
                else { break }
                let bytes = valuePtr.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                headers.append(KafkaHeader(name.map { String(cString: $0) } ?? "", bytes))
                index += 1
            }
        }
        return ConsumedRecord(
            topic: String(cString: rd_kafka_topic_name(m.rkt)), partition: m.partition, offset: m.offset, key: key,
            value: value, timestampMs: timestamp, headers: headers)
    }

    /// Reads `topics` from the beginning until `expected` messages arrived (when given), or nothing arrived for
    /// `idle`, or `limit` passed.
    public func readAll(
        _ topics: [String], expected: Int? = nil, idle: Duration = .seconds(3), limit: Duration = .seconds(60)
    ) throws(KafkaError) -> [ConsumedRecord] {
        try assignFromBeginning(topics)
        var records: [ConsumedRecord] = []
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var lastMessage = clock.now
        while clock.now < deadline {
            if let expected, records.count >= expected { break }
            if let record = try poll(timeout: .milliseconds(100)) {
                records.append(record)
                lastMessage = clock.now
            } else if clock.now - lastMessage >= idle {
                break
            }
        }
        return records
    }
}
