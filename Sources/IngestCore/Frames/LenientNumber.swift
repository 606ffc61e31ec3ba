/// Lenient parsing of KIS numeric fields straight from their UTF-8 bytes.
///
/// KIS sends numbers as text with a leading `+` (overseas rates), `-`, zero padding (`000003190`), or no value at all
/// (empty, `(null)`, `nan`, `-nan`). Each parser returns `nil` for anything that is not a number, so the caller
/// decides between a dead letter (required field) and a counted default (optional field).
enum LenientNumber {
    /// Parses a signed integer; `nil` for empty, placeholder or malformed input, or on overflow.
    static func int64(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        var i = 0
        let n = bytes.count
        guard n > 0 else { return nil }
        var negative = false
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            i = 1
            guard n > 1 else { return nil }
        }
        var value: Int64 = 0
        while i < n {
            let d = bytes[i] &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(d))
            guard !o1, !o2 else { return nil }
            value = s
            i += 1
        }
        return negative ? -value : value
    }

    /// 10^p for 0 ≤ p ≤ 22 (all exact in a `Double`), `nil` above; a switch, so no lazy global is touched per call.
    @inline(__always)
    private static func powerOfTen(_ p: Int) -> Double? {
        switch p {
        case 0: 1e0
        case 1: 1e1
        case 2: 1e2
        case 3: 1e3
        case 4: 1e4
        case 5: 1e5
        case 6: 1e6
        case 7: 1e7
        case 8: 1e8
        case 9: 1e9
        case 10: 1e10
        case 11: 1e11
        case 12: 1e12
        case 13: 1e13
        case 14: 1e14
        case 15: 1e15
        case 16: 1e16
        case 17: 1e17
        case 18: 1e18
        case 19: 1e19
        case 20: 1e20
        case 21: 1e21
        case 22: 1e22
        default: nil
        }
    }

    /// Parses a decimal number (`-0.14`, `+1.91`, `72023.83`, `000071900`); `nil` for empty, `(null)`, `nan`,
    /// `-nan`, infinities and malformed text.
    ///
    /// Up to 15 significant digits are converted exactly (mantissa ÷ power of ten, both exact in a `Double`, so the
    /// one division is correctly rounded, matching `strtod`); longer inputs go through the standard library.
    static func double(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        let n = bytes.count
        guard n > 0, let p = bytes.baseAddress else { return nil }
        var i = 0
        var negative = false
        if p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+") {
            negative = p[0] == UInt8(ascii: "-")
            i = 1
        }
        // Leading zeros (`000071900`) are not significant. Then the integer digits and the fraction's, each a tight
        // loop (one compare per byte); wrapping arithmetic, as a mantissa of more than 15 digits is thrown away.
        let start = i
        while i < n && p[i] == UInt8(ascii: "0") { i &+= 1 }
        let zerosEnd = i
        var mantissa: Int64 = 0
        while i < n {
            let d = p[i] &- UInt8(ascii: "0")
            guard d < 10 else { break }
            mantissa = mantissa &* 10 &+ Int64(d)
            i &+= 1
        }
        let integerDigits = i &- start
        var significant = i &- zerosEnd
        var fractionDigits = 0
        if i < n && p[i] == UInt8(ascii: ".") {
            i &+= 1
            let fractionStart = i
            while i < n {
                let d = p[i] &- UInt8(ascii: "0")
                guard d < 10 else { break }
                mantissa = mantissa &* 10 &+ Int64(d)
                i &+= 1
            }
            fractionDigits = i &- fractionStart
            // Fraction digits count as significant even when they are leading zeros (`0.05`): more conservative
            // than needed, never less (the slow path is exact too).
            significant &+= fractionDigits
        }
        guard i == n, integerDigits &+ fractionDigits > 0 else { return nil }
        if significant > 15 { return slowDouble(bytes) }
        var value = Double(mantissa)
        if fractionDigits > 0 {
            guard let scale = powerOfTen(fractionDigits) else { return slowDouble(bytes) }
            value /= scale
        }
        return negative ? -value : value
    }

    private static func slowDouble(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let value = Double(text), value.isFinite else { return nil }
        return value
    }
}
