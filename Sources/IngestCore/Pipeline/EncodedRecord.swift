/// A market record already in its Kafka form (Protobuf value, key, CreateTime, header values), pointing into the
/// frame and into scratch memory of the pipeline: **valid only inside the callback that receives it**. Copy what you
/// keep (`record` makes a `KafkaRecord`).
///
/// This is the hot path of the live daemon and the replayer: no `MarketMessage`, no Protobuf message structs, no
/// heap allocation per record. It is byte-for-byte what `KafkaRecord(PipelineOutput)` gives for the same record
/// (`FastPathEquivalenceTests` and the fuzz target compare the two on every input they see).
public struct EncodedRecord {
    /// Which market topic: the name is in `topic`.
    public enum Kind: Sendable { case tick, orderBook }

    public let kind: Kind
    /// The topic, prefix applied, as a NUL-terminated C string owned by the pipeline (no reference counting per
    /// record).
    public let topicName: UnsafePointer<CChar>
    /// The symbol, as it appeared in the frame (ASCII).
    public let key: UnsafeRawBufferPointer
    /// The Protobuf message (`TickData` or `OrderBook`).
    public let value: UnsafeRawBufferPointer
    /// CreateTime: the event's own time, milliseconds since the Unix epoch.
    public let timestampMs: Int64
    /// Header `tr_id`.
    public let trID: UnsafeRawBufferPointer
    /// Header `recv_time_ns`: decimal nanoseconds.
    public let receivedAt: UnsafeRawBufferPointer
    /// Header `record`: `index/count`, 1-based.
    public let position: UnsafeRawBufferPointer

    /// The topic, prefix applied.
    public var topic: String { String(cString: topicName) }

    /// An owned copy in the general form.
    public var record: KafkaRecord {
        KafkaRecord(
            topic: topic, key: Array(key), value: Array(value), timestampMs: timestampMs,
            headers: [
                KafkaHeader(KafkaHeaderName.trID, Array(trID)),
                KafkaHeader(KafkaHeaderName.receivedAt, Array(receivedAt)),
                KafkaHeader(KafkaHeaderName.record, Array(position)),
            ])
    }

    /// The key as a String (filters, tests).
    public var symbol: String { String(decoding: key, as: UTF8.self) }
}

/// A topic name held as a C string for the life of the object: the hot path hands the pointer to librdkafka.
final class TopicName: Sendable {
    let string: String
    // @unchecked-free: written once in `init`, freed in `deinit`, read only.
    nonisolated(unsafe) let cString: UnsafeMutablePointer<CChar>

    init(_ string: String) {
        self.string = string
        let bytes = Array(string.utf8CString)
        cString = .allocate(capacity: bytes.count)
        cString.initialize(from: bytes, count: bytes.count)
    }

    deinit { cString.deallocate() }
}

/// The decimal digits of `v / 10^8` for the last `v` that `WireWriter.decimal(_:prefix:)` wrote: at most eleven
/// (`Int64.max / 10^8` has eleven), in two words.
struct DecimalPrefix {
    /// `v / 10^8` of the digits held; -1 (no value has it) until the first.
    private(set) var high: Int64 = -1
    private(set) var text: (UInt64, UInt64) = (0, 0)
    private(set) var count = 0

    @inline(never)
    mutating func set(_ high: Int64) {
        var words: (UInt64, UInt64, UInt64) = (0, 0, 0)
        let n = withUnsafeMutableBytes(of: &words) { buffer -> Int in
            var w = WireWriter(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self))
            w.decimal(high)
            return w.count
        }
        self.high = high
        text = (words.0, words.1)
        count = n
    }
}

/// Writes Protobuf wire format into fixed scratch memory (sized by the caller for the largest message).
struct WireWriter {
    let base: UnsafeMutablePointer<UInt8>
    var count = 0

    init(_ base: UnsafeMutablePointer<UInt8>) { self.base = base }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        base[count] = b
        count &+= 1
    }

    /// A base-128 varint. Up to five bytes (quantities, lengths) a byte at a time; longer ones (a nanosecond
    /// timestamp takes nine) with the first eight bytes in one store, seven bits spread into each and the continuation
    /// bits set on all but the last, rather than a loop of nine rounds. Needs 8 bytes of room.
    @inline(__always)
    mutating func varint(_ value: UInt64) {
        if value < 1 << 35 {
            var v = value
            while v >= 0x80 {
                byte(UInt8(truncatingIfNeeded: v) | 0x80)
                v >>= 7
            }
            byte(UInt8(truncatingIfNeeded: v))
            return
        }
        let spread = Self.spread7(value)
        let size = Self.varintSize(value)
        let raw = UnsafeMutableRawPointer(base + count)
        if size <= 8 {
            // Continuation bits on bytes 0 ..< size - 1.
            let continuation: UInt64 = 0x8080_8080_8080_8080 & ((1 &<< (UInt64(size &- 1) &* 8)) &- 1)
            raw.storeBytes(of: (spread | continuation).littleEndian, as: UInt64.self)
            count &+= size
            return
        }
        raw.storeBytes(of: (spread | 0x8080_8080_8080_8080).littleEndian, as: UInt64.self)
        count &+= 8
        // The top eight bits: one byte, or two for the 64th.
        let top = value &>> 56
        if top < 0x80 {
            byte(UInt8(truncatingIfNeeded: top))
        } else {
            byte(UInt8(truncatingIfNeeded: top) | 0x80)
            byte(1)
        }
    }

    /// The low 56 bits of `v`, seven to a byte (byte k holds bits 7k ..< 7k + 7), high bits of each byte clear.
    @inline(__always)
    static func spread7(_ v: UInt64) -> UInt64 {
        (v & 0x7F) | ((v &<< 1) & 0x7F00) | ((v &<< 2) & 0x7F_0000) | ((v &<< 3) & 0x7F00_0000)
            | ((v &<< 4) & 0x7F_0000_0000) | ((v &<< 5) & 0x7F00_0000_0000) | ((v &<< 6) & 0x7F_0000_0000_0000)
            | ((v &<< 7) & 0x7F00_0000_0000_0000)
    }

    @inline(__always)
    static func varintSize(_ value: UInt64) -> Int {
        value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
    }

    /// A length-delimited field (tag `field`, wire type 2) with the given bytes.
    @inline(__always)
    mutating func lengthDelimited(_ field: UInt8, _ p: UnsafeBufferPointer<UInt8>) {
        byte(field << 3 | 2)
        varint(UInt64(p.count))
        (base + count).update(from: p.baseAddress!, count: p.count)
        count &+= p.count
    }

    /// `lengthDelimited` for bytes of which at least sixteen may be read (the field's own and what follows them in
    /// the frame): up to sixteen are copied as two words, not by a call to `memmove`. Needs 16 bytes of room.
    @inline(__always)
    mutating func lengthDelimited(_ field: UInt8, _ p: UnsafeBufferPointer<UInt8>, sixteenReadable: Bool) {
        guard sixteenReadable, p.count <= 16, let source = p.baseAddress else {
            lengthDelimited(field, p)
            return
        }
        byte(field << 3 | 2)
        byte(UInt8(truncatingIfNeeded: p.count))
        let from = UnsafeRawPointer(source)
        let to = UnsafeMutableRawPointer(base + count)
        to.storeBytes(of: from.loadUnaligned(as: UInt64.self), as: UInt64.self)
        to.storeBytes(of: from.loadUnaligned(fromByteOffset: 8, as: UInt64.self), toByteOffset: 8, as: UInt64.self)
        count &+= p.count
    }

    /// A double field as SwiftProtobuf writes it: left out when the bit pattern is +0.0.
    @inline(__always)
    mutating func double(_ field: UInt8, _ v: Double) {
        guard v.bitPattern != 0 else { return }
        byte(field << 3 | 1)
        var bits = v.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { UnsafeMutableRawPointer(base + count).copyMemory(from: $0.baseAddress!, byteCount: 8) }
        count &+= 8
    }

    /// An int64 field as SwiftProtobuf writes it: a varint, left out when 0.
    @inline(__always)
    mutating func int64(_ field: UInt8, _ v: Int64) {
        guard v != 0 else { return }
        byte(field << 3)
        varint(UInt64(bitPattern: v))
    }

    /// Decimal ASCII of `v` (what `String(v)` gives), eight digits at a time without a loop: a receive time in
    /// nanoseconds has 19 digits, written once per frame. Needs 24 bytes of room (it writes whole words).
    @inline(__always)
    mutating func decimal(_ v: Int64) {
        if v >= 0 && v < 10 {
            byte(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v))
            return
        }
        if v < 0 { byte(UInt8(ascii: "-")) }
        let m = v.magnitude
        let raw = UnsafeMutableRawPointer(base + count)
        if m >= 100_000_000 {
            let low = Self.eightDigits(m % 100_000_000)
            let rest = m / 100_000_000
            var n = 0
            if rest >= 100_000_000 {
                // Sixteen digits and more: an Int64's magnitude has at most 19, so the top part has 1 to 3.
                n = Self.leadingDigits(rest / 100_000_000, into: raw)
                raw.storeBytes(of: Self.eightDigits(rest % 100_000_000), toByteOffset: n, as: UInt64.self)
                n &+= 8
            } else {
                n = Self.leadingDigits(rest, into: raw)
            }
            raw.storeBytes(of: low, toByteOffset: n, as: UInt64.self)
            count &+= n &+ 8
        } else {
            count &+= Self.leadingDigits(m, into: raw)
        }
    }

    /// `decimal(v)`, with the digits above the low eight taken from `prefix` when they are the ones it holds (and
    /// left there for the next value otherwise): a receive time's top eleven digits change once every 100 ms, so
    /// consecutive frames nearly always share them and only the low eight are computed. Needs 24 bytes of room.
    @inline(__always)
    mutating func decimal(_ v: Int64, prefix: inout DecimalPrefix) {
        guard v >= 100_000_000 else {
            decimal(v)
            return
        }
        let high = v / 100_000_000
        if high != prefix.high { prefix.set(high) }
        let raw = UnsafeMutableRawPointer(base + count)
        // The prefix's sixteen bytes stored whole; the low digits overwrite what follows its own.
        raw.storeBytes(of: prefix.text.0, as: UInt64.self)
        raw.storeBytes(of: prefix.text.1, toByteOffset: 8, as: UInt64.self)
        raw.storeBytes(
            of: Self.eightDigits(UInt64(truncatingIfNeeded: v &- high &* 100_000_000)), toByteOffset: prefix.count,
            as: UInt64.self)
        count &+= prefix.count &+ 8
    }

    /// `"index/count"`. Not inlined: inlined, the optimizer computed it for every record of a frame ahead of the
    /// test that skips it (nearly every frame has fewer than ten records and takes the three-byte path).
    @inline(never)
    mutating func position(_ index: Int, of count: Int) {
        decimal(Int64(index))
        byte(UInt8(ascii: "/"))
        decimal(Int64(count))
    }

    /// `m` < 10^8 in decimal, without leading zeros (`0` is one digit), stored as a whole word at `raw`; returns how
    /// many of its bytes are digits.
    @inline(__always)
    private static func leadingDigits(_ m: UInt64, into raw: UnsafeMutableRawPointer) -> Int {
        let w = eightDigits(m)
        // The leading '0' bytes are the low bytes of the word; keep at least the last digit.
        let zeros = min(((w ^ 0x3030_3030_3030_3030) | (1 &<< 63)).trailingZeroBitCount >> 3, 7)
        raw.storeBytes(of: w &>> (UInt64(zeros) &* 8), as: UInt64.self)
        return 8 &- zeros
    }

    /// The eight decimal digits of `m` < 10^8, leading zeros included, as ASCII in one little-endian word (the first
    /// byte the most significant digit): split into two halves of four, four of two, eight of one, in parallel lanes.
    @inline(__always)
    static func eightDigits(_ m: UInt64) -> UInt64 {
        let x = (m / 10_000) | ((m % 10_000) &<< 32)
        let hundreds = ((x &* 10_486) &>> 20) & 0x0000_007F_0000_007F
        let y = hundreds | ((x &- hundreds &* 100) &<< 16)
        let tens = ((y &* 103) &>> 10) & 0x000F_000F_000F_000F
        let z = tens | ((y &- tens &* 10) &<< 8)
        return z | 0x3030_3030_3030_3030
    }
}
