import Foundation

/// Where each kind of message is published.
public struct TopicConfiguration: Sendable, Equatable {
    /// Trades. Environment: `KAFKA_TOPIC_TICK`, default `market.tick`.
    public var tick: String
    /// Order books. Environment: `KAFKA_TOPIC_ORDERBOOK`, default `market.orderbook`.
    public var orderBook: String
    /// Unparseable or unmapped input, raw, with the reason in headers. Environment: `KAFKA_TOPIC_DEADLETTER`,
    /// default `market.deadletter`.
    public var deadLetter: String
    /// Decrypted execution notices: private account data, so `nil` (off) unless set. Environment:
    /// `KAFKA_TOPIC_NOTICE`.
    public var notice: String?
    /// Prepended to every topic (e.g. `replay.` to keep a replay out of production topics).
    public var prefix: String

    public init(
        tick: String = "market.tick", orderBook: String = "market.orderbook",
        deadLetter: String = "market.deadletter", notice: String? = nil, prefix: String = ""
    ) {
        self.tick = tick
        self.orderBook = orderBook
        self.deadLetter = deadLetter
        self.notice = notice
        self.prefix = prefix
    }

    var resolvedTick: String { prefix + tick }
    var resolvedOrderBook: String { prefix + orderBook }
    var resolvedDeadLetter: String { prefix + deadLetter }
    var resolvedNotice: String? { notice.map { prefix + $0 } }

    /// Every topic this configuration can publish to, prefix applied.
    public var allTopics: [String] {
        [resolvedTick, resolvedOrderBook, resolvedDeadLetter] + (resolvedNotice.map { [$0] } ?? [])
    }

    /// Reads the topic variables from an environment dictionary, defaulting each one.
    public init(environment: [String: String]) {
        func value(_ name: String) -> String? {
            guard let v = environment[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        self.init(
            tick: value("KAFKA_TOPIC_TICK") ?? "market.tick",
            orderBook: value("KAFKA_TOPIC_ORDERBOOK") ?? "market.orderbook",
            deadLetter: value("KAFKA_TOPIC_DEADLETTER") ?? "market.deadletter",
            notice: value("KAFKA_TOPIC_NOTICE"),
            prefix: value("KAFKA_TOPIC_PREFIX") ?? ""
        )
    }
}
