import Foundation
import TestSupport
import Testing

@testable import IngestCore

/// The hot path (`process(_:receivedAt:encoded:other:)`, wire mapping straight into Protobuf bytes) must give exactly
/// the Kafka messages and counters of the general path (`process(_:receivedAt:emit:)` + `KafkaRecord(_:)`), on real
/// frames, on the recorded session and on thousands of damaged frames.
@Suite struct FastPathEquivalenceTests {
    /// Runs the same messages through both paths (fresh pipelines), returns both message lists and both counters.
    static func bothPaths(_ messages: [(text: String, receivedAt: Int64, reconnect: Bool)], topics: TopicConfiguration)
        -> (general: [KafkaRecord], fast: [KafkaRecord], generalStats: PipelineStats, fastStats: PipelineStats, encoded: Int)
    {
        var general = FramePipeline(topics: topics)
        var fast = FramePipeline(topics: topics)
        var a: [KafkaRecord] = []
        var b: [KafkaRecord] = []
        var encoded = 0
        for m in messages {
            if m.reconnect {
                general.resetKeys()
                fast.resetKeys()
                continue
            }
            general.process(m.text, receivedAt: m.receivedAt) { output in
                if let r = KafkaRecord(output) { a.append(r) }
            }
            fast.process(
                m.text, receivedAt: m.receivedAt,
                encoded: { record in
                    encoded += 1
                    b.append(record.record)
                },
                other: { output in
                    if let r = KafkaRecord(output) { b.append(r) }
                })
        }
        return (a, b, general.stats, fast.stats, encoded)
    }

    static func expectSame(
        _ r: (general: [KafkaRecord], fast: [KafkaRecord], generalStats: PipelineStats, fastStats: PipelineStats, encoded: Int),
        _ what: String
    ) {
        #expect(r.general.count == r.fast.count, "\(what): message counts differ")
        for (i, (x, y)) in zip(r.general, r.fast).enumerated() where x != y {
            Issue.record("\(what): message \(i) differs:\n general \(x)\n fast    \(y)")
            break
        }
        #expect(r.generalStats == r.fastStats, "\(what): counters differ")
    }

    @Test func realFramesGiveTheSameMessages() throws {
        var messages: [(String, Int64, Bool)] = []
        for file in Corpus.files {
            for item in try Corpus.items(file) {
                messages += item.lines.map { ($0, receiveTime, false) }
            }
        }
        #expect(messages.count >= 30)
        let r = Self.bothPaths(messages, topics: TopicConfiguration(notice: "market.notice", prefix: "p."))
        #expect(r.encoded >= 10, "the hot path must actually carry the corpus's trades and books")
        Self.expectSame(r, "corpus")
    }

    @Test func recordedSessionGivesTheSameMessages() throws {
        let path = Corpus.root.appendingPathComponent("fixtures/session-small.sqlite").path
        var messages: [(String, Int64, Bool)] = []
        try RecordingReader(path: path).forEach { row in
            if row.kind == .connect { messages.append(("", 0, true)) }
            if row.kind.direction == .inbound { messages.append((row.body, row.receivedAt, false)) }
        }
        let r = Self.bothPaths(messages, topics: TopicConfiguration())
        #expect(r.encoded > 5000)
        #expect(r.generalStats.deadLetters > 0, "the session has malformed messages: both paths must dead-letter them")
        Self.expectSame(r, "session-small")
    }

    /// Frames with fields replaced by what KIS (or a broken proxy) might send: empty, placeholders, signs, overflow,
    /// non-ASCII, bad dates and times, extra and missing fields.
    @Test func damagedFramesGiveTheSameMessagesAndErrors() throws {
        var rng = SplitMix64(seed: 0x5EED_F00D)
        let junk = [
            "", "(null)", "nan", "-nan", "-0", "-0.0", "0", "0.0", "+1.5", "-1.5", "abc", "1e5", "99999999999999999999",
            "0.0000000000000000000001", "12345678901234567", "삼성", "\u{FFFD}", "20250231", "19691231", "22620101",
            "20250730", "240000", "235959", "096060", "1.2.3", "+", "-", " 1", String(repeating: "9", count: 40),
            "DNASAAPL", "005930", "123456789012345678901234567890123",
            // Short fields that the word-at-a-time number parsers see with their neighbours in the same word.
            "5.", ".5", "-.5", "+.", ".", "12.", "1..2", "--1", "1-", "-+1", "0-", "00000000", "9999999.", "^", "١٢",
        ]
        var base: [String] = []
        for file in ["H0STCNT0.txt", "H0STASP0.txt", "HDFSCNT0.txt"] {
            for item in try Corpus.items(file) { base += item.lines.filter { $0.hasPrefix("0|") } }
        }
        // No HDFSASP0 in the corpus: one built to the layout (11 header fields, 10 levels of 6).
        var us = ["DNASAAPL", "AAPL", "4", "20241227", "070229", "20241227", "210229", "1000", "2000", "0", "0"]
        for level in 1...10 {
            us += [String(format: "%.4f", 259.0 - Double(level) * 0.01), String(format: "%.4f", 259.0 + Double(level) * 0.01),
                   "\(level * 10)", "\(level * 20)", "0", "0"]
        }
        base.append("0|HDFSASP0|001|" + us.joined(separator: "^"))
        base.append("0|HDFSASP0|002|" + (us + us).joined(separator: "^"))
        #expect(base.count >= 6)
        var messages: [(String, Int64, Bool)] = []
        for round in 0..<3000 {
            let frame = base[Int(rng.next() % UInt64(base.count))]
            let parts = frame.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            var fields = parts[3].split(separator: "^", omittingEmptySubsequences: false).map(String.init)
            for _ in 0...(rng.next() % 4) {
                let i = Int(rng.next() % UInt64(fields.count))
                fields[i] = junk[Int(rng.next() % UInt64(junk.count))]
            }
            if round % 50 == 0 { fields.append("extra") }
            if round % 71 == 0 { fields.removeLast() }
            let time = receiveTime + Int64(rng.next() % 86_400_000_000_000)
            // The header too: counts of other widths or that do not divide the fields, and several records (the
            // fast path takes the 3-digit count and the shape KIS sends, the general path everything).
            var count = parts[2]
            var payload = fields.joined(separator: "^")
            switch round % 17 {
            case 0: count = "1"
            case 1: count = "0001"
            case 2: count = "000"
            case 3: count = "002"
            case 4, 5:
                // Several records, up to ones too many for the stack's offsets (more than 1 500 bytes).
                let n = 2 + Int(rng.next() % 12)
                count = String(format: "%03d", n)
                payload = (0..<n).map { _ in payload }.joined(separator: "^")
            case 6:
                // Many short fields in a short payload: more offsets than the stack holds.
                payload += String(repeating: "^", count: 300)
            default: break
            }
            messages.append(([parts[0], parts[1], count, payload].joined(separator: "|"), time, false))
        }
        let r = Self.bothPaths(messages, topics: TopicConfiguration())
        #expect(r.encoded > 300, "some damaged frames still map")
        #expect(r.generalStats.deadLetters > 300, "many damaged frames are dead letters")
        #expect(r.generalStats.fieldDefaults.values.reduce(0, +) > 0, "optional fields fell back to zero somewhere")
        Self.expectSame(r, "damaged frames")
    }
}
