import Foundation
import SwiftProtobuf
import TestSupport
import Testing

@testable import IngestCore

/// 2025-07-30 09:00:00 KST, the receive time used for dateless order books in these tests.
let receiveTime: Int64 = 1_753_833_600_000_000_000

func run(_ messages: [String], topics: TopicConfiguration = TopicConfiguration(), at time: Int64 = receiveTime)
    -> (outputs: [PipelineOutput], stats: PipelineStats)
{
    var pipeline = FramePipeline(topics: topics)
    var outputs: [PipelineOutput] = []
    for m in messages { outputs += pipeline.process(m, receivedAt: time) }
    return (outputs, pipeline.stats)
}

func ticks(_ outputs: [PipelineOutput]) -> [TickData] {
    outputs.compactMap { if case .market(let m) = $0, case .tick(let t) = m.event { t } else { nil } }
}

func books(_ outputs: [PipelineOutput]) -> [OrderBook] {
    outputs.compactMap { if case .market(let m) = $0, case .orderBook(let b) = m.event { b } else { nil } }
}

func level(_ price: Double, _ quantity: Int64) -> BookLevel {
    var l = BookLevel()
    l.price = price
    l.quantity = quantity
    return l
}

func deadLetters(_ outputs: [PipelineOutput]) -> [DeadLetter] {
    outputs.compactMap { if case .deadLetter(let d) = $0 { d } else { nil } }
}

func tick(_ symbol: String, _ price: Double, _ volume: Int64, _ ts: Int64, _ change: Double, _ rate: Double) -> TickData {
    TickData.with {
        $0.symbol = symbol
        $0.price = price
        $0.volume = volume
        $0.timestamp = ts
        $0.change = change
        $0.changeRate = rate
    }
}

@Suite struct DomesticTradeTests {
    @Test func officialExample() throws {
        let item = try Corpus.item("H0STCNT0.txt", "trade-official-005930")
        let (outputs, stats) = run([item.lines[1]])
        #expect(ticks(outputs) == [tick("005930", 71900, 1, 1_686_530_034_000_000_000, -100, -0.14)])
        #expect(stats.messagesByTopic == ["market.tick": 1])
        #expect(stats.widthsByTrID == ["H0STCNT0": [46: 1]])
        guard case .market(let m) = outputs[0] else { Issue.record("not a market message"); return }
        #expect(m.key == "005930")
        #expect(m.trID == "H0STCNT0")
        #expect(m.topic == "market.tick")
    }

    @Test func bareOfficialPayloadIsNotAMessage() throws {
        let item = try Corpus.item("H0STCNT0.txt", "trade-official-005930")
        let (outputs, _) = run([item.lines[0]])
        #expect(deadLetters(outputs).map(\.reason) == [.unknownMessageType])
        #expect(deadLetters(outputs).first?.raw == item.lines[0])
    }

    @Test func sk_hynix() throws {
        let item = try Corpus.item("H0STCNT0.txt", "trade-000660")
        #expect(ticks(run(item.lines).outputs) == [tick("000660", 93000, 1, 1_661_833_728_000_000_000, 500, 0.54)])
    }

    @Test func threeRecordFrameGivesThreeTicksInOrder() throws {
        let item = try Corpus.item("H0STCNT0.txt", "trade-3-records-005930")
        let (outputs, stats) = run(item.lines)
        let ts: Int64 = 1_753_836_471_000_000_000
        #expect(
            ticks(outputs) == [
                tick("005930", 71950, 1, ts, 1350, 1.91), tick("005930", 71900, 2, ts, 1300, 1.84),
                tick("005930", 72000, 75, ts, 1400, 1.98),
            ])
        let positions = outputs.compactMap { if case .market(let m) = $0 { "\(m.recordIndex)/\(m.recordCount)" } else { nil } }
        #expect(positions == ["0/3", "1/3", "2/3"])
        #expect(stats.recordsByTrID == ["H0STCNT0": 3])
        #expect(stats.framesByTrID == ["H0STCNT0": 1])
    }

    /// The 47-field records seen live in 2026: one extra trailing field per record, in a multi-record frame.
    @Test func driftedWidth47() throws {
        let item = try Corpus.item("H0STCNT0.txt", "trade-3-records-005930")
        let payload = String(item.lines[0].dropFirst("0|H0STCNT0|003|".count))
        let fields = payload.split(separator: "^", omittingEmptySubsequences: false)
        #expect(fields.count == 138)
        var widened: [Substring] = []
        for r in 0..<3 { widened += fields[(r * 46)..<((r + 1) * 46)] + ["2"] }
        let frame = "0|H0STCNT0|003|" + widened.joined(separator: "^")
        let (outputs, stats) = run([frame])
        #expect(ticks(outputs).map(\.volume) == [1, 2, 75])
        #expect(ticks(outputs).map(\.price) == [71950, 71900, 72000])
        #expect(stats.widthsByTrID == ["H0STCNT0": [47: 1]])
        #expect(stats.recordsWithExtraFields == ["H0STCNT0": 3])
        #expect(deadLetters(outputs).isEmpty)
    }
}

@Suite struct OrderBookTests {
    @Test func officialExample() throws {
        let item = try Corpus.item("H0STASP0.txt", "book-official-005930")
        let (outputs, stats) = run([item.lines[1]])
        let b = try #require(books(outputs).first)
        #expect(b.symbol == "005930")
        // 09:37:30 KST on the KST date of the receive time (2025-07-30).
        #expect(b.timestamp == 1_753_835_850_000_000_000)
        #expect(b.asks.count == 10 && b.bids.count == 10)
        #expect(b.asks.first == level(71900, 91918))
        #expect(b.asks.last == level(72800, 104229))
        #expect(b.bids.first == level(71800, 95221))
        #expect(b.bids[1] == level(71700, 159371))
        #expect(b.bids.last == level(70900, 158171))
        #expect(b.asks.map(\.quantity).reduce(0, +) == 1_159_362)
        #expect(b.bids.map(\.quantity).reduce(0, +) == 2_095_167)
        #expect(stats.bookTotalMismatches == 0)
        #expect(stats.messagesByTopic == ["market.orderbook": 1])
    }

    @Test func dateComesFromTheReceiveTimeNotTheClock() throws {
        let item = try Corpus.item("H0STASP0.txt", "book-official-005930")
        // 2023-06-11T15:30:00Z is 2023-06-12 00:30 KST: the book is dated the 12th.
        let (outputs, _) = run([item.lines[1]], at: 1_686_497_400_000_000_000)
        #expect(books(outputs).first?.timestamp == 1_686_530_250_000_000_000)  // 2023-06-12 09:37:30 KST
    }

    @Test func sixtyTwoFieldLayout() throws {
        let item = try Corpus.item("H0STASP0.txt", "book-62-005930-143354")
        let (outputs, stats) = run(item.lines)
        let b = try #require(books(outputs).first)
        #expect(b.timestamp == 1_753_853_634_000_000_000)
        #expect(b.asks.first == level(324000, 34364))
        #expect(b.bids.first == level(323500, 28602))
        #expect(stats.widthsByTrID == ["H0STASP0": [62: 1]])
        #expect(stats.recordsWithExtraFields == ["H0STASP0": 1])
    }

    @Test func everyFramedBookInTheCorpusMaps() throws {
        let framed = try Corpus.items("H0STASP0.txt").flatMap(\.lines).filter { $0.hasPrefix("0|") }
        #expect(framed.count == 5)
        let (outputs, stats) = run(framed)
        #expect(books(outputs).count == 5)
        #expect(deadLetters(outputs).isEmpty)
        #expect(stats.widthsByTrID == ["H0STASP0": [59: 4, 62: 1]])
        #expect(stats.bookTotalMismatches == 0)
        for b in books(outputs) {
            #expect(zip(b.asks, b.asks.dropFirst()).allSatisfy { $0.price < $1.price }, "asks ascend from the best")
            #expect(zip(b.bids, b.bids.dropFirst()).allSatisfy { $0.price > $1.price }, "bids descend from the best")
        }
    }

    @Test func emptyLevelsAreLeftOut() throws {
        let item = try Corpus.item("H0STASP0.txt", "book-official-005930")
        var fields = item.lines[1].dropFirst("0|H0STASP0|001|".count).split(separator: "^", omittingEmptySubsequences: false)
        for level in 8...10 {
            fields[2 + level] = "0"
            fields[22 + level] = "0"
        }
        let (outputs, _) = run(["0|H0STASP0|001|" + fields.joined(separator: "^")])
        let b = try #require(books(outputs).first)
        #expect(b.asks.count == 7)
        #expect(b.bids.count == 10)
    }
}

@Suite struct OverseasTests {
    @Test func usTrade() throws {
        let item = try Corpus.item("HDFSCNT0.txt", "trade-us-AAPL")
        let (outputs, _) = run(item.lines)
        #expect(ticks(outputs) == [tick("DNASAAPL", 259.02, 10, 1_735_300_949_000_000_000, 0, 0)])
    }

    @Test func usBook() {
        // HDFSASP0, 71 fields: 11 header fields then 10 levels of PBID PASK VBID VASK DBID DASK.
        var fields = ["DNASAAPL", "AAPL", "4", "20241227", "070229", "20241227", "210229", "1000", "2000", "0", "0"]
        for level in 1...10 {
            fields += [String(format: "%.4f", 259.0 - Double(level) * 0.01), String(format: "%.4f", 259.0 + Double(level) * 0.01),
                       "\(level * 10)", "\(level * 20)", "0", "0"]
        }
        #expect(fields.count == 71)
        let (outputs, _) = run(["0|HDFSASP0|001|" + fields.joined(separator: "^")])
        let b = books(outputs).first
        #expect(b?.symbol == "DNASAAPL")
        #expect(b?.timestamp == 1_735_300_949_000_000_000)
        #expect(b?.bids.first == level(258.99, 10))
        #expect(b?.asks.first == level(259.01, 20))
        #expect(b?.asks.last == level(259.10, 200))
    }
}

@Suite struct CorpusTests {
    /// Every message line of the public corpus turns into exactly the expected kind of output.
    @Test func everyLineIsAccountedFor() throws {
        var all: [String] = []
        for file in Corpus.files { all += try Corpus.items(file).flatMap(\.lines) }
        let (outputs, stats) = run(all, topics: TopicConfiguration(notice: "market.notice"))
        #expect(stats.messages == all.count)
        let markets = outputs.filter { if case .market = $0 { true } else { false } }.count
        let controls = outputs.filter { if case .control = $0 { true } else { false } }.count
        let dead = deadLetters(outputs)
        // 6 ticks (1 + 1 + 3 + AAPL), 5 books, 1 notice.
        #expect(markets == 12)
        #expect(stats.messagesByTopic == ["market.tick": 6, "market.orderbook": 5, "market.notice": 1])
        // 7 acks/PINGPONG/errors in control.txt plus the notice ack.
        #expect(controls == 8)
        #expect(Dictionary(grouping: dead, by: \.reason.name).mapValues(\.count) == [
            "unknown_message_type": 3,  // bare payloads printed without a frame header
            "unmapped_tr_id": 7,  // other-tr.txt
            "bad_control_message": 7,  // REST bodies of rest.txt are not WebSocket control messages
        ])
        // Every input message produced at least one output: nothing is silently dropped.
        #expect(markets + controls + dead.count >= all.count)
    }

    @Test func otherTRsAreDeadLetteredWithTheirTrID() throws {
        let lines = try Corpus.items("other-tr.txt").flatMap(\.lines)
        let dead = deadLetters(run(lines).outputs)
        #expect(dead.count == lines.count)
        #expect(Set(dead.compactMap(\.trID)) == ["H0STANC0", "H0UPCNT0", "H0STOUP0", "H0STNAV0", "H0STMKO0", "H0EUCNT0", "H0MFCNT0"])
        #expect(dead.allSatisfy { $0.reason == .unmappedTrID && $0.topic == "market.deadletter" })
        #expect(dead.map(\.raw) == lines)
    }
}
