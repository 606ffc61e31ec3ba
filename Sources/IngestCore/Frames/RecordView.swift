/// One record of a data frame: a window of `width` `^`-separated fields over the frame's bytes.
///
/// Valid only inside the closure that produced it (it points into the frame's storage).
struct RecordView {
    /// The payload bytes the field offsets refer to.
    let payload: UnsafeBufferPointer<UInt8>
    /// `starts[k]` is the offset of field k; field k ends one byte before `starts[k + 1]` (the `^`).
    let starts: UnsafeBufferPointer<Int32>
    /// Index of this record's first field in `starts`.
    let first: Int
    /// Fields in this record (documented layout plus any trailing extras).
    let width: Int

    /// The raw bytes of field `i` of this record (0-based, KIS's `#i`).
    @inline(__always)
    func bytes(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        let s = Int(starts[first + i])
        let e = Int(starts[first + i + 1]) - 1
        return UnsafeBufferPointer(rebasing: payload[s..<e])
    }

    func string(_ i: Int) -> String { String(decoding: bytes(i), as: UTF8.self) }
}

/// Splits a payload on `^`, keeping empty fields, into `starts[0..<n]` (the returned `n` is one more than the number
/// of fields): `starts[k]` is where field k begins, the last entry is one past the end (+1). Entries after `n` are
/// stale. `starts` only grows (doubling), so the hot path neither allocates nor checks capacity per field.
///
/// The offsets are stored as `Int32` (payloads are far below 2 GiB; KIS frames are at most a few MB).
@inline(__always)
func splitFields(_ payload: UnsafeBufferPointer<UInt8>, into starts: inout [Int32]) -> Int {
    if starts.count < 64 { starts = [Int32](repeating: 0, count: 64) }
    var n = 0
    var i = 0
    let count = payload.count
    while true {
        let done = starts.withUnsafeMutableBufferPointer { s -> Bool in
            if n == 0 {
                s[0] = 0
                n = 1
            }
            let room = s.count - 1  // one slot stays free for the end marker
            guard let bytes = payload.baseAddress else {
                s[n] = Int32(truncatingIfNeeded: count + 1)
                n += 1
                return true
            }
            // Eight bytes at a time: a word's `^` bytes become its zero bytes, found exactly (no false positives,
            // unlike the shorter has-zero trick) and visited lowest first.
            let low7: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
            // Wrapping arithmetic: none of these can overflow (i < count, n < s.count), and the checks were a
            // sixth of the loop's samples in `perf`.
            while i &+ 8 <= count {
                if room &- n < 8 { return false }
                let x = UInt64(littleEndian: UnsafeRawPointer(bytes + i).loadUnaligned(as: UInt64.self))
                    ^ 0x5E5E_5E5E_5E5E_5E5E
                var zeros = ~(((x & low7) &+ low7) | x | low7)
                let next = Int32(truncatingIfNeeded: i &+ 1)
                while zeros != 0 {
                    s[n] = next &+ Int32(truncatingIfNeeded: zeros.trailingZeroBitCount &>> 3)
                    n &+= 1
                    zeros &= zeros &- 1
                }
                i &+= 8
            }
            while i < count {
                if bytes[i] == UInt8(ascii: "^") {
                    if n == room { return false }
                    s[n] = Int32(truncatingIfNeeded: i + 1)
                    n += 1
                }
                i += 1
            }
            s[n] = Int32(truncatingIfNeeded: count + 1)
            n += 1
            return true
        }
        if done { return n }
        starts.append(contentsOf: repeatElement(0, count: starts.count))
    }
}
