import Foundation
import SwiftProtobuf
import TestSupport
import Testing

@testable import IngestCore

@Suite struct KafkaRecordTests {
    @Test func marketRecord() throws {
        let item = try Corpus.item("H0STCNT0.txt", "trade-3-records-005930")
        let records = run(item.lines).outputs.compactMap { KafkaRecord($0) }
        #expect(records.count == 3)
        let r = records[1]
        #expect(r.topic == "market.tick")
        #expect(r.key == Array("005930".utf8))
        #expect(r.timestampMs == 1_753_836_471_000)
        #expect(r.headers == [
            KafkaHeader("tr_id", "H0STCNT0"), KafkaHeader("recv_time_ns", String(receiveTime)), KafkaHeader("record", "2/3"),
        ])
        let decoded = try TickData(serializedBytes: r.value)
        #expect(decoded == tick("005930", 71900, 2, 1_753_836_471_000_000_000, 1300, 1.84))
    }

    @Test func deadLetterRecord() {
        let records = run(["0|H0XXCNT0|001|a^b"]).outputs.compactMap { KafkaRecord($0) }
        #expect(records.count == 1)
        let r = records[0]
        #expect(r.topic == "market.deadletter")
        #expect(r.key == Array("H0XXCNT0".utf8))
        #expect(r.value == Array("0|H0XXCNT0|001|a^b".utf8))
        #expect(r.timestampMs == receiveTime / 1_000_000)
        #expect(r.headers.first == KafkaHeader("dlq.reason", "unmapped_tr_id"))
        #expect(r.headers.contains(KafkaHeader("tr_id", "H0XXCNT0")))
    }

    @Test func controlHasNoRecord() {
        #expect(run(["{\"header\":{\"tr_id\":\"PINGPONG\",\"datetime\":\"20230502221924\"}}"]).outputs.compactMap { KafkaRecord($0) }.isEmpty)
    }

    @Test func topicPrefix() throws {
        let item = try Corpus.item("H0STCNT0.txt", "trade-000660")
        let (outputs, _) = run(item.lines + ["junk"], topics: TopicConfiguration(prefix: "replay."))
        #expect(outputs.compactMap { KafkaRecord($0)?.topic } == ["replay.market.tick", "replay.market.deadletter"])
    }

    @Test func jsonLineUsesTheProtobufJSONMapping() throws {
        let item = try Corpus.item("H0STCNT0.txt", "trade-official-005930")
        let line = try #require(run([item.lines[1]]).outputs.first?.jsonLine())
        #expect(line == #"{"topic":"market.tick","key":"005930","message":{"symbol":"005930","price":71900.0,"volume":"1","timestamp":"1686530034000000000","change":-100.0,"changeRate":-0.14}}"#)
    }
}

@Suite struct RdKafkaVersionTests {
    @Test func tooOldVersionFailsClearly() {
        do {
            try RdKafkaVersion.check(version: 0x0200_02FF, text: "2.0.2")
            Issue.record("2.0.2 was accepted")
        } catch {
            #expect(error.code == "version")
            #expect(error.message.contains("librdkafka 2.0.2 is loaded"))
            #expect(error.message.contains("needs librdkafka 2.2.0 or newer"))
            #expect(error.message.contains("scripts/setup"))
        }
    }

    @Test func supportedVersionsPass() throws {
        try RdKafkaVersion.check(version: 0x0202_00FF, text: "2.2.0")
        try RdKafkaVersion.check(version: 0x0208_00FF, text: "2.8.0")
        #expect(RdKafkaVersion.describe(0x0208_00FF) == "2.8.0")
        #expect(throws: KafkaError.self) { try RdKafkaVersion.check(version: 0x0201_09FF, text: "2.1.9") }
    }

    @Test func loadedLibraryIsNewEnough() throws {
        try RdKafkaVersion.checkLoaded()
        #expect(RdKafkaVersion.loaded.number >= RdKafkaVersion.minimum)
    }
}

@Suite struct KafkaConfigurationTests {
    @Test func defaults() {
        let c = KafkaConfiguration(environment: [:])
        #expect(c.brokers == "localhost:9092")
        #expect(c.properties["acks"] == "all")
        #expect(c.properties["enable.idempotence"] == "true")
        #expect(c.properties["compression.type"] == "snappy")
        #expect(c.properties["partitioner"] == "murmur2_random")
        #expect(c.properties["enable.metrics.push"] == "false")
        #expect(KafkaConfiguration(environment: ["KAFKA_PROPERTY_ENABLE_METRICS_PUSH": "true"]).properties["enable.metrics.push"] == "true")
    }

    @Test func environmentOverrides() {
        let c = KafkaConfiguration(environment: [
            "KAFKA_BROKERS": "a:1,b:2", "KAFKA_PROPERTY_LINGER_MS": "20", "KAFKA_PROPERTY_COMPRESSION_TYPE": "lz4",
            "KAFKA_PROPERTY_SASL_MECHANISMS": "PLAIN", "KAFKA_PROPERTY_SOME__ODD_NAME": "x", "OTHER": "y",
        ])
        #expect(c.brokers == "a:1,b:2")
        #expect(c.properties["linger.ms"] == "20")
        #expect(c.properties["compression.type"] == "lz4")
        #expect(c.properties["sasl.mechanisms"] == "PLAIN")
        #expect(c.properties["some_odd.name"] == "x")
        #expect(c.librdkafkaProperties["bootstrap.servers"] == "a:1,b:2")
    }

    @Test func invalidPropertyIsNamed() {
        do {
            _ = try KafkaProducer(configuration: KafkaConfiguration(properties: ["linger.ms": "soon"]))
            Issue.record("an invalid linger.ms was accepted")
        } catch {
            #expect(error.code == "configuration")
            #expect(error.message.contains("linger.ms=soon"))
            #expect(error.message.contains("KAFKA_PROPERTY_LINGER_MS"))
        }
    }

    @Test func secretPropertyValueIsNotShown() {
        do {
            _ = try KafkaProducer(configuration: KafkaConfiguration(properties: ["sasl.password.bogus": "hunter2"]))
            Issue.record("an unknown property was accepted")
        } catch {
            #expect(!error.message.contains("hunter2"))
        }
    }

    @Test func topics() {
        let t = TopicConfiguration(environment: ["KAFKA_TOPIC_TICK": "t", "KAFKA_TOPIC_NOTICE": "n", "KAFKA_TOPIC_PREFIX": "p."])
        #expect(t.allTopics == ["p.t", "p.market.orderbook", "p.market.deadletter", "p.n"])
        #expect(TopicConfiguration(environment: [:]).notice == nil)
    }
}

@Suite struct TimeParsingTests {
    @Test func instants() {
        #expect(TimeParsing.nanoseconds("1753833600000000000") == 1_753_833_600_000_000_000)
        #expect(TimeParsing.nanoseconds("2025-07-30T09:00:00+09:00") == 1_753_833_600_000_000_000)
        #expect(TimeParsing.nanoseconds("2025-07-30T00:00:00Z") == 1_753_833_600_000_000_000)
        #expect(TimeParsing.nanoseconds("2025-07-30T00:00:00.123456789Z") == 1_753_833_600_123_456_789)
        #expect(TimeParsing.nanoseconds("2025-07-30T00:00:00.5+00:00") == 1_753_833_600_500_000_000)
        #expect(TimeParsing.nanoseconds("2025-07-30") == nil)
        #expect(TimeParsing.nanoseconds("yesterday") == nil)
        #expect(TimeParsing.iso8601(nanoseconds: 1_753_833_600_123_456_789) == "2025-07-30T00:00:00.123456789Z")
    }

    @Test func durations() {
        #expect(TimeParsing.duration("5s") == .seconds(5))
        #expect(TimeParsing.duration("10m") == .seconds(600))
        #expect(TimeParsing.duration("24h") == .seconds(86400))
        #expect(TimeParsing.duration("1h30m") == .seconds(5400))
        #expect(TimeParsing.duration("250ms") == .milliseconds(250))
        #expect(TimeParsing.duration("1.5s") == .milliseconds(1500))
        #expect(TimeParsing.duration("100us") == .microseconds(100))
        #expect(TimeParsing.duration("0") == .zero)
        #expect(TimeParsing.duration("5") == nil)
        #expect(TimeParsing.duration("5 s") == nil)
        #expect(TimeParsing.duration("5d") == nil)
        #expect(TimeParsing.duration("") == nil)
        #expect(TimeParsing.format(.seconds(150)) == "2m30s")
        #expect(TimeParsing.format(.milliseconds(200)) == "200ms")
        #expect(TimeParsing.format(.seconds(23 * 3600)) == "23h")
        #expect(TimeParsing.format(.milliseconds(1500)) == "1.5s")
        for text in ["5s", "10m", "24h", "1h30m", "250ms", "2m30s"] {
            #expect(TimeParsing.format(TimeParsing.duration(text)!) == text)
        }
    }
}

@Suite struct FastEncodingTests {
    /// The hand-written TickData encoder writes exactly what SwiftProtobuf writes.
    @Test func tickEncoderMatchesSwiftProtobuf() throws {
        var rng = SystemRandomNumberGenerator()
        let specials: [Double] = [0, -0.0, 1, -1, 71900, 0.05, -0.14, .infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude]
        let ints: [Int64] = [0, 1, -1, 127, 128, 300, .max, .min, 1_686_530_034_000_000_000, -5]
        var cases: [TickData] = []
        for symbol in ["", "005930", "DNASAAPL", "가나다", String(repeating: "x", count: 200)] {
            for _ in 0..<40 {
                var t = TickData()
                t.symbol = symbol
                t.price = Bool.random(using: &rng) ? specials.randomElement(using: &rng)! : Double.random(in: -1e6...1e6, using: &rng)
                t.volume = Bool.random(using: &rng) ? ints.randomElement(using: &rng)! : Int64.random(in: .min ... .max, using: &rng)
                t.timestamp = ints.randomElement(using: &rng)!
                t.change = specials.randomElement(using: &rng)!
                t.changeRate = Double.random(in: -30...30, using: &rng)
                cases.append(t)
            }
        }
        for t in cases {
            let reference: [UInt8] = try t.serializedBytes()
            #expect(FastEncoding.tick(t) == reference, "\(t)")
        }
        // NaN: SwiftProtobuf writes any non-zero bit pattern.
        var nan = TickData()
        nan.price = .nan
        #expect(FastEncoding.tick(nan) == (try nan.serializedBytes() as [UInt8]))
    }

    /// The hand-written OrderBook encoder writes exactly what SwiftProtobuf writes.
    @Test func bookEncoderMatchesSwiftProtobuf() throws {
        var rng = SystemRandomNumberGenerator()
        let quantities: [Int64] = [0, 1, 127, 128, 16_384, .max, -1, .min, 1_205_652]
        for levels in [0, 1, 3, 10] {
            for _ in 0..<60 {
                var b = OrderBook()
                b.symbol = ["", "005930", "DNASAAPL"].randomElement(using: &rng)!
                b.timestamp = [0, 1_753_836_471_000_000_000, -1].randomElement(using: &rng)!
                func level() -> Kis_Market_V1_Level {
                    var l = Kis_Market_V1_Level()
                    l.price = [0, -0.0, 71900, 0.5, Double.random(in: 0...1e6, using: &rng)].randomElement(using: &rng)!
                    l.quantity = Bool.random(using: &rng) ? quantities.randomElement(using: &rng)! : Int64.random(in: 0...10_000_000, using: &rng)
                    return l
                }
                b.bids = (0..<levels).map { _ in level() }
                b.asks = (0..<Int.random(in: 0...levels, using: &rng)).map { _ in level() }
                let reference: [UInt8] = try b.serializedBytes()
                #expect(FastEncoding.book(b) == reference, "\(b)")
            }
        }
    }

    @Test func headerDigits() {
        for v: Int64 in [0, 1, 9, 10, -1, -10, 1_753_836_471_123_456_789, .max, .min, 999, -999] {
            #expect(FastEncoding.decimal(v) == Array(String(v).utf8))
        }
        for (i, n) in [(1, 1), (2, 3), (9, 9), (10, 12), (1, 10), (123, 456)] {
            #expect(FastEncoding.position(i, of: n) == Array("\(i)/\(n)".utf8))
        }
    }

    /// The hot path's header digits (`WireWriter`, eight at a time, whole words stored): every digit count and sign,
    /// and random values, as `String(v)` writes them, with nothing written past the digits that is kept.
    @Test func wireWriterDigits() {
        var values: [Int64] = [0, 1, 9, 10, 99, 100, .max, .min, -1, -9, -10]
        var power: Int64 = 1
        for _ in 0..<18 {
            power *= 10
            values += [power - 1, power, power + 1, -(power - 1), -power]
        }
        var rng = SplitMix64(seed: 19)
        for _ in 0..<20_000 { values.append(Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64)) }
        for v in values {
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { scratch in
                var w = WireWriter(scratch.baseAddress!)
                w.decimal(v)
                #expect(Array(w.bytes) == Array(String(v).utf8), "\(v)")
            }
        }
        for (i, n) in [(1, 10), (10, 12), (123, 456), (99_999_999, 100_000_000)] {
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { scratch in
                var w = WireWriter(scratch.baseAddress!)
                w.position(i, of: n)
                #expect(Array(w.bytes) == Array("\(i)/\(n)".utf8))
            }
        }
        // With the digits above the low eight kept from value to value: the values above in their (random) order,
        // then receive times 50 µs apart across several 100 ms boundaries, as a feed gives them.
        var prefix = DecimalPrefix()
        var times: [Int64] = []
        var t: Int64 = 1_753_836_471_099_000_000
        for _ in 0..<5000 {
            t += 50_000
            times.append(t)
        }
        for v in values + times + [0, 99_999_999, 100_000_000, 100_000_000, .max, .max - 1, -5, 100_000_001] {
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { scratch in
                var w = WireWriter(scratch.baseAddress!)
                w.byte(UInt8(ascii: "x"))
                w.decimal(v, prefix: &prefix)
                #expect(Array(w.bytes) == Array("x\(v)".utf8), "\(v)")
            }
        }
    }

    /// `WireWriter.varint` (a byte at a time up to five bytes, eight bytes in one store above) against the plain
    /// loop, for every length from 1 to 10 bytes and random values; and the two-word copy of short fields.
    @Test func wireWriterVarintsAndShortFields() {
        func reference(_ value: UInt64) -> [UInt8] {
            var v = value
            var out: [UInt8] = []
            while v >= 0x80 {
                out.append(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            out.append(UInt8(v))
            return out
        }
        var values: [UInt64] = [0, 1, 0x7F, 0x80, .max, .max - 1, 1 << 63, (1 << 63) - 1]
        for bits in 1...64 {
            let top: UInt64 = 1 << UInt64(bits - 1)
            values += [top, top | (top - 1), top | 1]
        }
        var rng = SplitMix64(seed: 23)
        for _ in 0..<20_000 { values.append(rng.next() >> (rng.next() % 64)) }
        for v in values {
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { scratch in
                var w = WireWriter(scratch.baseAddress!)
                w.byte(0x08)
                w.varint(v)
                w.byte(0xEE)
                #expect(Array(w.bytes) == [0x08] + reference(v) + [0xEE], "\(v)")
                #expect(WireWriter.varintSize(v) == reference(v).count, "\(v)")
            }
        }
        // A field followed by more bytes of its frame, so sixteen are readable from its start.
        let frame = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789^^^^^^^^^^^^^^^^".utf8)
        frame.withUnsafeBufferPointer { source in
            for length in 0...20 {
                let field = UnsafeBufferPointer(rebasing: source[3..<(3 + length)])
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { a in
                    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { b in
                        var fast = WireWriter(a.baseAddress!)
                        var plain = WireWriter(b.baseAddress!)
                        fast.lengthDelimited(1, field, sixteenReadable: true)
                        fast.byte(0xEE)
                        plain.lengthDelimited(1, field)
                        plain.byte(0xEE)
                        #expect(Array(fast.bytes) == Array(plain.bytes), "length \(length)")
                        #expect(Array(fast.bytes) == [0x0A, UInt8(length)] + Array(field) + [0xEE], "length \(length)")
                    }
                }
            }
        }
    }
}
