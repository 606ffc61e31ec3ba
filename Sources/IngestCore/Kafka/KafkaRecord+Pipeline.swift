public import SwiftProtobuf

extension KafkaRecord {
    /// The Kafka message for a pipeline output; `nil` for control messages, which produce none.
    public init?(_ output: PipelineOutput) {
        switch output {
        case .market(let m): self.init(m)
        case .deadLetter(let d): self.init(d)
        case .control: return nil
        }
    }

    /// A market message: key = symbol, value = Protobuf, CreateTime = event time, headers tr_id, receive time and
    /// record position.
    public init(_ m: MarketMessage) {
        let value: [UInt8]
        switch m.event {
        case .tick(let t): value = Self.encode(t)
        case .orderBook(let b): value = Self.encode(b)
        case .notice(let n): value = Self.encode(n)
        }
        self.init(
            topic: m.topic, key: Array(m.key.utf8), value: value, timestampMs: Self.milliseconds(m.event.timestamp),
            headers: [
                KafkaHeader(KafkaHeaderName.trID, m.trID),
                KafkaHeader(KafkaHeaderName.receivedAt, String(m.receivedAt)),
                KafkaHeader(KafkaHeaderName.record, "\(m.recordIndex + 1)/\(m.recordCount)"),
            ])
    }

    /// A dead letter: key = tr_id (or `unknown`), value = the raw message, reason and detail in headers, CreateTime
    /// = receive time.
    public init(_ d: DeadLetter) {
        var headers = [
            KafkaHeader(KafkaHeaderName.deadLetterReason, d.reason.name),
            KafkaHeader(KafkaHeaderName.deadLetterDetail, d.detail),
            KafkaHeader(KafkaHeaderName.receivedAt, String(d.receivedAt)),
        ]
        if let trID = d.trID { headers.append(KafkaHeader(KafkaHeaderName.trID, trID)) }
        self.init(
            topic: d.topic, key: Array(d.key.utf8), value: Array(d.raw.utf8),
            timestampMs: Self.milliseconds(d.receivedAt), headers: headers)
    }

    static func milliseconds(_ ns: Int64) -> Int64 {
        ns >= 0 ? ns / 1_000_000 : (ns - 999_999) / 1_000_000
    }

    private static func encode(_ message: some SwiftProtobuf.Message) -> [UInt8] {
        // Serializing a proto3 message cannot fail (no required fields); an empty value would show up in tests.
        (try? message.serializedBytes()) ?? []
    }
}
