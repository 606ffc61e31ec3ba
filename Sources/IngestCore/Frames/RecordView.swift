internal import CKISScan

/// One record of a data frame: a window of `width` `^`-separated fields over the frame's bytes.
///
/// Valid only inside the closure that produced it (it points into the frame's storage).
struct RecordView {
    /// The payload's first byte: field offsets count from here (never nil, so a field's bytes never are).
    let base: UnsafePointer<UInt8>
    /// This record's offsets: `fields[k]` is where its field k begins; it ends one byte before `fields[k + 1]` (the
    /// `^`).
    let fields: UnsafePointer<Int32>
    /// Fields in this record (documented layout plus any trailing extras).
    let width: Int
    /// The lowest address that may be read: a field's number is read eight bytes at a time, as a word ending at the
    /// field's last byte, when that word starts here or later (`LenientNumber.double(_:readableFrom:)`).
    let floor: UnsafePointer<UInt8>

    /// Record `first / width` of a payload split by `splitFields` into `starts`.
    init(payload: UnsafeBufferPointer<UInt8>, starts: UnsafeBufferPointer<Int32>, first: Int, width: Int,
         readableFrom floor: UnsafePointer<UInt8>? = nil) {
        // An empty payload has no address: its one empty field is read from the floor (zero bytes of it).
        let base = payload.baseAddress.map { UnsafePointer($0) } ?? floor ?? UnsafePointer(bitPattern: Self.nowhere)!
        self.base = base
        fields = starts.baseAddress! + first
        self.width = width
        self.floor = floor ?? base
    }

    /// The address of the empty fields of an empty payload that has no floor either: never read.
    private static let nowhere = 0x1000

    /// The raw bytes of field `i` of this record (0-based, KIS's `#i`).
    @inline(__always)
    func bytes(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        // The offsets come from `splitFields`: strictly increasing and within the payload (the end marker is one past
        // its end), so neither the subtraction nor the slice needs a check.
        let s = Int(truncatingIfNeeded: fields[i])
        let e = Int(truncatingIfNeeded: fields[i &+ 1]) &- 1
        return UnsafeBufferPointer(start: base + s, count: e &- s)
    }

    func string(_ i: Int) -> String { String(decoding: bytes(i), as: UTF8.self) }

    /// Whether sixteen bytes may be read from the start of field #0 (the symbol, copied as two words by
    /// `WireWriter.lengthDelimited(_:_:sixteenReadable:)`): a record of more than 16 fields has at least 16
    /// separators after that point, all inside the payload.
    var sixteenReadableFromFirstField: Bool { width > 16 }

    /// `LenientNumber.double` of field `i`.
    @inline(__always)
    func double(_ i: Int) -> Double? { LenientNumber.double(bytes(i), readableFrom: floor) }

    /// `LenientNumber.int64` of field `i`.
    @inline(__always)
    func int64(_ i: Int) -> Int64? { LenientNumber.int64(bytes(i), readableFrom: floor) }
}

/// Splits a payload on `^`, keeping empty fields, into `starts[0..<n]` (the returned `n` is one more than the number
/// of fields): `starts[k]` is where field k begins, the last entry is one past the end (+1). Entries after `n` are
/// stale. `starts` only grows (doubling), so the hot path neither allocates nor checks capacity per field.
///
/// The offsets are stored as `Int32` (payloads are far below 2 GiB; KIS frames are at most a few MB). The scan is
/// `kis_scan_separators` (C, sixteen bytes per compare): the eight-bytes-at-a-time Swift loop it replaced was a
/// third of `kis-bench parse`'s instructions.
@inline(__always)
func splitFields(_ payload: UnsafeBufferPointer<UInt8>, into starts: inout [Int32]) -> Int {
    if starts.count < 64 { starts = [Int32](repeating: 0, count: 64) }
    var n = 1
    var position = 0
    let count = payload.count
    while true {
        let done = starts.withUnsafeMutableBufferPointer { s -> Bool in
            s[0] = 0
            if let bytes = payload.baseAddress {
                // One slot stays free for the end marker.
                n = kis_scan_separators(bytes, count, &position, s.baseAddress!, n, s.count - 1)
                if position < count { return false }
            }
            s[n] = Int32(truncatingIfNeeded: count + 1)
            n += 1
            return true
        }
        if done { return n }
        starts.append(contentsOf: repeatElement(0, count: starts.count))
    }
}
