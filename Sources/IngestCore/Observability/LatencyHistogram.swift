/// A log-linear histogram of durations in nanoseconds (16 sub-buckets per power of two, so a quantile read from it
/// is within 1/16 of the true value), cheap enough to update once per message from one thread. Merge copies of
/// several writers for reading; expose it to Prometheus with fixed bucket bounds.
public struct LatencyHistogram: Sendable, Equatable {
    static let subBits = 4
    static let subCount = 1 << subBits
    /// Values up to 2^41 ns (≈ 36 min); larger ones land in the last bucket.
    static let bucketCount = (41 - subBits + 1) * subCount

    public private(set) var counts: [UInt64]
    public private(set) var count: UInt64 = 0
    public private(set) var sumNanoseconds: Double = 0
    public private(set) var maxNanoseconds: Int64 = 0

    public init() { counts = [UInt64](repeating: 0, count: Self.bucketCount) }

    static func index(_ value: Int64) -> Int {
        let v = UInt64(max(value, 0))
        if v < UInt64(subCount) { return Int(v) }
        let exponent = 63 - v.leadingZeroBitCount  // ≥ subBits
        let sub = Int((v >> UInt64(exponent - subBits)) & UInt64(subCount - 1))
        return min((exponent - subBits + 1) * subCount + sub, bucketCount - 1)
    }

    /// The largest value that falls into bucket `i`.
    static func upperBound(_ i: Int) -> Int64 {
        if i < subCount { return Int64(i) }
        let exponent = i / subCount + subBits - 1
        let sub = Int64(i % subCount)
        return ((Int64(subCount) + sub + 1) << Int64(exponent - subBits)) - 1
    }

    public mutating func record(nanoseconds: Int64) {
        counts[Self.index(nanoseconds)] &+= 1
        count &+= 1
        sumNanoseconds += Double(max(nanoseconds, 0))
        if nanoseconds > maxNanoseconds { maxNanoseconds = nanoseconds }
    }

    public mutating func merge(_ other: LatencyHistogram) {
        for i in counts.indices { counts[i] &+= other.counts[i] }
        count &+= other.count
        sumNanoseconds += other.sumNanoseconds
        maxNanoseconds = max(maxNanoseconds, other.maxNanoseconds)
    }

    /// The value below which a fraction `q` (0…1) of the samples fall (bucket upper bound, capped at the maximum).
    public func quantile(_ q: Double) -> Int64 {
        guard count > 0 else { return 0 }
        let rank = max(1, UInt64((q * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for (i, c) in counts.enumerated() where c > 0 {
            seen += c
            if seen >= rank { return min(Self.upperBound(i), maxNanoseconds) }
        }
        return maxNanoseconds
    }

    /// Samples at or below `nanoseconds` (exact at bucket bounds, otherwise within one bucket).
    public func countAtOrBelow(_ nanoseconds: Int64) -> UInt64 {
        var total: UInt64 = 0
        for (i, c) in counts.enumerated() where c > 0 {
            if Self.upperBound(i) > nanoseconds { break }
            total += c
        }
        return total
    }

    /// Prometheus bucket bounds, in seconds: 1 µs … 10 s.
    public static let prometheusBounds: [Double] = [
        1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]
}

extension PrometheusText {
    /// Adds a histogram (`_bucket`, `_sum`, `_count`) in seconds.
    public mutating func add(histogram name: String, _ help: String, _ h: LatencyHistogram, _ labels: [(String, String)] = []) {
        for bound in LatencyHistogram.prometheusBounds {
            addHistogramLine(name, help, suffix: "_bucket", Double(h.countAtOrBelow(Int64(bound * 1e9))), labels + [("le", "\(bound)")])
        }
        addHistogramLine(name, help, suffix: "_bucket", Double(h.count), labels + [("le", "+Inf")])
        addHistogramLine(name, help, suffix: "_sum", h.sumNanoseconds / 1e9, labels)
        addHistogramLine(name, help, suffix: "_count", Double(h.count), labels)
    }
}
