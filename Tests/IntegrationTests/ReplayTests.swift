import Foundation
import IngestCore
import Testing

/// The committed fixture session.
let fixtureSession = Binaries.repositoryRoot.appendingPathComponent("fixtures/session-small.sqlite").path

/// A Kafka message with the topic prefix stripped, for comparing replays made into different namespaces.
struct Landed: Equatable, Hashable {
    var topic: String
    var partition: Int32
    var key: [UInt8]
    var value: [UInt8]
    var timestampMs: Int64
    var headers: [KafkaHeader]
}

func landed(_ records: [ConsumedRecord], prefix: String) -> [Landed] {
    records.sorted { ($0.topic, $0.partition, $0.offset) < ($1.topic, $1.partition, $1.offset) }.map {
        Landed(topic: String($0.topic.dropFirst(prefix.count)), partition: $0.partition, key: $0.key, value: $0.value,
               timestampMs: $0.timestampMs, headers: $0.headers)
    }
}

@Suite(.serialized) struct ReplayTests {
    /// Replays the fixture into the real broker and reads it back.
    func replay(prefix: String, options: ReplayOptions = ReplayOptions()) throws -> (ReplaySummary, [ConsumedRecord]) {
        let brokers = try LocalServices.kafkaBrokers
        var options = options
        options.topics = TopicConfiguration(notice: "market.notice", prefix: prefix)
        let producer = try KafkaProducer(configuration: KafkaConfiguration(brokers: brokers))
        let summary = try Replayer(reader: try RecordingReader(path: fixtureSession), options: options).run { output in
            if let record = KafkaRecord(output) { try producer.sendWaiting(record) }
        }
        #expect(producer.close(timeout: .seconds(60)) == 0)
        #expect(producer.counters.failed == 0)
        #expect(producer.counters.delivered == summary.messages)
        let got = try KafkaConsumer(brokers: brokers).readAll(options.topics.allTopics, expected: summary.messages, idle: .seconds(5), limit: .seconds(120))
        return (summary, got)
    }

    /// synth → recording → replay to the broker → consume: exactly the messages a direct decode of the recorded frames
    /// gives, message for message.
    @Test func roundTripMatchesDirectDecode() throws {
        // The direct decode: the recorded inbound messages through a fresh pipeline, by hand.
        var pipeline = FramePipeline(topics: TopicConfiguration(notice: "market.notice"))
        var expected: [KafkaRecord] = []
        try RecordingReader(path: fixtureSession).forEach { row in
            if row.kind == .connect { pipeline.resetKeys() }
            guard row.kind.direction == .inbound else { return }
            pipeline.process(row.body, receivedAt: row.receivedAt) { if let r = KafkaRecord($0) { expected.append(r) } }
        }
        let prefix = LocalServices.uniquePrefix("roundtrip")
        let (summary, got) = try replay(prefix: prefix)
        #expect(got.count == expected.count)
        #expect(summary.messages == expected.count)
        #expect(summary.messagesByTopic[prefix + "market.tick"] == 5383)
        #expect(summary.messagesByTopic[prefix + "market.orderbook"] == 2616)
        #expect(summary.messagesByTopic[prefix + "market.notice"] == 6)
        #expect(summary.deadLettersByReason == ["record_too_short": 1, "bad_record_count": 1, "unmapped_tr_id": 1,
                                                "unknown_message_type": 1, "missing_key": 1])
        // Message for message, per key in order.
        func byKey(_ items: [(String, [UInt8], [UInt8], Int64, [KafkaHeader])]) -> [String: [String]] {
            Dictionary(grouping: items, by: { "\($0.0)|\($0.1)" }).mapValues { $0.map { "\($0.2)|\($0.3)|\($0.4)" } }
        }
        let want = byKey(expected.map { ($0.topic, $0.key, $0.value, $0.timestampMs, $0.headers) })
        let have = byKey(got.sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
            .map { (String($0.topic.dropFirst(prefix.count)), $0.key, $0.value, $0.timestampMs, $0.headers) })
        #expect(want == have)
        // Order books are dated from the recorded receive time (2025-07-30 KST), never from today.
        let books = got.filter { $0.topic == prefix + "market.orderbook" }
        #expect(books.allSatisfy { (1_753_833_600_000...1_753_833_900_000).contains($0.timestampMs) })
    }

    /// Two replays with the same options: every byte of key, value, headers, timestamp and the partition agree.
    @Test func replaysAreDeterministic() throws {
        let p1 = LocalServices.uniquePrefix("det1")
        let p2 = LocalServices.uniquePrefix("det2")
        let (s1, a) = try replay(prefix: p1)
        let (s2, b) = try replay(prefix: p2)
        #expect(s1.messages == s2.messages)
        let la = landed(a, prefix: p1)
        let lb = landed(b, prefix: p2)
        #expect(la.count == s1.messages)
        #expect(la == lb)
        print("determinism: \(la.count) messages replayed twice, \(zip(la, lb).filter { $0 != $1 }.count) differences")
    }

    /// A window and a symbol filter replay exactly that part.
    @Test func windowAndFilters() throws {
        let from: Int64 = 1_753_833_660_000_000_000  // 09:01:00 KST
        let to: Int64 = 1_753_833_720_000_000_000  // 09:02:00 KST
        var count = 0
        let summary = try Replayer(reader: try RecordingReader(path: fixtureSession),
                                   options: ReplayOptions(from: from, to: to, symbols: ["005930"], trIDs: ["H0STCNT0"])).run { output in
            count += 1
            guard case .market(let m) = output, case .tick = m.event else { Issue.record("unexpected \(output)"); return }
            #expect(m.key == "005930")
            #expect((from..<to).contains(m.receivedAt))
        }
        #expect(count > 50)
        #expect(summary.messages == count)
        #expect(summary.messagesFilteredOut > 0)
        #expect(summary.firstRecorded! >= from && summary.lastRecorded! < to)
    }
}
