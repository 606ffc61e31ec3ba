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
    /// The topic, prefix applied.
    public let topic: String
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

    @inline(__always)
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            byte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        byte(UInt8(v))
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

    /// Decimal ASCII of `v` (what `String(v)` gives).
    @inline(__always)
    mutating func decimal(_ v: Int64) {
        if v >= 0 && v < 10 {
            byte(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v))
            return
        }
        if v < 0 { byte(UInt8(ascii: "-")) }
        var magnitude = v.magnitude
        // Digits are produced backwards, two at a time, into a 20-byte window, then moved into place.
        let pairs = Self.digitPairs.utf8Start
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var i = 20
            while magnitude >= 100 {
                let pair = Int(truncatingIfNeeded: magnitude % 100) &* 2
                magnitude /= 100
                i -= 2
                digits[i] = pairs[pair]
                digits[i + 1] = pairs[pair + 1]
            }
            if magnitude >= 10 {
                let pair = Int(truncatingIfNeeded: magnitude) &* 2
                i -= 2
                digits[i] = pairs[pair]
                digits[i + 1] = pairs[pair + 1]
            } else {
                i -= 1
                digits[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude)
            }
            (base + count).update(from: digits.baseAddress! + i, count: 20 - i)
            count &+= 20 - i
        }
    }

    /// "00" "01" … "99": a computed static string, so reading it costs no lazy-global check.
    private static var digitPairs: StaticString { "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899" }
}
