import Foundation

/// A small, seedable, platform-independent PRNG (SplitMix64): generated sessions depend only on the seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform integer in `range`.
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    mutating func chance(_ p: Double) -> Bool { unit() < p }

    /// Exponential with the given mean.
    mutating func exponential(mean: Double) -> Double { -log(1 - unit()) * mean }

    mutating func letters(_ n: Int, from alphabet: String) -> String {
        let a = Array(alphabet)
        return String((0..<n).map { _ in a[Int(next() % UInt64(a.count))] })
    }
}
