/// Eight bytes at a time: word-wide tests over little-endian `UInt64` loads ("SIMD within a register").
///
/// Each test is exact about *whether* a byte matches; none says *which* (the borrow of the subtraction can flag a
/// byte above a match), so callers that need positions fall back to a byte loop on a hit.
package enum SWAR {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let high: UInt64 = 0x8080_8080_8080_8080

    /// `true` when one of the eight bytes of `w` is `byte`.
    @inline(__always)
    package static func hasByte(_ w: UInt64, _ byte: UInt8) -> Bool {
        hasZeroByte(w ^ (ones &* UInt64(byte)))
    }

    /// `true` when one of the eight bytes of `w` is below `limit` (`limit` ≤ 0x80).
    @inline(__always)
    package static func hasByte(_ w: UInt64, below limit: UInt8) -> Bool {
        (w &- ones &* UInt64(limit)) & ~w & high != 0
    }

    @inline(__always)
    static func hasZeroByte(_ x: UInt64) -> Bool {
        (x &- ones) & ~x & high != 0
    }

    /// `true` when every byte is below 0x80.
    @inline(__always)
    package static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        var seen: UInt64 = 0
        var i = 0
        while i + 8 <= bytes.count {
            seen |= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < bytes.count {
            seen |= UInt64(base[i])
            i += 1
        }
        return seen & high == 0
    }
}
