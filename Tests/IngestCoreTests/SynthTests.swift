import Foundation
import Testing

@testable import IngestCore

@Suite struct SynthTests {
    static let from: Int64 = 1_753_833_600_000_000_000  // 2025-07-30 09:00 KST
    static let options = SynthOptions(seed: 7, symbols: ["005930", "000660"], from: from, to: from + 240_000_000_000)

    static func generate(_ o: SynthOptions = options) -> (rows: [RecordedMessage], summary: SynthSummary) {
        var rows: [RecordedMessage] = []
        let summary = SessionSynthesizer(options: o).generate { rows.append($0) }
        return (rows, summary)
    }

    @Test func deterministicFromTheSeed() {
        let a = Self.generate()
        let b = Self.generate()
        #expect(a.rows == b.rows)
        var other = Self.options
        other.seed = 8
        #expect(Self.generate(other).rows != a.rows)
    }

    @Test func receiveTimesIncreaseStrictly() {
        let rows = Self.generate().rows
        #expect(zip(rows, rows.dropFirst()).allSatisfy { $0.receivedAt < $1.receivedAt })
        #expect(rows.first!.receivedAt >= Self.from)
        #expect(rows.last!.receivedAt < Self.options.to + 1_000_000_000)
    }

    /// The market data makes sense: grid prices within limits, volumes that add up, books that sum to their totals.
    @Test func marketInvariants() throws {
        let rows = Self.generate().rows
        var lastCum: [String: Int64] = [:]
        var widths: [String: Set<Int>] = [:]
        var multi = 0
        var afterGap: Set<String> = []
        for row in rows {
            if row.kind == .gap { afterGap = Set(lastCum.keys) }
            guard row.kind == .data else { continue }
            let parts = row.body.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
            let fields = parts[3].split(separator: "^", omittingEmptySubsequences: false).map(String.init)
            // The planted malformed frames (bad count, truncated, unmapped) are the pipeline's business, not ours.
            guard let count = Int(parts[2]), count > 0, fields.count % count == 0,
                  let documented = TrLayout.known[String(parts[1])]?.documentedWidth, fields.count / count >= documented
            else { continue }
            let width = fields.count / count
            widths[String(parts[1]), default: []].insert(width)
            if parts[1] == "H0STCNT0" {
                if count > 1 { multi += 1 }
                for r in 0..<count {
                    let f = Array(fields[(r * width)..<((r + 1) * width)])
                    let price = try #require(Int(f[2]))
                    #expect(price % KRXTickSize.tick(at: price) == 0, "price \(price) off the grid")
                    let volume = try #require(Int64(f[12]))
                    let cum = try #require(Int64(f[13]))
                    #expect(volume > 0)
                    if let last = lastCum[f[0]], !afterGap.contains(f[0]) {
                        #expect(cum == last + volume, "ACML_VOL must be previous + CNTG_VOL")
                    } else if let last = lastCum[f[0]] {
                        #expect(cum >= last + volume)
                    }
                    lastCum[f[0]] = cum
                    afterGap.remove(f[0])
                    #expect(Int(f[17]) == Int(f[16])! - Int(f[15])!, "NTBY = SHNU - SELN")
                    let change = try #require(Int(f[4]))
                    #expect(f[3] == (change > 0 ? "2" : change < 0 ? "5" : "3") || f[3] == "1" || f[3] == "4")
                }
            } else if parts[1] == "H0STASP0" {
                let askQty = fields[23...32].map { Int($0)! }
                let bidQty = fields[33...42].map { Int($0)! }
                #expect(askQty.reduce(0, +) == Int(fields[43]))
                #expect(bidQty.reduce(0, +) == Int(fields[44]))
                let asks = fields[3...12].map { Int($0)! }.filter { $0 > 0 }
                let bids = fields[13...22].map { Int($0)! }.filter { $0 > 0 }
                #expect(zip(asks, asks.dropFirst()).allSatisfy { $0 < $1 })
                #expect(zip(bids, bids.dropFirst()).allSatisfy { $0 > $1 })
                #expect(asks[0] > bids[0])
            }
        }
        #expect(widths["H0STCNT0"] == [46, 47])
        #expect(widths["H0STASP0"] == [62, 63])
        #expect(multi > 10)
    }

    @Test func sessionShape() throws {
        let (rows, summary) = Self.generate()
        let kinds = rows.map(\.kind)
        #expect(kinds.first == .start || kinds.first == .connect)
        #expect(kinds.filter { $0 == .connect }.count == 2)
        #expect(summary.disconnects == 1)
        let d = try #require(kinds.firstIndex(of: .disconnect))
        #expect(kinds[d + 1] == .reconnect)
        #expect(kinds[d + 2] == .connect)
        #expect(kinds[d...].contains(.gap))
        #expect(kinds.filter { $0 == .subscribe }.count == 2 * Self.options.subscriptions.count)
        // PINGPONG about every 100 s, each echoed verbatim.
        let pings = rows.filter { $0.kind == .pingPong }
        #expect(pings.count == 2)
        for p in pings {
            let echo = try #require(rows.first { $0.kind == .pingPongEcho && $0.receivedAt > p.receivedAt })
            #expect(echo.body == p.body)
        }
        #expect(summary.malformed == 4)
        #expect(summary.multiRecordFrames > 0)
    }

    /// Through the real pipeline: every frame maps except the planted malformed ones and the notice that overtakes
    /// its ack after the reconnect; acks' keys decrypt every other notice.
    @Test func pipelineAcceptsTheSession() {
        let (rows, summary) = Self.generate()
        var pipeline = FramePipeline(topics: TopicConfiguration(notice: "market.notice"))
        for row in rows {
            if row.kind == .connect { pipeline.resetKeys() }
            guard row.kind.direction == .inbound else { continue }
            _ = pipeline.process(row.body, receivedAt: row.receivedAt)
        }
        let stats = pipeline.stats
        #expect(stats.deadLettersByReason == ["record_too_short": 1, "bad_record_count": 1, "unmapped_tr_id": 1,
                                              "unknown_message_type": 1, "missing_key": 1])
        #expect(stats.messagesByTopic["market.tick"] == summary.recordsByTrID["H0STCNT0"])
        #expect(stats.messagesByTopic["market.orderbook"] == summary.recordsByTrID["H0STASP0"])
        #expect(stats.messagesByTopic["market.notice"] == summary.recordsByTrID["H0STCNI0"])
        #expect(stats.bookTotalMismatches == 0)
        #expect(stats.fieldDefaults.isEmpty)
        #expect(stats.keysLearned == 2 * Self.options.subscriptions.count - 1)  // all acks but the OPSP0002
    }

    @Test func krxGrid() {
        #expect(KRXTickSize.tick(at: 1999) == 1)
        #expect(KRXTickSize.tick(at: 2000) == 5)
        #expect(KRXTickSize.tick(at: 71900) == 100)
        #expect(KRXTickSize.up(49950) == 50000)
        #expect(KRXTickSize.down(50000) == 49950)
        #expect(KRXTickSize.down(200_000) == 199_900)
        #expect(KRXTickSize.limits(previousClose: 71900) == (50400, 93400))
    }
}
