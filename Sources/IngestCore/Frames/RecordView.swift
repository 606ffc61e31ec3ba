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

/// Splits a payload on `^`, keeping empty fields: the result has one more entry than there are fields.
///
/// The offsets are stored as `Int32` (payloads are far below 2 GiB; KIS frames are at most a few MB).
@inline(__always)
func splitFields(_ payload: UnsafeBufferPointer<UInt8>, into starts: inout [Int32]) {
    starts.removeAll(keepingCapacity: true)
    starts.append(0)
    var i = 0
    let n = payload.count
    while i < n {
        if payload[i] == UInt8(ascii: "^") { starts.append(Int32(i + 1)) }
        i += 1
    }
    starts.append(Int32(n + 1))
}
