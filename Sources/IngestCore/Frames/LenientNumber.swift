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

// MARK: Fields of up to eight bytes, eight bytes at a time
//
// KIS prices, quantities and rates are at most eight characters in nearly every record (`71900`, `-0.14`, `1097355`).
// These variants read such a field as one little-endian word that *ends* at the field's last byte, so they need the
// eight bytes before the field's end to be readable (the caller passes the lowest readable address: a frame's fields
// always have its header before them). They give exactly what `double(_:)` and `int64(_:)` give, for every input
// (`LenientNumberTests` compares them on random text), without a loop or a branch per byte.
extension LenientNumber {
    /// `double(_:)`, eight bytes at a time when `bytes` is 1–8 bytes long and its eight bytes before the end are
    /// readable (at or after `floor`).
    @inline(__always)
    static func double(_ bytes: UnsafeBufferPointer<UInt8>, readableFrom floor: UnsafePointer<UInt8>) -> Double? {
        let n = bytes.count
        if let base = bytes.baseAddress, UInt(bitPattern: n &- 1) < 8, base + n - 8 >= floor {
            return shortDouble(UnsafeRawPointer(base + n - 8).loadUnaligned(as: UInt64.self), length: n)
        }
        return double(bytes)
    }

    /// `int64(_:)`, eight bytes at a time under the same conditions as `double(_:readableFrom:)`.
    @inline(__always)
    static func int64(_ bytes: UnsafeBufferPointer<UInt8>, readableFrom floor: UnsafePointer<UInt8>) -> Int64? {
        let n = bytes.count
        if let base = bytes.baseAddress, UInt(bitPattern: n &- 1) < 8, base + n - 8 >= floor {
            return shortInt64(UnsafeRawPointer(base + n - 8).loadUnaligned(as: UInt64.self), length: n)
        }
        return int64(bytes)
    }

    private static let zeros: UInt64 = 0x3030_3030_3030_3030

    /// The field in the top `length` bytes of `word` (1…8) without its sign: the bytes below it and a leading `-` or
    /// `+` replaced by `'0'`, the sign's flag, and how many bytes the unsigned part has (0 when the field is a bare
    /// sign).
    @inline(__always)
    private static func unsigned(_ word: UInt64, length n: Int) -> (digits: UInt64, negative: Bool, length: Int) {
        let shift = UInt64(8 &- n) &* 8
        let first = UInt8(truncatingIfNeeded: word &>> shift)
        // '+' is 0x2B, '-' 0x2D: they differ in bit 1 only, once 0x2B is taken away.
        let signed = (first &- UInt8(ascii: "+")) & 0xFD == 0
        let below: UInt64 = (1 &<< shift) &- 1
        var w = (word & ~below) | (zeros & below)
        if signed { w ^= UInt64(first ^ UInt8(ascii: "0")) &<< shift }
        return (w, first == UInt8(ascii: "-"), signed ? n &- 1 : n)
    }

    /// `true` when all eight bytes are ASCII digits.
    @inline(__always)
    private static func allDigits(_ w: UInt64) -> Bool {
        (w & 0xF0F0_F0F0_F0F0_F0F0) | (((w &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)
            == 0x3333_3333_3333_3333
    }

    /// The value of eight ASCII digits, the first byte (lowest address) the most significant.
    @inline(__always)
    static func eightDigits(_ w: UInt64) -> UInt64 {
        var v = w &- zeros
        v = (v &* 10) &+ (v >> 8)
        v = (((v & 0x0000_00FF_0000_00FF) &* (100 &+ (1_000_000 << 32)))
            &+ (((v >> 16) & 0x0000_00FF_0000_00FF) &* (1 &+ (10_000 << 32)))) >> 32
        return v
    }

    /// 10^k for 1 ≤ k ≤ 7 (a point in a field of at most eight bytes leaves at most seven fraction digits).
    @inline(__always)
    private static func fractionScale(_ k: Int) -> Double {
        switch k {
        case 1: 1e1
        case 2: 1e2
        case 3: 1e3
        case 4: 1e4
        case 5: 1e5
        case 6: 1e6
        default: 1e7
        }
    }

    @inline(__always)
    static func shortInt64(_ word: UInt64, length n: Int) -> Int64? {
        let (w, negative, m) = unsigned(word, length: n)
        guard m > 0, allDigits(w) else { return nil }
        let v = Int64(truncatingIfNeeded: eightDigits(w))
        return negative ? -v : v
    }

    @inline(__always)
    static func shortDouble(_ word: UInt64, length n: Int) -> Double? {
        var (w, negative, m) = unsigned(word, length: n)
        // A point: the lowest byte equal to '.' (exact for the lowest one; a second point fails the digit test).
        let x = w ^ 0x2E2E_2E2E_2E2E_2E2E
        let points = (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080
        var fractionDigits = 0
        if points != 0 {
            // Digits besides the point are needed (".", "-." are not numbers).
            guard m > 1 else { return nil }
            let p = points.trailingZeroBitCount >> 3
            fractionDigits = 7 &- p
            // Take the point out: the bytes below it move up one byte, a '0' comes in at the bottom.
            let below: UInt64 = (1 &<< (UInt64(p) &* 8)) &- 1
            let above: UInt64 = p == 7 ? 0 : ~0 &<< (UInt64(p &+ 1) &* 8)
            w = (w & above) | ((w & below) &<< 8) | 0x30
        }
        guard m > 0, allDigits(w) else { return nil }
        var value = Double(eightDigits(w))
        if fractionDigits > 0 { value /= fractionScale(fractionDigits) }
        return negative ? -value : value
    }
}
