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
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            i = 1
        }
        var mantissa: Int64 = 0
        var digits = 0
        var significant = 0
        var fractionDigits = 0
        var seenPoint = false
        while i < n {
            let c = bytes[i]
            if c == UInt8(ascii: ".") {
                guard !seenPoint else { return nil }
                seenPoint = true
            } else {
                let d = c &- UInt8(ascii: "0")
                guard d < 10 else { return nil }
                // Wrapping arithmetic: at most 15 significant digits reach the mantissa (< 10^15), and the counts
                // are bounded by `n`.
                digits &+= 1
                if mantissa != 0 || d != 0 { significant &+= 1 }
                if significant > 15 { return slowDouble(bytes) }
                mantissa = mantissa &* 10 &+ Int64(d)
                if seenPoint { fractionDigits &+= 1 }
            }
            i &+= 1
        }
        guard digits > 0 else { return nil }
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
