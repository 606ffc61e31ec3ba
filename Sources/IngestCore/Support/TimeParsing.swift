import Foundation

/// Parsing of the time and duration arguments the programs accept.
public enum TimeParsing {
    /// Parses an instant given as nanoseconds since the Unix epoch (all digits) or as ISO 8601 with a zone
    /// (`2025-07-30T09:47:51+09:00`, `2025-07-30T00:47:51.123Z`); returns nanoseconds since the epoch.
    public static func nanoseconds(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty else { return nil }
        if t.allSatisfy(\.isASCII) && t.allSatisfy({ $0.isNumber }) { return Int64(t) }
        // Fractional seconds beyond milliseconds are kept exactly by parsing them separately.
        var base = t
        var fractionNs: Int64 = 0
        if let dot = t.firstIndex(of: "."), let tIndex = t.firstIndex(of: "T"), dot > tIndex {
            let afterDot = t[t.index(after: dot)...]
            let digits = afterDot.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 9 else { return nil }
            fractionNs = Int64(digits.padding(toLength: 9, withPad: "0", startingAt: 0))!
            base = String(t[..<dot]) + String(afterDot.dropFirst(digits.count))
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        guard let date = formatter.date(from: base) else { return nil }
        let seconds = Int64(date.timeIntervalSince1970.rounded())
        return seconds * 1_000_000_000 + fractionNs
    }

    /// ISO 8601 UTC text with nanoseconds for an instant in nanoseconds since the epoch.
    public static func iso8601(nanoseconds ns: Int64) -> String {
        let seconds = ns >= 0 ? ns / 1_000_000_000 : (ns - 999_999_999) / 1_000_000_000
        let fraction = ns - seconds * 1_000_000_000
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let sod = seconds - days * 86400
        let (y, m, d) = KSTTime.civilFromDays(days)
        let pad2 = { (v: Int64) in v < 10 ? "0\(v)" : "\(v)" }
        let frac = String(fraction).leftPadded(to: 9)
        return "\(y)-\(pad2(m))-\(pad2(d))T\(pad2(sod / 3600)):\(pad2(sod / 60 % 60)):\(pad2(sod % 60)).\(frac)Z"
    }

    /// Parses a Go-style duration: a sequence of decimal numbers with units `ns`, `us` (or `µs`), `ms`, `s`, `m`,
    /// `h` (`1h30m`, `2.5s`, `250ms`). Returns `nil` for anything else, including a bare number.
    public static func duration(_ text: String) -> Duration? {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return .zero }
        var negative = false
        if rest.first == "-" || rest.first == "+" {
            negative = rest.first == "-"
            rest = rest.dropFirst()
        }
        var totalNs: Double = 0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { !($0.isASCII && ($0.isNumber || $0 == ".")) }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            default: return nil
            }
            totalNs += value * scale
        }
        guard totalNs.isFinite, totalNs < 9.2e18 else { return nil }
        let ns = Int64(totalNs.rounded())
        return .nanoseconds(negative ? -ns : ns)
    }
}

extension TimeParsing {
    /// Go-style text for a duration: `200ms`, `5s`, `2m30s`, `23h`.
    public static func format(_ d: Duration) -> String {
        let ns = Int64(d.nanosecondsDouble.rounded())
        if ns == 0 { return "0s" }
        if ns < 0 { return "-" + format(.nanoseconds(-ns)) }
        if ns < 1_000 { return "\(ns)ns" }
        if ns < 1_000_000 { return ns % 1_000 == 0 ? "\(ns / 1_000)us" : "\(Double(ns) / 1e3)us" }
        if ns < 1_000_000_000 { return ns % 1_000_000 == 0 ? "\(ns / 1_000_000)ms" : "\(Double(ns) / 1e6)ms" }
        let h = ns / 3_600_000_000_000
        let m = ns / 60_000_000_000 % 60
        let rest = ns % 60_000_000_000
        var text = ""
        if h > 0 { text += "\(h)h" }
        if m > 0 { text += "\(m)m" }
        if rest > 0 {
            text += rest % 1_000_000_000 == 0 ? "\(rest / 1_000_000_000)s" : "\(Double(rest) / 1e9)s"
        }
        return text
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

extension Duration {
    /// Whole milliseconds, clamped to `Int32` (librdkafka timeouts).
    var milliseconds32: Int32 {
        Int32(clamping: components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000)
    }

    /// Nanoseconds as a `Double`, for reporting.
    public var nanosecondsDouble: Double {
        Double(components.seconds) * 1e9 + Double(components.attoseconds) / 1e9
    }
}
