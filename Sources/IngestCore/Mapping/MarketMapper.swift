import SwiftProtobuf

/// Maps one record of a known TR to its market message (protocol reference §13 and §14).
///
/// Required fields (symbol, price, size, date, time, book levels) that do not parse make the record a dead letter
/// (`bad_field`); optional ones (change, change rate, notice details) fall back to zero and are counted in
/// `PipelineStats.fieldDefaults`, so nothing is invented silently.
struct MarketMapper {
    var stats: PipelineStats

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
}
