import Foundation

/// What to generate.
public struct SynthOptions: Sendable {
    public var seed: UInt64
    /// KRX stock codes.
    public var symbols: [String]
    /// The window, nanoseconds since the epoch. Its first and last `burstSeconds` play the open and the close.
    public var from: Int64
    public var to: Int64
    /// Mean trades per second per symbol outside the bursts.
    public var tradesPerSecond: Double
    /// Mean order-book updates per second per symbol.
    public var booksPerSecond: Double
    /// HTS ID of the notice subscription.
    public var htsID: String
    public var burstSeconds: Int64
    /// Rate multiplier in the bursts.
    public var burstMultiplier: Double
    /// Simulate one disconnect, reconnect and resubscribe at 55 % of the window.
    public var disconnect: Bool
    /// Insert a few malformed messages.
    public var malformed: Bool

    public init(seed: UInt64, symbols: [String], from: Int64, to: Int64, tradesPerSecond: Double = 1.5,
                booksPerSecond: Double = 2, htsID: String = "SYNTHUSER", burstSeconds: Int64 = 60,
                burstMultiplier: Double = 4, disconnect: Bool = true, malformed: Bool = true) {
        self.seed = seed
        self.symbols = symbols
        self.from = from
        self.to = to
        self.tradesPerSecond = tradesPerSecond
        self.booksPerSecond = booksPerSecond
        self.htsID = htsID
        self.burstSeconds = burstSeconds
        self.burstMultiplier = burstMultiplier
        self.disconnect = disconnect
        self.malformed = malformed
    }

    /// The subscriptions the generated session makes (`TR:KEY`).
    public var subscriptions: [String] {
        symbols.flatMap { ["H0STCNT0:\($0)", "H0STASP0:\($0)"] } + ["H0STCNI0:\(htsID)"]
    }
}

/// What was generated.
public struct SynthSummary: Sendable, Equatable {
    public var rows = 0
    public var framesByTrID: [String: Int] = [:]
    public var recordsByTrID: [String: Int] = [:]
    public var multiRecordFrames = 0
    public var malformed = 0
    public var pingPongs = 0
    public var disconnects = 0
}

/// Generates a realistic KRX session, deterministically from a seed: the KRX tick grid, prices that random-walk
/// within the daily ±30 % limits, cumulative volumes that add up, books whose level quantities sum to the totals,
/// multi-record frames in bursts at the open and the close, H0STCNT0 / H0STASP0 at the widths seen live (46 and 62
/// before the reconnect, the drifted 47 and 63 after it), acks with key/iv, PINGPONG about every 100 s with its
/// echo, an encrypted notice stream, one disconnect → reconnect → resubscribe with a gap marker, and a few
/// malformed messages.
public struct SessionSynthesizer {
    public let options: SynthOptions

    public init(options: SynthOptions) { self.options = options }

    public func generate(_ emit: (RecordedMessage) -> Void) -> SynthSummary {
        withoutActuallyEscaping(emit) { emit in
            var g = Generator(options: options, emit: emit)
            g.run()
            return g.summary
        }
    }
}

private struct SymbolState {
    let code: String
    let previousClose: Int
    let lower: Int
    let upper: Int
    let previousDayVolume: Int64
    var bid1: Int
    var askQty: [Int]
    var bidQty: [Int]
    var open: Int?
    var openTime = "000000"
    var high = 0
    var highTime = "000000"
    var low = Int.max
    var lowTime = "000000"
    var cumVolume: Int64 = 0
    var cumValue: Int64 = 0
    var sellCount = 0
    var buyCount = 0
    var sellVolume: Int64 = 0
    var buyVolume: Int64 = 0
    var lastTotalAsk = 0
    var lastTotalBid = 0
    var nextTrade: Int64 = 0
    var nextBook: Int64 = 0

    var ask1: Int { KRXTickSize.up(bid1) }
}

private struct Generator {
    let options: SynthOptions
    let emit: (RecordedMessage) -> Void
    var rng: SplitMix64
    var summary = SynthSummary()
    var symbols: [SymbolState] = []
    var clock: Int64 = .min
    var connected = false
    var connection = 0
    var noticeKey: AESKey?
    var nextPing: Int64
    var nextNotice: Int64
    var disconnectAt: Int64?
    var malformedAt: [Int64] = []
    var orderNumber = 1000

    static let listedShares = 5_969_782_550.0

    init(options: SynthOptions, emit: @escaping (RecordedMessage) -> Void) {
        self.options = options
        self.emit = emit
        self.rng = SplitMix64(seed: options.seed)
        let span = options.to - options.from
        nextPing = options.from + 95_000_000_000
        nextNotice = options.from + 30_000_000_000
        if options.disconnect { disconnectAt = options.from + span * 55 / 100 }
        if options.malformed { malformedAt = [20, 40, 70, 90].map { options.from + span * $0 / 100 } }
        for code in options.symbols {
            // A deterministic previous close from the code: FNV-1a, then onto the grid.
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for b in code.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            let bases = [71900, 93000, 45150, 182_000, 12_480, 3_215, 521_000, 27_650]
            let close = KRXTickSize.floor(bases[Int(h % UInt64(bases.count))])
            let limits = KRXTickSize.limits(previousClose: close)
            var s = SymbolState(
                code: code, previousClose: close, lower: limits.lower, upper: limits.upper,
                previousDayVolume: Int64(2_000_000 + Int(h >> 40) % 18_000_000), bid1: close,
                askQty: [], bidQty: [])
            s.askQty = (0..<10).map { _ in rng.int(500...250_000) }
            s.bidQty = (0..<10).map { _ in rng.int(500...250_000) }
            symbols.append(s)
        }
    }

    // MARK: Emitting

    mutating func put(_ time: Int64, _ kind: RecordedKind, _ trID: String?, _ body: String) {
        let t = max(time, clock == .min ? time : clock + 1000)
        clock = t
        emit(RecordedMessage(receivedAt: t, kind: kind, trID: trID, body: body))
        summary.rows += 1
    }

    mutating func inbound(_ time: Int64, _ body: String) {
        let (kind, trID) = RecordedKind.inbound(body)
        put(time, kind, trID, body)
    }

    mutating func latency() -> Int64 { Int64(rng.int(2_000...20_000)) * 1000 }

    // MARK: The session

    mutating func run() {
        let from = options.from
        for i in symbols.indices {
            symbols[i].nextTrade = from + 3_000_000_000 + Int64(rng.exponential(mean: 1e9 / rate(from, options.tradesPerSecond)))
            symbols[i].nextBook = from + 3_000_000_000 + Int64(rng.exponential(mean: 1e9 / options.booksPerSecond))
        }
        connect(at: from + 5_000_000, reconnect: false)
        while true {
            // The next event: a trade or book of some symbol, a PINGPONG, a notice, a malformed message, the disconnect.
            var next = options.to
            var what = 0  // 1 trade, 2 book, 3 ping, 4 notice, 5 malformed, 6 disconnect
            var who = 0
            for (i, s) in symbols.enumerated() {
                if s.nextTrade < next { next = s.nextTrade; what = 1; who = i }
                if s.nextBook < next { next = s.nextBook; what = 2; who = i }
            }
            if nextPing < next { next = nextPing; what = 3 }
            if nextNotice < next { next = nextNotice; what = 4 }
            if let m = malformedAt.first, m < next { next = m; what = 5 }
            if let d = disconnectAt, d < next { next = d; what = 6 }
            if what == 0 { break }
            switch what {
            case 1:
                trade(who, at: next)
                symbols[who].nextTrade = next + max(1_000_000, Int64(rng.exponential(mean: 1e9 / rate(next, options.tradesPerSecond))))
            case 2:
                book(who, at: next)
                symbols[who].nextBook = next + max(1_000_000, Int64(rng.exponential(mean: 1e9 / rate(next, options.booksPerSecond))))
            case 3:
                if connected {
                    let body = "{\"header\":{\"tr_id\":\"PINGPONG\",\"datetime\":\"\(KSTTime.timestamp14(ofNanoseconds: next))\"}}"
                    inbound(next, body)
                    put(next + Int64(rng.int(200...3000)) * 1000, .pingPongEcho, "PINGPONG", body)
                    summary.pingPongs += 1
                }
                nextPing = next + Int64(rng.int(98...108)) * 1_000_000_000
            case 4:
                notice(at: next)
                nextNotice = next + max(5_000_000_000, Int64(rng.exponential(mean: 60e9)))
            case 5:
                malformedAt.removeFirst()
                malformed(at: next)
            default:
                disconnectAt = nil
                reconnectCycle(at: next)
            }
        }
    }

    func rate(_ t: Int64, _ base: Double) -> Double {
        let burst = options.burstSeconds * 1_000_000_000
        let inBurst = t < options.from + burst || t >= options.to - burst
        return inBurst ? base * options.burstMultiplier : base
    }

    func inBurst(_ t: Int64) -> Bool {
        let burst = options.burstSeconds * 1_000_000_000
        return t < options.from + burst || t >= options.to - burst
    }

    mutating func connect(at t: Int64, reconnect: Bool) {
        connection += 1
        put(t, .connect, nil, "{\"url\":\"ws://ops.koreainvestment.com:21000/tryitout\",\"connection\":\(connection)}")
        var time = t + 20_000_000
        var first = true
        var deferredNotice = reconnect
        for sub in options.subscriptions {
            let parts = sub.split(separator: ":")
            let (tr, key) = (String(parts[0]), String(parts[1]))
            let request = "{\"header\":{\"approval_key\":\"synthetic-approval-key-\(options.seed)\",\"custtype\":\"P\",\"tr_type\":\"1\",\"content-type\":\"utf-8\"},\"body\":{\"input\":{\"tr_id\":\"\(tr)\",\"tr_key\":\"\(key)\"}}}"
            put(time, .subscribe, tr, request)
            if tr == "H0STCNI0" && deferredNotice {
                // A notice that overtakes its ack after a reconnect: it must become a missing_key dead letter.
                deferredNotice = false
                if let old = noticeKey { inbound(time + 1_000_000, noticeFrame(at: time, key: old)) }
            }
            let ackTime = time + Int64(rng.int(3...12)) * 1_000_000
            if reconnect && first {
                first = false
                inbound(ackTime, "{\"header\":{\"tr_id\":\"\(tr)\",\"tr_key\":\"\(key)\"},\"body\":{\"rt_cd\":\"1\",\"msg_cd\":\"OPSP0002\",\"msg1\":\"ALREADY IN SUBSCRIBE\"}}")
            } else {
                let k = rng.letters(32, from: "abcdefghijklmnopqrstuvwxyz")
                let iv = rng.letters(16, from: "0123456789abcdef")
                let encrypt = tr == "H0STCNI0" ? "Y" : "N"
                inbound(ackTime, "{\"header\":{\"tr_id\":\"\(tr)\",\"tr_key\":\"\(key)\",\"encrypt\":\"\(encrypt)\"},\"body\":{\"rt_cd\":\"0\",\"msg_cd\":\"OPSP0000\",\"msg1\":\"SUBSCRIBE SUCCESS\",\"output\":{\"iv\":\"\(iv)\",\"key\":\"\(k)\"}}}")
                if tr == "H0STCNI0" { noticeKey = try? AESKey(key: k, iv: iv) }
            }
            time += 200_000_000
        }
        connected = true
    }

    mutating func reconnectCycle(at t: Int64) {
        put(t, .disconnect, nil, "{\"reason\":\"connection closed by server without a close frame (1006)\",\"connection\":\(connection)}")
        connected = false
        summary.disconnects += 1
        let retry = t + 1_000_000_000
        put(retry, .reconnect, nil, "{\"attempt\":1,\"delay_ms\":1000}")
        let connectedAt = retry + 250_000_000
        // Trades continue on the exchange while we are away: the market state advances, nothing is emitted.
        for i in symbols.indices {
            while symbols[i].nextTrade < connectedAt {
                _ = advanceTrades(i, at: symbols[i].nextTrade, count: 1)
                symbols[i].nextTrade += max(1_000_000, Int64(rng.exponential(mean: 1e9 / rate(symbols[i].nextTrade, options.tradesPerSecond))))
            }
            symbols[i].nextBook = max(symbols[i].nextBook, connectedAt + 2_000_000_000)
            symbols[i].nextTrade = max(symbols[i].nextTrade, connectedAt + 2_000_000_000)
        }
        connect(at: connectedAt, reconnect: true)
        put(connectedAt + 1_000_000, .gap, nil, "{\"from_ns\":\(t),\"to_ns\":\(connectedAt),\"reason\":\"disconnected\"}")
    }

    // MARK: Trades

    /// Advances the market by `count` trades of one symbol in the same second; returns the records.
    mutating func advanceTrades(_ i: Int, at t: Int64, count: Int) -> [String] {
        var records: [String] = []
        let time = KSTTime.hhmmss(ofNanoseconds: t)
        let date = KSTTime.kstDateString(ofNanoseconds: t)
        for _ in 0..<count {
            var s = symbols[i]
            let buy = rng.chance(0.5)
            if rng.chance(0.25) {
                if buy, KRXTickSize.up(s.ask1) <= s.upper { s.bid1 = KRXTickSize.up(s.bid1) }
                if !buy, KRXTickSize.down(s.bid1) >= s.lower { s.bid1 = KRXTickSize.down(s.bid1) }
            }
            let price = buy ? s.ask1 : s.bid1
            var volume = 1 + Int64(rng.exponential(mean: 40))
            if rng.chance(0.05) { volume += Int64(rng.exponential(mean: 2000)) }
            s.cumVolume += volume
            s.cumValue += volume * Int64(price)
            if buy {
                s.buyCount += 1
                s.buyVolume += volume
                s.askQty[0] = s.askQty[0] > Int(volume) ? s.askQty[0] - Int(volume) : rng.int(500...250_000)
            } else {
                s.sellCount += 1
                s.sellVolume += volume
                s.bidQty[0] = s.bidQty[0] > Int(volume) ? s.bidQty[0] - Int(volume) : rng.int(500...250_000)
            }
            if s.open == nil {
                s.open = price
                s.openTime = time
            }
            if price > s.high {
                s.high = price
                s.highTime = time
            }
            if price < s.low {
                s.low = price
                s.lowTime = time
            }
            symbols[i] = s
            records.append(tradeRecord(s, price: price, volume: volume, buy: buy, time: time, date: date, t: t))
        }
        return records
    }

    func sign(_ delta: Int, atUpper: Bool = false, atLower: Bool = false) -> String {
        if delta > 0 { return atUpper ? "1" : "2" }
        if delta < 0 { return atLower ? "4" : "5" }
        return "3"
    }

    func f2(_ x: Double) -> String { String(format: "%.2f", x) }

    func tradeRecord(_ s: SymbolState, price: Int, volume: Int64, buy: Bool, time: String, date: String, t: Int64) -> String {
        let change = price - s.previousClose
        let open = s.open ?? price
        let totalAsk = s.askQty.reduce(0, +)
        let totalBid = s.bidQty.reduce(0, +)
        let dayFraction = max(0.01, Double((t - options.from) / 1_000_000_000 + 1) / 23_400)
        let prevAtThisTime = max(1, Int64(Double(s.previousDayVolume) * dayFraction))
        var f: [String] = [
            s.code, time, String(price), sign(change, atUpper: price == s.upper, atLower: price == s.lower), String(change),
            f2(Double(change) / Double(s.previousClose) * 100), f2(Double(s.cumValue) / Double(s.cumVolume)),
            String(open), String(s.high), String(s.low), String(s.ask1), String(s.bid1), String(volume),
            String(s.cumVolume), String(s.cumValue), String(s.sellCount), String(s.buyCount),
            String(s.buyCount - s.sellCount), f2(s.sellVolume == 0 ? 0 : Double(s.buyVolume) / Double(s.sellVolume) * 100),
            String(s.sellVolume), String(s.buyVolume), buy ? "1" : "5",
            f2(Double(s.buyVolume) / Double(s.cumVolume) * 100),
            f2(Double(s.cumVolume) / Double(s.previousDayVolume) * 100),
            s.openTime, sign(price - open), String(price - open), s.highTime, sign(price - s.high), String(price - s.high),
            s.lowTime, sign(price - s.low), String(price - s.low), date, "20", "N", String(s.askQty[0]),
            String(s.bidQty[0]), String(totalAsk), String(totalBid), f2(Double(s.cumVolume) / Self.listedShares * 100),
            String(prevAtThisTime), f2(Double(s.cumVolume) / Double(prevAtThisTime) * 100), "0", "", String(open),
        ]
        if connection >= 2 { f.append("2") }  // the 47th field seen live since 2026
        return f.joined(separator: "^")
    }

    mutating func trade(_ i: Int, at t: Int64) {
        var count = 1
        if inBurst(t) && rng.chance(0.5) { count = [2, 2, 3, 3, 3, 6, 12, 19][rng.int(0...7)] }
        let records = advanceTrades(i, at: t, count: count)
        guard connected else { return }
        inbound(t + latency(), "0|H0STCNT0|\(String(count).leftPadded(to: 3))|" + records.joined(separator: "^"))
        summary.framesByTrID["H0STCNT0", default: 0] += 1
        summary.recordsByTrID["H0STCNT0", default: 0] += count
        if count > 1 { summary.multiRecordFrames += 1 }
    }

    // MARK: Books

    mutating func book(_ i: Int, at t: Int64) {
        var s = symbols[i]
        for _ in 0..<rng.int(1...4) {
            let level = rng.int(0...9)
            if rng.chance(0.5) { s.askQty[level] = max(1, s.askQty[level] + rng.int(-20_000...20_000)) }
            else { s.bidQty[level] = max(1, s.bidQty[level] + rng.int(-20_000...20_000)) }
        }
        var asks: [Int] = []
        var bids: [Int] = []
        var p = s.ask1
        for _ in 0..<10 {
            asks.append(p <= s.upper ? p : 0)
            p = KRXTickSize.up(p)
        }
        p = s.bid1
        for _ in 0..<10 {
            bids.append(p >= s.lower ? p : 0)
            p = KRXTickSize.down(p)
        }
        let askQty = zip(asks, s.askQty).map { $0 == 0 ? 0 : $1 }
        let bidQty = zip(bids, s.bidQty).map { $0 == 0 ? 0 : $1 }
        let totalAsk = askQty.reduce(0, +)
        let totalBid = bidQty.reduce(0, +)
        var f: [String] = [s.code, KSTTime.hhmmss(ofNanoseconds: t), "0"]
        f += asks.map(String.init) + bids.map(String.init) + askQty.map(String.init) + bidQty.map(String.init)
        f += [String(totalAsk), String(totalBid), "0", "0", "0", "0", String(s.previousDayVolume / 40),
              String(-s.previousClose), "5", "-100.00", String(s.cumVolume), String(totalAsk - s.lastTotalAsk),
              String(totalBid - s.lastTotalBid), "0", "0", "0"]
        // The three fields seen live since 2025: KRX mid price, quantity at mid, mid class; a fourth since 2026.
        let mid = s.ask1 + s.bid1
        f += [mid % 2 == 0 ? String(mid / 2) : String(format: "%.1f", Double(mid) / 2), "0", ["0", "1", "2"][rng.int(0...2)]]
        if connection >= 2 { f.append("2") }
        s.lastTotalAsk = totalAsk
        s.lastTotalBid = totalBid
        symbols[i] = s
        guard connected else { return }
        inbound(t + latency(), "0|H0STASP0|001|" + f.joined(separator: "^"))
        summary.framesByTrID["H0STASP0", default: 0] += 1
        summary.recordsByTrID["H0STASP0", default: 0] += 1
    }

    // MARK: Notices and malformed input

    mutating func noticeFrame(at t: Int64, key: AESKey) -> String {
        let s = symbols[rng.int(0...(symbols.count - 1))]
        let qty = 10 * rng.int(1...10)
        let price = s.bid1
        orderNumber += 1
        let fields = [
            options.htsID, "5012345601", String(orderNumber).leftPadded(to: 10), "", rng.chance(0.5) ? "01" : "02", "0",
            "00", "0", s.code, String(qty).leftPadded(to: 10), String(price).leftPadded(to: 9),
            KSTTime.hhmmss(ofNanoseconds: t), "0", "2", "2", "00950", String(qty).leftPadded(to: 9), "홍길동", "", "1",
            "N", "", "10", "", "종목\(s.code)", String(price).leftPadded(to: 9),
        ]
        return "1|H0STCNI0|001|" + key.encryptToBase64(Array(fields.joined(separator: "^").utf8))
    }

    mutating func notice(at t: Int64) {
        guard connected, let key = noticeKey else { return }
        inbound(t + latency(), noticeFrame(at: t, key: key))
        summary.framesByTrID["H0STCNI0", default: 0] += 1
        summary.recordsByTrID["H0STCNI0", default: 0] += 1
    }

    mutating func malformed(at t: Int64) {
        guard connected else { return }
        let s = symbols[0]
        let valid = "0|H0STCNT0|001|" + tradeRecord(s, price: s.bid1, volume: 1, buy: false,
                                                  time: KSTTime.hhmmss(ofNanoseconds: t),
                                                  date: KSTTime.kstDateString(ofNanoseconds: t), t: t)
        let bodies = [
            String(valid.prefix(valid.count * 6 / 10)),  // truncated mid-record
            valid.replacingOccurrences(of: "|001|", with: "|0x1|"),  // bad record count
            "0|H0ZZCNT0|001|" + s.code + "^" + KSTTime.hhmmss(ofNanoseconds: t) + "^1^2^3",  // unmapped tr_id
            "<html><body>502 Bad Gateway</body></html>",  // not a KIS message at all
        ]
        inbound(t + latency(), bodies[summary.malformed % bodies.count])
        summary.malformed += 1
    }
}
