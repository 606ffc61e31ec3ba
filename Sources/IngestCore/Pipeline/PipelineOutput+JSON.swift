public import SwiftProtobuf

extension MarketEvent {
    /// The message in the standard Protobuf JSON mapping (lowerCamelCase names, int64 as strings).
    public func jsonString() -> String {
        let options = JSONEncodingOptions()
        switch self {
        case .tick(let t): return (try? t.jsonString(options: options)) ?? "{}"
        case .orderBook(let b): return (try? b.jsonString(options: options)) ?? "{}"
        case .notice(let n): return (try? n.jsonString(options: options)) ?? "{}"
        }
    }
}

extension PipelineOutput {
    /// One JSON line for `ingest-replay decode`: `{"topic","key","message"}` for market messages,
    /// `{"topic","key","reason","detail","raw"}` for dead letters, `nil` for control messages.
    public func jsonLine() -> String? {
        switch self {
        case .market(let m):
            return "{\"topic\":\(JSONText.quote(m.topic)),\"key\":\(JSONText.quote(m.key)),\"message\":\(m.event.jsonString())}"
        case .deadLetter(let d):
            return "{\"topic\":\(JSONText.quote(d.topic)),\"key\":\(JSONText.quote(d.key)),\"reason\":\(JSONText.quote(d.reason.name)),\"detail\":\(JSONText.quote(d.detail)),\"raw\":\(JSONText.quote(d.raw))}"
        case .control:
            return nil
        }
    }
}

extension ConsumedRecord {
    /// Decodes the value by topic for display: market topics as Protobuf JSON, anything else as text with headers.
    public func jsonLine(topics: TopicConfiguration) -> String {
        let keyText = JSONText.quote(String(decoding: key, as: UTF8.self))
        let head = "{\"topic\":\(JSONText.quote(topic)),\"partition\":\(partition),\"offset\":\(offset),\"key\":\(keyText)"
        let bytes = value
        var message: String?
        if topic == topics.resolvedTick {
            message = (try? TickData(serializedBytes: bytes)).flatMap { try? $0.jsonString() }
        } else if topic == topics.resolvedOrderBook {
            message = (try? OrderBook(serializedBytes: bytes)).flatMap { try? $0.jsonString() }
        } else if let notice = topics.resolvedNotice, topic == notice {
            message = (try? ExecutionNotice(serializedBytes: bytes)).flatMap { try? $0.jsonString() }
        }
        if let message { return head + ",\"message\":\(message)}" }
        let headerText = headers.map { "\(JSONText.quote($0.name)):\(JSONText.quote(String(decoding: $0.value, as: UTF8.self)))" }
            .joined(separator: ",")
        return head + ",\"headers\":{\(headerText)},\"value\":\(JSONText.quote(String(decoding: bytes, as: UTF8.self)))}"
    }
}
