public import SwiftProtobuf

extension KafkaRecord {
    /// The Kafka message for a pipeline output; `nil` for control messages, which produce none.
    public init?(_ output: PipelineOutput) {
        switch output {
        case .market(let m): self.init(m)
        case .deadLetter(let d): self.init(d)
        case .control: return nil
        }
    }

    /// A market message: key = symbol, value = Protobuf, CreateTime = event time, headers tr_id, receive time and
    /// record position.
    public init(_ m: MarketMessage) {
        let value: [UInt8]
        switch m.event {
        case .tick(let t): value = FastEncoding.tick(t)
        case .orderBook(let b): value = FastEncoding.book(b)
        case .notice(let n): value = Self.encode(n)
        }
        self.init(
            topic: m.topic, key: Array(m.key.utf8), value: value, timestampMs: Self.milliseconds(m.event.timestamp),
            headers: [
                KafkaHeader(KafkaHeaderName.trID, Array(m.trID.utf8)),
                KafkaHeader(KafkaHeaderName.receivedAt, FastEncoding.decimal(m.receivedAt)),
                KafkaHeader(KafkaHeaderName.record, FastEncoding.position(m.recordIndex + 1, of: m.recordCount)),
            ])
    }

    /// A dead letter: key = tr_id (or `unknown`), value = the raw message, reason and detail in headers, CreateTime
    /// = receive time.
    public init(_ d: DeadLetter) {
        var headers = [
            KafkaHeader(KafkaHeaderName.deadLetterReason, d.reason.name),
            KafkaHeader(KafkaHeaderName.deadLetterDetail, d.detail),
            KafkaHeader(KafkaHeaderName.receivedAt, String(d.receivedAt)),
        ]
        if let trID = d.trID { headers.append(KafkaHeader(KafkaHeaderName.trID, trID)) }
        self.init(
            topic: d.topic, key: Array(d.key.utf8), value: Array(d.raw.utf8),
            timestampMs: Self.milliseconds(d.receivedAt), headers: headers)
    }

    static func milliseconds(_ ns: Int64) -> Int64 {
        ns >= 0 ? ns / 1_000_000 : (ns - 999_999) / 1_000_000
    }

    private static func encode(_ message: some SwiftProtobuf.Message) -> [UInt8] {
        // Serializing a proto3 message cannot fail (no required fields); an empty value would show up in tests.
        (try? message.serializedBytes()) ?? []
    }
}

/// Hot-path encoders, byte-identical to the general ones (tests compare them on the corpus and on random values).
enum FastEncoding {
    /// Decimal ASCII of `v` (what `Array(String(v).utf8)` gives) without a String.
    @inline(__always)
    static func decimal(_ v: Int64) -> [UInt8] {
        if v == .min { return Array(String(v).utf8) }
        var magnitude = v < 0 ? UInt64(-v) : UInt64(v)
        var buffer = [UInt8](repeating: 0, count: 20)
        var i = 20
        repeat {
            i -= 1
            buffer[i] = UInt8(ascii: "0") &+ UInt8(magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        if v < 0 {
            i -= 1
            buffer[i] = UInt8(ascii: "-")
        }
        return Array(buffer[i...])
    }

    /// `"index/count"` as bytes.
    @inline(__always)
    static func position(_ index: Int, of count: Int) -> [UInt8] {
        if index < 10 && count < 10 { return [UInt8(ascii: "0") &+ UInt8(index), UInt8(ascii: "/"), UInt8(ascii: "0") &+ UInt8(count)] }
        return decimal(Int64(index)) + [UInt8(ascii: "/")] + decimal(Int64(count))
    }

    /// TickData in the Protobuf wire format, as SwiftProtobuf writes it: fields in number order, proto3 defaults
    /// (empty string, 0, 0.0 — but not -0.0) left out, doubles as fixed64, int64 as varints.
    static func tick(_ t: TickData) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + t.symbol.utf8.count)
        if !t.symbol.isEmpty {
            out.append(0x0A)
            varint(UInt64(t.symbol.utf8.count), &out)
            out.append(contentsOf: t.symbol.utf8)
        }
        double(2, t.price, &out)
        int64(3, t.volume, &out)
        int64(4, t.timestamp, &out)
        double(5, t.change, &out)
        double(6, t.changeRate, &out)
        if !t.unknownFields.data.isEmpty { out.append(contentsOf: t.unknownFields.data) }
        return out
    }

    /// OrderBook in the Protobuf wire format, as SwiftProtobuf writes it (levels as length-delimited `Level`s).
    static func book(_ b: OrderBook) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + b.symbol.utf8.count + 22 * (b.bids.count + b.asks.count))
        if !b.symbol.isEmpty {
            out.append(0x0A)
            varint(UInt64(b.symbol.utf8.count), &out)
            out.append(contentsOf: b.symbol.utf8)
        }
        for (field, levels) in [(UInt8(2), b.bids), (UInt8(3), b.asks)] {
            for level in levels {
                out.append(field << 3 | 2)
                let hasPrice = level.price.bitPattern != 0
                let length = (hasPrice ? 9 : 0) + (level.quantity != 0 ? 1 + varintSize(UInt64(bitPattern: level.quantity)) : 0)
                    + level.unknownFields.data.count
                varint(UInt64(length), &out)
                double(1, level.price, &out)
                int64(2, level.quantity, &out)
                if !level.unknownFields.data.isEmpty { out.append(contentsOf: level.unknownFields.data) }
            }
        }
        int64(4, b.timestamp, &out)
        if !b.unknownFields.data.isEmpty { out.append(contentsOf: b.unknownFields.data) }
        return out
    }

    @inline(__always)
    private static func varintSize(_ value: UInt64) -> Int {
        value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
    }

    @inline(__always)
    private static func varint(_ value: UInt64, _ out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    @inline(__always)
    private static func double(_ field: UInt8, _ v: Double, _ out: inout [UInt8]) {
        guard v.bitPattern != 0 else { return }
        out.append(field << 3 | 1)
        var bits = v.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { out.append(contentsOf: $0) }
    }

    @inline(__always)
    private static func int64(_ field: UInt8, _ v: Int64, _ out: inout [UInt8]) {
        guard v != 0 else { return }
        out.append(field << 3)
        varint(UInt64(bitPattern: v), &out)
    }
}
