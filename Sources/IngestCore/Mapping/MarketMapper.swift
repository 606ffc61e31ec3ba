import SwiftProtobuf

/// Maps one record of a known TR to its market message (protocol reference §13 and §14).
///
/// Required fields (symbol, price, size, date, time, book levels) that do not parse make the record a dead letter
/// (`bad_field`); optional ones (change, change rate, notice details) fall back to zero and are counted in
/// `PipelineStats.fieldDefaults`, so nothing is invented silently.
struct MarketMapper {
    var stats: PipelineStats

    init(stats: PipelineStats) { self.stats = stats }

    // One-entry caches for the hot path: consecutive records nearly always carry the same date, and at any real rate
    // many carry the same second. Keyed by the field's raw bytes; `nil` until a field has parsed.
    private var cachedDateBytes: UInt64?
    private var cachedDay: Int64 = 0
    private var cachedTimeBytes: UInt64?
    private var cachedSecond: Int64 = 0

    /// `KSTTime.day(yyyymmdd:)`, remembered for the last date seen.
    @inline(__always)
    private mutating func dayCached(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard bytes.count == 8, let base = bytes.baseAddress else { return nil }
        let key = UnsafeRawPointer(base).loadUnaligned(as: UInt64.self)
        if key == cachedDateBytes { return cachedDay }
        guard let day = KSTTime.day(yyyymmdd: bytes) else { return nil }
        cachedDateBytes = key
        cachedDay = day
        return day
    }

    /// `KSTTime.secondOfDay(hhmmss:)`, remembered for the last time seen.
    @inline(__always)
    private mutating func secondCached(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard bytes.count == 6, let base = bytes.baseAddress else { return nil }
        let raw = UnsafeRawPointer(base)
        let key = UInt64(raw.loadUnaligned(as: UInt32.self)) | UInt64(raw.loadUnaligned(fromByteOffset: 4, as: UInt16.self)) << 32
        if key == cachedTimeBytes { return cachedSecond }
        guard let second = KSTTime.secondOfDay(hhmmss: bytes) else { return nil }
        cachedTimeBytes = key
        cachedSecond = second
        return second
    }

    // MARK: Field helpers

    private func fail(_ r: RecordView, _ index: Int, _ name: String, _ what: String) -> FrameError {
        let value = r.string(index)
        let shown = value.count > 40 ? String(value.prefix(40)) + "…" : value
        return FrameError(.badField, "#\(index) \(name) \(what): \"\(shown)\"")
    }

    private func symbol(_ r: RecordView, _ i: Int, _ name: String) throws(FrameError) -> String {
        let b = r.bytes(i)
        guard !b.isEmpty, b.count <= 32 else { throw fail(r, i, name, "is not a symbol") }
        return String(decoding: b, as: UTF8.self)
    }

    private func requiredDouble(_ r: RecordView, _ i: Int, _ name: String) throws(FrameError) -> Double {
        guard let v = LenientNumber.double(r.bytes(i)) else { throw fail(r, i, name, "is not a number") }
        return v
    }

    private func requiredInt(_ r: RecordView, _ i: Int, _ name: String) throws(FrameError) -> Int64 {
        guard let v = LenientNumber.int64(r.bytes(i)) else { throw fail(r, i, name, "is not an integer") }
        return v
    }

    private mutating func optionalDouble(_ r: RecordView, _ i: Int, _ trID: String, _ name: String) -> Double {
        if let v = LenientNumber.double(r.bytes(i)) { return v }
        stats.fieldDefaults["\(trID).\(name)", default: 0] += 1
        return 0
    }

    private mutating func optionalInt(_ r: RecordView, _ i: Int, _ trID: String, _ name: String) -> Int64 {
        if let v = LenientNumber.int64(r.bytes(i)) { return v }
        stats.fieldDefaults["\(trID).\(name)", default: 0] += 1
        return 0
    }

    private func day(_ r: RecordView, _ i: Int, _ name: String) throws(FrameError) -> Int64 {
        guard let d = KSTTime.day(yyyymmdd: r.bytes(i)) else { throw fail(r, i, name, "is not a YYYYMMDD date from 1970 to 2261") }
        return d
    }

    private func second(_ r: RecordView, _ i: Int, _ name: String) throws(FrameError) -> Int64 {
        guard let s = KSTTime.secondOfDay(hhmmss: r.bytes(i)) else { throw fail(r, i, name, "is not an HHMMSS time") }
        return s
    }

    /// Applies the sign-code guard (§12): a delta whose sign code says down (4, 5) but whose value is positive is
    /// negated and counted.
    private mutating func signed(_ value: Double, signCode: UnsafeBufferPointer<UInt8>) -> Double {
        guard signCode.count == 1, signCode[0] == UInt8(ascii: "4") || signCode[0] == UInt8(ascii: "5"), value > 0
        else { return value }
        stats.signCorrections += 1
        return -value
    }

    // MARK: Mappings

    /// H0STCNT0 → TickData: #0 symbol, #2 price, #12 trade size, #33 date + #1 time, #4 change, #5 rate (percent).
    mutating func domesticTrade(_ r: RecordView) throws(FrameError) -> TickData {
        var t = TickData()
        t.symbol = try symbol(r, 0, "MKSC_SHRN_ISCD")
        t.price = try requiredDouble(r, 2, "STCK_PRPR")
        t.volume = try requiredInt(r, 12, "CNTG_VOL")
        t.timestamp = KSTTime.nanoseconds(
            kstDay: try day(r, 33, "BSOP_DATE"), secondOfDay: try second(r, 1, "STCK_CNTG_HOUR"))
        t.change = signed(optionalDouble(r, 4, "H0STCNT0", "PRDY_VRSS"), signCode: r.bytes(3))
        t.changeRate = signed(optionalDouble(r, 5, "H0STCNT0", "PRDY_CTRT"), signCode: r.bytes(3))
        return t
    }

    /// HDFSCNT0 → TickData: #0 realtime key, #11 LAST, #19 EVOL, #6 KYMD + #7 KHMS (KST), #13 DIFF, #14 RATE.
    mutating func overseasTrade(_ r: RecordView) throws(FrameError) -> TickData {
        var t = TickData()
        t.symbol = try symbol(r, 0, "RSYM")
        t.price = try requiredDouble(r, 11, "LAST")
        t.volume = try requiredInt(r, 19, "EVOL")
        t.timestamp = KSTTime.nanoseconds(kstDay: try day(r, 6, "KYMD"), secondOfDay: try second(r, 7, "KHMS"))
        t.change = signed(optionalDouble(r, 13, "HDFSCNT0", "DIFF"), signCode: r.bytes(12))
        t.changeRate = signed(optionalDouble(r, 14, "HDFSCNT0", "RATE"), signCode: r.bytes(12))
        return t
    }

    /// H0STASP0 → OrderBook: asks #3–12 / #23–32, bids #13–22 / #33–42, #1 time on the KST date of `receivedAt`.
    mutating func domesticBook(_ r: RecordView, receivedAt: Int64) throws(FrameError) -> OrderBook {
        var b = OrderBook()
        b.symbol = try symbol(r, 0, "MKSC_SHRN_ISCD")
        b.timestamp = KSTTime.nanoseconds(
            kstDay: KSTTime.kstDay(ofNanoseconds: receivedAt), secondOfDay: try second(r, 1, "BSOP_HOUR"))
        var askSum: Int64 = 0
        var bidSum: Int64 = 0
        b.asks.reserveCapacity(10)
        b.bids.reserveCapacity(10)
        for level in 1...10 {
            let askPrice = try requiredDouble(r, 2 + level, "ASKP\(level)")
            let askQty = try requiredInt(r, 22 + level, "ASKP_RSQN\(level)")
            let bidPrice = try requiredDouble(r, 12 + level, "BIDP\(level)")
            let bidQty = try requiredInt(r, 32 + level, "BIDP_RSQN\(level)")
            askSum &+= askQty
            bidSum &+= bidQty
            if askPrice != 0 { b.asks.append(.with { $0.price = askPrice; $0.quantity = askQty }) }
            if bidPrice != 0 { b.bids.append(.with { $0.price = bidPrice; $0.quantity = bidQty }) }
        }
        if LenientNumber.int64(r.bytes(43)) != askSum || LenientNumber.int64(r.bytes(44)) != bidSum {
            stats.bookTotalMismatches += 1
        }
        return b
    }

    /// HDFSASP0 → OrderBook: level i at #11 + 6(i−1): PBID, PASK, VBID, VASK; #5 KYMD + #6 KHMS (KST).
    mutating func overseasBook(_ r: RecordView) throws(FrameError) -> OrderBook {
        var b = OrderBook()
        b.symbol = try symbol(r, 0, "RSYM")
        b.timestamp = KSTTime.nanoseconds(kstDay: try day(r, 5, "KYMD"), secondOfDay: try second(r, 6, "KHMS"))
        for level in 1...10 {
            let base = 11 + 6 * (level - 1)
            let bidPrice = try requiredDouble(r, base, "PBID\(level)")
            let askPrice = try requiredDouble(r, base + 1, "PASK\(level)")
            let bidQty = try requiredInt(r, base + 2, "VBID\(level)")
            let askQty = try requiredInt(r, base + 3, "VASK\(level)")
            if askPrice != 0 { b.asks.append(.with { $0.price = askPrice; $0.quantity = askQty }) }
            if bidPrice != 0 { b.bids.append(.with { $0.price = bidPrice; $0.quantity = bidQty }) }
        }
        return b
    }

    /// H0STCNI0/9 (decrypted) → ExecutionNotice; the width selects the 26-field or the old 23-field layout (§13.4).
    mutating func executionNotice(_ r: RecordView, trID: String, receivedAt: Int64) throws(FrameError)
        -> ExecutionNotice
    {
        var n = ExecutionNotice()
        let current = r.width >= 26
        n.trID = trID
        n.layoutWidth = current ? 26 : 23
        n.customerID = r.string(0)
        n.accountNumber = r.string(1)
        n.orderNumber = r.string(2)
        n.originalOrderNumber = r.string(3)
        n.side = r.string(4)
        n.amendKind = r.string(5)
        n.orderKind = r.string(6)
        n.orderCondition = r.string(7)
        n.symbol = try symbol(r, 8, "STCK_SHRN_ISCD")
        n.quantity = optionalInt(r, 9, trID, "CNTG_QTY")
        n.price = optionalDouble(r, 10, trID, "CNTG_UNPR")
        n.timestamp = KSTTime.nanoseconds(
            kstDay: KSTTime.kstDay(ofNanoseconds: receivedAt), secondOfDay: try second(r, 11, "STCK_CNTG_HOUR"))
        n.rejected = r.string(12) == "1"
        n.isFill = r.string(13) == "2"
        n.acceptance = r.string(14)
        n.branchNumber = r.string(15)
        n.orderQuantity = optionalInt(r, 16, trID, "ODER_QTY")
        n.accountName = r.string(17)
        if current {
            if !r.bytes(18).isEmpty { n.stopPrice = optionalDouble(r, 18, trID, "ORD_COND_PRC") }
            n.exchange = r.string(19)
            n.instrumentName = r.string(24)
            if !r.bytes(25).isEmpty { n.otherPrice = optionalDouble(r, 25, trID, "ODER_PRC") }
        } else {
            n.instrumentName = r.string(21).isEmpty ? r.string(18) : r.string(21)
            if !r.bytes(22).isEmpty { n.otherPrice = optionalDouble(r, 22, trID, "ODER_PRC") }
        }
        return n
    }

    // MARK: Wire mappings (the hot path)
    //
    // Each writes the record's Protobuf value straight into `w` and returns the event time, or returns `nil` without
    // touching any counter when anything required does not parse or the symbol is not plain ASCII: the caller then
    // runs the general mapping above for that record, which yields the exact error (or, for a non-ASCII symbol, the
    // message). Optional fields and counters behave exactly as in the general mappings.

    @inline(__always)
    private static func asciiSymbol(_ b: UnsafeBufferPointer<UInt8>, readableFrom floor: UnsafePointer<UInt8>) -> Bool {
        guard !b.isEmpty, b.count <= 32, let base = b.baseAddress else { return false }
        if b.count <= 8, base + b.count - 8 >= floor {
            // One word ending at the symbol's last byte; only the symbol's own bytes are tested.
            let word = UnsafeRawPointer(base + b.count - 8).loadUnaligned(as: UInt64.self)
            return word & (~0 &<< (UInt64(8 &- b.count) &* 8)) & 0x8080_8080_8080_8080 == 0
        }
        for c in b where c >= 0x80 { return false }
        return true
    }

    @inline(__always)
    private mutating func optionalDouble(_ r: RecordView, _ i: Int, defaultKey: StaticString) -> Double {
        if let v = r.double(i) { return v }
        return countDefault(defaultKey)
    }

    /// An optional field that did not parse: counted under `key`, and 0.
    @inline(never)
    private mutating func countDefault(_ key: StaticString) -> Double {
        stats.fieldDefaults["\(key)", default: 0] += 1
        return 0
    }

    /// `signed` for the wire mappings: the sign code read once for both deltas of a trade.
    @inline(__always)
    private mutating func signed(_ value: Double, down: Bool) -> Double {
        guard down, value > 0 else { return value }
        stats.signCorrections += 1
        return -value
    }

    /// Field positions of a trade TR (symbol is #0).
    private struct TradeFields {
        let price, volume, date, time, change, rate, sign: Int
        let changeDefault, rateDefault: StaticString
    }
    private static let domesticTradeFields = TradeFields(
        price: 2, volume: 12, date: 33, time: 1, change: 4, rate: 5, sign: 3,
        changeDefault: "H0STCNT0.PRDY_VRSS", rateDefault: "H0STCNT0.PRDY_CTRT")
    private static let overseasTradeFields = TradeFields(
        price: 11, volume: 19, date: 6, time: 7, change: 13, rate: 14, sign: 12,
        changeDefault: "HDFSCNT0.DIFF", rateDefault: "HDFSCNT0.RATE")

    /// H0STCNT0 as `domesticTrade`, into `w`.
    mutating func wireDomesticTrade(_ r: RecordView, into w: inout WireWriter) -> Int64? {
        wireTrade(r, Self.domesticTradeFields, into: &w)
    }

    /// HDFSCNT0 as `overseasTrade`, into `w`.
    mutating func wireOverseasTrade(_ r: RecordView, into w: inout WireWriter) -> Int64? {
        wireTrade(r, Self.overseasTradeFields, into: &w)
    }

    @inline(__always)
    private mutating func wireTrade(_ r: RecordView, _ f: TradeFields, into w: inout WireWriter) -> Int64? {
        let symbol = r.bytes(0)
        guard Self.asciiSymbol(symbol, readableFrom: r.floor), let price = r.double(f.price),
            let volume = r.int64(f.volume), let day = dayCached(r.bytes(f.date)),
            let second = secondCached(r.bytes(f.time))
        else { return nil }
        let timestamp = KSTTime.nanoseconds(kstDay: day, secondOfDay: second)
        // Sign codes 4 and 5 say down (§12).
        let sign = r.bytes(f.sign)
        let down = sign.count == 1 && sign[0] | 1 == UInt8(ascii: "5")
        let change = signed(optionalDouble(r, f.change, defaultKey: f.changeDefault), down: down)
        let rate = signed(optionalDouble(r, f.rate, defaultKey: f.rateDefault), down: down)
        Self.writeTick(&w, symbol, sixteenReadable: r.sixteenReadableFromFirstField, price, volume, timestamp, change, rate)
        return timestamp
    }

    @inline(__always)
    private static func writeTick(
        _ w: inout WireWriter, _ symbol: UnsafeBufferPointer<UInt8>, sixteenReadable: Bool, _ price: Double,
        _ volume: Int64, _ timestamp: Int64, _ change: Double, _ rate: Double
    ) {
        w.lengthDelimited(1, symbol, sixteenReadable: sixteenReadable)
        w.double(2, price)
        w.int64(3, volume)
        w.int64(4, timestamp)
        w.double(5, change)
        w.double(6, rate)
    }

    /// H0STASP0 as `domesticBook`, into `w`; `kstDay` is the KST day of the frame's receive time.
    mutating func wireDomesticBook(_ r: RecordView, kstDay: Int64, into w: inout WireWriter) -> Int64? {
        let symbol = r.bytes(0)
        guard Self.asciiSymbol(symbol, readableFrom: r.floor), let second = secondCached(r.bytes(1)) else { return nil }
        // Levels 1…10: asks #3–12 / #23–32, bids #13–22 / #33–42.
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: 20) { prices -> Int64? in
            withUnsafeTemporaryAllocation(of: Int64.self, capacity: 20) { quantities -> Int64? in
                var askSum: Int64 = 0
                var bidSum: Int64 = 0
                for level in 0..<10 {
                    guard let askPrice = r.double(3 + level),
                        let askQty = r.int64(23 + level),
                        let bidPrice = r.double(13 + level),
                        let bidQty = r.int64(33 + level)
                    else { return nil }
                    askSum &+= askQty
                    bidSum &+= bidQty
                    prices[level] = bidPrice
                    quantities[level] = bidQty
                    prices[10 + level] = askPrice
                    quantities[10 + level] = askQty
                }
                if r.int64(43) != askSum || r.int64(44) != bidSum {
                    stats.bookTotalMismatches += 1
                }
                let timestamp = KSTTime.nanoseconds(kstDay: kstDay, secondOfDay: second)
                Self.writeBook(&w, symbol, sixteenReadable: r.sixteenReadableFromFirstField, prices, quantities, timestamp)
                return timestamp
            }
        }
    }

    /// HDFSASP0 as `overseasBook`, into `w`.
    mutating func wireOverseasBook(_ r: RecordView, into w: inout WireWriter) -> Int64? {
        let symbol = r.bytes(0)
        guard Self.asciiSymbol(symbol, readableFrom: r.floor), let day = dayCached(r.bytes(5)), let second = secondCached(r.bytes(6))
        else { return nil }
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: 20) { prices -> Int64? in
            withUnsafeTemporaryAllocation(of: Int64.self, capacity: 20) { quantities -> Int64? in
                for level in 0..<10 {
                    let base = 11 + 6 * level
                    guard let bidPrice = r.double(base),
                        let askPrice = r.double(base + 1),
                        let bidQty = r.int64(base + 2),
                        let askQty = r.int64(base + 3)
                    else { return nil }
                    prices[level] = bidPrice
                    quantities[level] = bidQty
                    prices[10 + level] = askPrice
                    quantities[10 + level] = askQty
                }
                let timestamp = KSTTime.nanoseconds(kstDay: day, secondOfDay: second)
                Self.writeBook(&w, symbol, sixteenReadable: r.sixteenReadableFromFirstField, prices, quantities, timestamp)
                return timestamp
            }
        }
    }

    /// An OrderBook: symbol, bids (field 2) then asks (field 3) as `Level`s, levels with a zero price left out,
    /// timestamp. `prices`/`quantities`: bids at 0…9, asks at 10…19.
    @inline(__always)
    private static func writeBook(
        _ w: inout WireWriter, _ symbol: UnsafeBufferPointer<UInt8>, sixteenReadable: Bool,
        _ prices: UnsafeMutableBufferPointer<Double>, _ quantities: UnsafeMutableBufferPointer<Int64>, _ timestamp: Int64
    ) {
        w.lengthDelimited(1, symbol, sixteenReadable: sixteenReadable)
        for i in 0..<20 where prices[i] != 0 {
            let quantity = quantities[i]
            w.byte(i < 10 ? 0x12 : 0x1A)
            w.byte(UInt8(9 + (quantity != 0 ? 1 + WireWriter.varintSize(UInt64(bitPattern: quantity)) : 0)))
            w.double(1, prices[i])
            w.int64(2, quantity)
        }
        w.int64(4, timestamp)
    }
}
