import ArgumentParser
import IngestCore

@main
struct IngestReplay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest-replay",
        abstract: "Decode KIS messages and replay recordings through the same parser and Kafka producer as ingestd.",
        discussion: """
            Environment: KAFKA_BROKERS (default localhost:9092), KAFKA_TOPIC_TICK, KAFKA_TOPIC_ORDERBOOK, \
            KAFKA_TOPIC_DEADLETTER, KAFKA_TOPIC_NOTICE (unset: notices are not published), KAFKA_TOPIC_PREFIX, \
            KAFKA_PROPERTY_* (any librdkafka property, e.g. KAFKA_PROPERTY_LINGER_MS=20), LOG_LEVEL.
            """,
        subcommands: [Replay.self, Decode.self, Consume.self, Serve.self],
        defaultSubcommand: Replay.self
    )
}
