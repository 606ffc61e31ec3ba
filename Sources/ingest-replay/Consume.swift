import ArgumentParser
import Foundation
import IngestCore

struct Consume: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the market topics back from Kafka and show what landed.",
        discussion: "Reads from the beginning until --expect messages arrived or nothing arrived for --idle."
    )

    @Option(help: "Comma-separated topics (default: the tick, order-book, dead-letter and notice topics).")
    var topics: String?

    @Option(help: "Stop once this many messages were read.")
    var expect: Int?

    @Option(help: "Stop after this long without a message (Go duration).")
    var idle: String = "3s"

    @Option(help: "Print the first N decoded messages of each topic.")
    var show: Int = 3

    func run() throws {
        ProgramSupport.bootstrapLogging()
        ProgramSupport.requireSupportedLibrdkafka()
        let environment = ProcessInfo.processInfo.environment
        let topicConfiguration = TopicConfiguration(environment: environment)
        guard let idleDuration = TimeParsing.duration(idle) else {
            throw ValidationError("--idle \"\(idle)\" is not a duration such as 3s or 500ms")
        }
        let names = topics.map { $0.split(separator: ",").map(String.init) } ?? topicConfiguration.allTopics
        let brokers = KafkaConfiguration(environment: environment).brokers
        let consumer = try KafkaConsumer(brokers: brokers)
        let records = try consumer.readAll(names, expected: expect, idle: idleDuration, limit: .seconds(600))
        var byTopic: [String: [ConsumedRecord]] = [:]
        for r in records { byTopic[r.topic, default: []].append(r) }
        print("consumed \(records.count) messages from \(brokers)")
        for name in names {
            let list = byTopic[name] ?? []
            let keys = Set(list.map { String(decoding: $0.key, as: UTF8.self) })
            let partitions = Set(list.map(\.partition))
            print("  \(name): \(list.count) messages, \(keys.count) keys, \(partitions.count) partitions")
        }
        for name in names {
            for r in (byTopic[name] ?? []).prefix(show) { print(r.jsonLine(topics: topicConfiguration)) }
        }
    }
}
