import Foundation

/// Sleeps until absolute instants: coarse sleep, then a short spin, so the error stays far below a millisecond and
/// never accumulates (every target is computed from the start, not from the previous wake-up).
struct PacingClock {
    let start: ContinuousClock.Instant

    init(start: ContinuousClock.Instant = .now) { self.start = start }

    /// The instant `offsetNanoseconds` after the start.
    func instant(offsetNanoseconds: Int64) -> ContinuousClock.Instant {
        start + .nanoseconds(offsetNanoseconds)
    }

    /// Waits until `target`; returns how late it woke, in nanoseconds (0 when the target had already passed).
    /// `precise` spins (yielding) through the last 2 ms for sub-millisecond accuracy; otherwise it only sleeps, which
    /// costs no CPU but may wake up to the kernel's timer slack (about 50 µs) late.
    @discardableResult
    func wait(until target: ContinuousClock.Instant, precise: Bool = true) -> Int64 {
        var now = ContinuousClock.now
        if now >= target { return Self.nanoseconds(now - target) }
        let remaining = Self.nanoseconds(target - now)
        if !precise {
            var ts = timespec(tv_sec: Int(remaining / 1_000_000_000), tv_nsec: Int(remaining % 1_000_000_000))
            nanosleep(&ts, nil)
            return max(0, Self.nanoseconds(ContinuousClock.now - target))
        }
        if remaining > 2_000_000 {
            var ts = timespec(tv_sec: Int((remaining - 1_000_000) / 1_000_000_000),
                              tv_nsec: Int((remaining - 1_000_000) % 1_000_000_000))
            nanosleep(&ts, nil)
        }
        now = .now
        while now < target {
            sched_yield()
            now = .now
        }
        return Self.nanoseconds(now - target)
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
}

/// Schedule errors of a paced replay: how late each message was produced relative to its absolute target.
public struct PacingStats: Sendable, Equatable {
    public var samples: Int
    public var p50Nanoseconds: Int64
    public var p99Nanoseconds: Int64
    public var maxNanoseconds: Int64

    init(_ errors: [Int64]) {
        let sorted = errors.sorted()
        samples = sorted.count
        func q(_ p: Double) -> Int64 {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
        }
        p50Nanoseconds = q(0.5)
        p99Nanoseconds = q(0.99)
        maxNanoseconds = sorted.last ?? 0
    }
}
