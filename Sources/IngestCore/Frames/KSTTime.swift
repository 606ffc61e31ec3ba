/// Korean Standard Time arithmetic (UTC+9, no daylight saving), without Foundation calendars or the host time zone.
public enum KSTTime {
    /// Seconds KST is ahead of UTC.
    public static let offsetSeconds: Int64 = 9 * 3600

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date of a day number since 1970-01-01.
    static func civilFromDays(_ z0: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// The KST day (days since 1970-01-01 in KST) that contains a UTC instant given in nanoseconds.
    public static func kstDay(ofNanoseconds ns: Int64) -> Int64 {
        let seconds = ns >= 0 ? ns / 1_000_000_000 : (ns - 999_999_999) / 1_000_000_000
        let local = seconds + offsetSeconds
        return local >= 0 ? local / 86400 : (local - 86399) / 86400
    }

    /// `YYYYMMDD` of the KST date containing a UTC instant in nanoseconds.
    public static func kstDateString(ofNanoseconds ns: Int64) -> String {
        let (y, m, d) = civilFromDays(kstDay(ofNanoseconds: ns))
        return String(y * 10000 + m * 100 + d)
    }

    /// Parses `YYYYMMDD` into a KST day number; `nil` unless it is a real calendar date.
    static func day(yyyymmdd bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard bytes.count == 8, let v = digits(bytes, 0, 8) else { return nil }
        let year = v / 10000, month = (v / 100) % 100, day = v % 100
        // Nanoseconds since the epoch fit in an Int64 until 2262-04-11; later dates cannot be represented.
        guard (1970...2261).contains(year), (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month) else {
            return nil
        }
        return daysFromCivil(year: year, month: month, day: day)
    }

    /// Parses `HHMMSS` into seconds after midnight; `nil` unless each part is in range.
    static func secondOfDay(hhmmss bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard bytes.count == 6, let v = digits(bytes, 0, 6) else { return nil }
        let h = v / 10000, m = (v / 100) % 100, s = v % 100
        guard h < 24, m < 60, s < 60 else { return nil }
        return h * 3600 + m * 60 + s
    }

    /// Nanoseconds since the Unix epoch of a KST day and second of day.
    public static func nanoseconds(kstDay: Int64, secondOfDay: Int64) -> Int64 {
        (kstDay * 86400 + secondOfDay - offsetSeconds) * 1_000_000_000
    }

    private static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func digits(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Int64? {
        var v: Int64 = 0
        for i in from..<to {
            let d = bytes[i] &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            v = v * 10 + Int64(d)
        }
        return v
    }
}

extension KSTTime {
    /// `HHMMSS` in KST of an instant in nanoseconds.
    public static func hhmmss(ofNanoseconds ns: Int64) -> String {
        let seconds = ns >= 0 ? ns / 1_000_000_000 : (ns - 999_999_999) / 1_000_000_000
        let local = seconds + offsetSeconds
        let sod = ((local % 86400) + 86400) % 86400
        return String(sod / 3600 * 10000 + sod / 60 % 60 * 100 + sod % 60).leftPadded(to: 6)
    }

    /// `YYYYMMDDHHMMSS` in KST (PINGPONG's `datetime`).
    public static func timestamp14(ofNanoseconds ns: Int64) -> String {
        kstDateString(ofNanoseconds: ns) + hhmmss(ofNanoseconds: ns)
    }
}
