internal import CKISScan

extension FramePipeline.TrCounters {
    @inline(__always)
    mutating func count(width w: Int, records n: Int, extra: Bool) {
        records += n
        if extra { extraFieldRecords += n }
        if w == width || framesAtWidth == 0 {
            width = w
            framesAtWidth += 1
        } else {
            // Widths are chosen by the server: a broken feed must not grow this without bound.
            otherWidths.add(framesAtWidth, bounded: width, other: PipelineStats.otherWidth)
            width = w
            framesAtWidth = 1
        }
    }
}

/// The frame path shared by the live daemon and the replayer: classify an inbound KIS text message, split and
/// decrypt data frames, map every record, and route what cannot be mapped to the dead-letter topic.
///
/// A value type with one owner: feed it messages in arrival order. It learns AES keys from subscription acks (per
/// tr_id, replaced by every new ack, as KIS hands out new keys on every connection).
public struct FramePipeline: Sendable {
    public var topics: TopicConfiguration {
        didSet { resolveTopics() }
    }
    /// `topics.resolvedTick` / `resolvedOrderBook`, computed once (they concatenate the prefix).
    private var tickTopic = ""
    private var bookTopic = ""
    /// The same as C strings for the hot path (`EncodedRecord.topicName`).
    private var tickTopicName = TopicName("")
    private var bookTopicName = TopicName("")

    private mutating func resolveTopics() {
        tickTopic = topics.resolvedTick
        bookTopic = topics.resolvedOrderBook
        tickTopicName = TopicName(tickTopic)
        bookTopicName = TopicName(bookTopic)
    }
    /// Counters that are not per TR; per-TR ones are in `perTR` and folded in when `stats` is read.
    /// The mapper owns the counters that are not per TR (`counters`): one instance for the pipeline's life, so the
    /// hot path neither builds nor swaps one per frame.
    private var mapper = MarketMapper(stats: PipelineStats())
    private var counters: PipelineStats {
        get { mapper.stats }
        _modify { yield &mapper.stats }
    }
    private var perTR = InlineArray<6, TrCounters>(repeating: TrCounters())

    /// Per-TR counters kept in an array indexed by `TrLayout.ordinal`: the hot path touches no dictionary.
    struct TrCounters: Sendable {
        var frames = 0
        var records = 0
        var published = 0
        var extraFieldRecords = 0
        var width = 0
        var framesAtWidth = 0
        var otherWidths: [Int: Int] = [:]
    }

    /// Inbound messages so far (cheap, unlike `stats`).
    public var messageCount: Int { counters.messages }

    /// Everything counted so far (folds the per-TR counters: read it now and then, not per message).
    public var stats: PipelineStats { snapshot.stats }

    /// The counters as they are, unfolded: cheap to take on the hot path (a few reference-count increments); fold
    /// them with `stats` where they are read.
    public var snapshot: Snapshot {
        Snapshot(counters: counters, perTR: (0..<perTR.count).map { perTR[$0] }, topics: topics)
    }

    /// Counters taken by `snapshot`, folded into a `PipelineStats` on demand.
    public struct Snapshot: Sendable {
        fileprivate var counters: PipelineStats
        fileprivate var perTR: [TrCounters]
        fileprivate var topics: TopicConfiguration

        public init() {
            counters = PipelineStats()
            perTR = []
            topics = TopicConfiguration()
        }

        fileprivate init(counters: PipelineStats, perTR: [TrCounters], topics: TopicConfiguration) {
            self.counters = counters
            self.perTR = perTR
            self.topics = topics
        }

        public var stats: PipelineStats {
            var s = counters
            for layout in TrLayout.all where layout.ordinal < perTR.count {
                let c = perTR[layout.ordinal]
                guard c.frames > 0 else { continue }
                s.framesByTrID[layout.trID, default: 0] += c.frames
                if c.records > 0 { s.recordsByTrID[layout.trID, default: 0] += c.records }
                if c.extraFieldRecords > 0 { s.recordsWithExtraFields[layout.trID, default: 0] += c.extraFieldRecords }
                var widths = c.otherWidths
                if c.framesAtWidth > 0 { widths[c.width, default: 0] += c.framesAtWidth }
                if !widths.isEmpty { s.widthsByTrID[layout.trID, default: [:]].merge(widths, uniquingKeysWith: +) }
                if c.published > 0, let topic = FramePipeline.topic(for: layout, topics) {
                    s.messagesByTopic[topic, default: 0] += c.published
                }
            }
            return s
        }
    }

    private static func topic(for layout: TrLayout, _ topics: TopicConfiguration) -> String? {
        switch layout.mapping {
        case .domesticTrade, .overseasTrade: topics.resolvedTick
        case .domesticBook, .overseasBook: topics.resolvedOrderBook
        case .executionNotice: topics.resolvedNotice
        }
    }

    private var keys: [String: AESKey] = [:]
    /// The receive-time header's digits above the low eight, kept from frame to frame (`WireWriter.decimal(_:prefix:)`).
    private var receivedPrefix = DecimalPrefix()
    private var starts: [Int32] = []
    /// The hot path's tr_id lookup (no global access, no retain per frame).
    private let layouts = TrLayout.Table()

    public init(topics: TopicConfiguration = TopicConfiguration()) {
        precondition(TrLayout.all.count == perTR.count, "FramePipeline.perTR holds a counter per TrLayout.all")
        self.topics = topics
        starts = [Int32](repeating: 0, count: 1024)
        resolveTopics()
    }

    /// Forgets the AES keys: call on every new connection (keys are per connection).
    public mutating func resetKeys() { keys.removeAll() }

    /// Processes one inbound message and returns what it turned into.
    public mutating func process(_ message: String, receivedAt: Int64) -> [PipelineOutput] {
        var out: [PipelineOutput] = []
        process(message, receivedAt: receivedAt) { out.append($0) }
        return out
    }

    /// Processes one inbound message and hands each result to `emit`, in record order.
    public mutating func process(
        _ message: String, receivedAt: Int64, emit: (PipelineOutput) throws -> Void
    ) rethrows {
        try process(message, receivedAt: receivedAt, fast: false, encoded: { _ in }, emit: emit)
    }

    /// The hot path: processes one inbound message, handing every trade and order book to `encoded` already in its
    /// Kafka form (valid only during the call) and everything else (dead letters, notices, control messages) to
    /// `other`, in record order. What comes out is byte-for-byte what `KafkaRecord(_:)` makes of the outputs of
    /// `process(_:receivedAt:emit:)`, and the counters are the same.
    public mutating func process(
        _ message: String, receivedAt: Int64, encoded: (EncodedRecord) throws -> Void,
        other: (PipelineOutput) throws -> Void
    ) rethrows {
        try process(message, receivedAt: receivedAt, fast: true, encoded: encoded, emit: other)
    }

    /// The hot path for bytes already in memory (a recording read flat out): as `process(_:receivedAt:encoded:other:)`
    /// for the `String` these bytes spell, which must be valid UTF-8 (`RecordingReader` guarantees it).
    public mutating func process(
        bytes: UnsafeBufferPointer<UInt8>, receivedAt: Int64, encoded: (EncodedRecord) throws -> Void,
        other: (PipelineOutput) throws -> Void
    ) rethrows {
        try process(bytes: bytes, receivedAt: receivedAt, fast: true, encoded: encoded, emit: other)
    }

    /// `process(_:receivedAt:emit:)` for bytes already in memory (valid UTF-8).
    public mutating func process(
        bytes: UnsafeBufferPointer<UInt8>, receivedAt: Int64, emit: (PipelineOutput) throws -> Void
    ) rethrows {
        try process(bytes: bytes, receivedAt: receivedAt, fast: false, encoded: { _ in }, emit: emit)
    }

    private mutating func process(
        _ message: String, receivedAt: Int64, fast: Bool, encoded: (EncodedRecord) throws -> Void,
        emit: (PipelineOutput) throws -> Void
    ) rethrows {
        // A native String lends its UTF-8 in place; copying it first (`var` + `withUTF8`) cost a retain and a
        // release of the frame's storage per frame (atomic operations: a sixth of `kis-bench parse`'s samples were
        // reference counting).
        let lent: Void? = try message.utf8.withContiguousStorageIfAvailable { bytes in
            try process(bytes: bytes, receivedAt: receivedAt, fast: fast, encoded: encoded, emit: emit)
        }
        if lent == nil {
            var text = message
            try text.withUTF8 { bytes in
                try process(bytes: bytes, receivedAt: receivedAt, fast: fast, encoded: encoded, emit: emit)
            }
        }
    }

    private mutating func process(
        bytes: UnsafeBufferPointer<UInt8>, receivedAt: Int64, fast: Bool, encoded: (EncodedRecord) throws -> Void,
        emit: (PipelineOutput) throws -> Void
    ) rethrows {
        counters.messages += 1
        guard let first = bytes.first else {
            try deadLetter(FrameError(.emptyMessage, "empty message"), bytes: bytes, trID: nil, receivedAt: receivedAt, emit: emit)
            return
        }
        if first == UInt8(ascii: "{") || first == UInt8(ascii: " ") || first == UInt8(ascii: "\t")
            || first == UInt8(ascii: "\n") || first == UInt8(ascii: "\r")
        {
            try processControl(bytes, receivedAt: receivedAt, emit: emit)
            return
        }
        // Where the tr_id is in `bytes`, once the header has been read: the dead letter of a data frame names it.
        var trRange = 0..<0
        // `FrameError`s become dead letters; errors of `encoded` and `emit` pass through.
        let result: FrameError? = try rethrowing { () -> FrameError? in
            do {
                if fast, try dataFrameFast(bytes, receivedAt: receivedAt, trRange: &trRange, encoded: encoded, emit: emit) {
                    return nil
                }
                try dataFrame(bytes, receivedAt: receivedAt, trRange: &trRange, fast: fast, encoded: encoded, emit: emit)
                return nil
            } catch let error as FrameError {
                return error
            }
        }
        if let error = result {
            let trID = trRange.isEmpty ? nil : String(decoding: UnsafeBufferPointer(rebasing: bytes[trRange]), as: UTF8.self)
            try deadLetter(error, bytes: bytes, trID: trID, receivedAt: receivedAt, emit: emit)
        }
    }

    private mutating func deadLetter(
        _ error: FrameError, bytes: UnsafeBufferPointer<UInt8>, trID: String?, receivedAt: Int64,
        emit: (PipelineOutput) throws -> Void
    ) rethrows {
        counters.deadLettersByReason[error.reason.name, default: 0] += 1
        let raw = String(decoding: bytes, as: UTF8.self)
        // JSON kept as a dead letter must not carry credentials (a REST body fed in by mistake, say).
        let kept = raw.utf8.first == UInt8(ascii: "{") ? Secrets.maskJSON(raw) : raw
        try emit(
            .deadLetter(
                DeadLetter(
                    topic: topics.resolvedDeadLetter, reason: error.reason, detail: error.detail, raw: kept,
                    trID: trID, receivedAt: receivedAt)))
    }

    /// A JSON control message (ack, PINGPONG, error): learns the AES keys of subscription acks.
    private mutating func processControl(
        _ bytes: UnsafeBufferPointer<UInt8>, receivedAt: Int64, emit: (PipelineOutput) throws -> Void
    ) rethrows {
        let control: ControlMessage
        do throws(FrameError) {
            control = try ControlMessage.parse(bytes)
            try learn(control)
        } catch {
            // `learn` fails after the tr_id is known (a bad AES key in an ack): the dead letter names it.
            let trID = (try? ControlMessage.parse(bytes))?.trID
            try deadLetter(error, bytes: bytes, trID: trID, receivedAt: receivedAt, emit: emit)
            return
        }
        counters.controlByCode.increment(bounded: control.code)
        try emit(.control(control))
    }

    /// The data frame path for the shape KIS sends (`0|` + an 8-character known tr_id + `|` + a 3-digit count + `|`,
    /// a trade or order book TR, at most `Self.stackFields` fields): header and field offsets without any state
    /// touched, then the records. Returns `false`, having changed nothing, for anything else (or anything it would
    /// have to refuse): `dataFrame` then takes the frame from the start and gives the exact outcome.
    @inline(__always)
    private mutating func dataFrameFast(
        _ bytes: UnsafeBufferPointer<UInt8>, receivedAt: Int64, trRange: inout Range<Int>,
        encoded: (EncodedRecord) throws -> Void, emit: (PipelineOutput) throws -> Void
    ) throws -> Bool {
        let n = bytes.count
        guard n > 15, let p = bytes.baseAddress, p[0] == UInt8(ascii: "0"), p[1] == UInt8(ascii: "|"),
            p[10] == UInt8(ascii: "|"), p[14] == UInt8(ascii: "|")
        else { return false }
        let ordinal = TrLayout.Table.marketOrdinal(word: UnsafeRawPointer(p + 2).loadUnaligned(as: UInt64.self))
        guard ordinal >= 0 else { return false }
        let d0 = p[11] &- UInt8(ascii: "0"), d1 = p[12] &- UInt8(ascii: "0"), d2 = p[13] &- UInt8(ascii: "0")
        guard d0 < 10, d1 < 10, d2 < 10 else { return false }
        let count = Int(d0) &* 100 &+ Int(d1) &* 10 &+ Int(d2)
        guard count > 0 else { return false }
        let layout = TrLayout.Table.marketShape(ordinal)
        let payload = UnsafeBufferPointer(start: p + 15, count: n &- 15)
        // `entries` offsets in `starts` (the last one the end marker): the frame is this path's unless they do not
        // make whole records of at least the documented width.
        func records(_ starts: UnsafeBufferPointer<Int32>, _ entries: Int) throws -> Bool {
            let fieldCount = entries &- 1
            guard count == 1 || fieldCount % count == 0 else { return false }
            let width = count == 1 ? fieldCount : fieldCount / count
            guard width >= layout.documentedWidth else { return false }
            // From here on the frame is this path's: counted, and every record published or dead-lettered.
            trRange = 2..<10
            perTR[ordinal].frames &+= 1
            perTR[ordinal].count(width: width, records: count, extra: width > layout.documentedWidth)
            try mapRecords(
                payload, floor: p, starts: starts, layout: layout,
                trBytes: UnsafeBufferPointer(start: p + 2, count: 8), count: count, width: width,
                receivedAt: receivedAt, fast: true, encoded: encoded, emit: emit)
            return true
        }
        // A payload of one order book or a few trades: its offsets on the stack.
        if payload.count <= Self.stackPayload {
            let done: Bool? = try withUnsafeTemporaryAllocation(of: Int32.self, capacity: Self.stackFields) { starts in
                var position = 0
                starts[0] = 0
                // One slot stays free for the end marker.
                var entries = kis_scan_separators(
                    payload.baseAddress!, payload.count, &position, starts.baseAddress!, 1, Self.stackFields - 1)
                guard position == payload.count else { return nil }
                starts[entries] = Int32(truncatingIfNeeded: payload.count &+ 1)
                entries &+= 1
                return try records(UnsafeBufferPointer(starts), entries)
            }
            if let done { return done }
        }
        // More fields: the pipeline's growable buffer, moved out for the records (the mapper mutates `self`).
        let entries = splitFields(payload, into: &starts)
        var localStarts: [Int32] = []
        swap(&localStarts, &starts)
        defer { swap(&localStarts, &starts) }
        return try localStarts.withUnsafeBufferPointer { try records($0, entries) }
    }

    /// Payloads up to this many bytes try the stack for their field offsets (KIS fields average six bytes or more).
    static let stackPayload = 1500

    /// Field offsets the fast path keeps on the stack: 1 KiB, the most `withUnsafeTemporaryAllocation` puts there
    /// (a larger request goes to the heap). Enough for one order book or five trades; a frame of more fields takes
    /// the general path.
    static let stackFields = 255

    private mutating func dataFrame(
        _ bytes: UnsafeBufferPointer<UInt8>, receivedAt: Int64, trRange: inout Range<Int>, fast: Bool,
        encoded: (EncodedRecord) throws -> Void, emit: (PipelineOutput) throws -> Void
    ) throws {
        let first = bytes[0]
        guard first == UInt8(ascii: "0") || first == UInt8(ascii: "1"), bytes.count > 1, bytes[1] == UInt8(ascii: "|")
        else {
            throw FrameError(
                .unknownMessageType, "message starts with neither '{' nor '0|' nor '1|' (\(bytes.count) bytes)")
        }
        // Header: flag|tr_id|count|payload, split at most three times: a loop per bar.
        let n = bytes.count
        var bar1 = 2
        while bar1 < n && bytes[bar1] != UInt8(ascii: "|") { bar1 &+= 1 }
        var bar2 = bar1 &+ 1
        while bar2 < n && bytes[bar2] != UInt8(ascii: "|") { bar2 &+= 1 }
        guard bar2 < n else {
            throw FrameError(.malformedHeader, "data frame has \(bar1 < n ? 3 : 2) of the 4 parts flag|tr_id|count|payload")
        }
        let trBytes = UnsafeBufferPointer(rebasing: bytes[2..<bar1])
        // A known tr_id is alphanumeric: only an unknown one is checked byte by byte.
        let known = layouts.layout(trBytes)
        guard known != nil
            || (!trBytes.isEmpty && trBytes.count <= 16
                && trBytes.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }))
        else {
            throw FrameError(.malformedHeader, "tr_id is empty or not alphanumeric")
        }
        trRange = 2..<bar1
        if let known {
            perTR[known.ordinal].frames += 1
        } else {
            counters.framesByTrID.increment(bounded: String(decoding: trBytes, as: UTF8.self))
        }
        let countBytes = UnsafeBufferPointer(rebasing: bytes[(bar1 + 1)..<bar2])
        var count = 0
        var countIsDigits = !countBytes.isEmpty && countBytes.count <= 6
        for c in countBytes {
            let d = c &- UInt8(ascii: "0")
            if d >= 10 { countIsDigits = false }
            count = count &* 10 &+ Int(d)
        }
        guard countIsDigits, count > 0 else {
            throw FrameError(
                .badRecordCount,
                "record count \"\(String(decoding: countBytes.prefix(12), as: UTF8.self))\" is not a positive number")
        }
        guard let layout = known else {
            throw FrameError(.unmappedTrID, "no mapping for tr_id \(String(decoding: trBytes, as: UTF8.self))")
        }
        let payload = UnsafeBufferPointer(rebasing: bytes[(bar2 + 1)...])
        if first == UInt8(ascii: "1") {
            guard let key = keys[layout.trID] else {
                throw FrameError(.missingKey, "encrypted \(layout.trID) frame before its subscription ack (no AES key yet)")
            }
            let plaintext = try key.decrypt(base64: payload)
            try plaintext.withUnsafeBufferPointer { p in
                guard validUTF8(p) else { throw FrameError(.invalidUTF8, "decrypted \(layout.trID) payload is not UTF-8") }
                try records(
                    p, floor: nil, layout: layout, trBytes: trBytes, count: count, receivedAt: receivedAt, fast: fast,
                    encoded: encoded, emit: emit)
            }
        } else {
            // The frame's header lies before the payload: its fields' numbers may be read as words ending at them.
            try records(
                payload, floor: bytes.baseAddress, layout: layout, trBytes: trBytes, count: count,
                receivedAt: receivedAt, fast: fast, encoded: encoded, emit: emit)
        }
    }

    private func validUTF8(_ p: UnsafeBufferPointer<UInt8>) -> Bool {
        var it = p.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    private mutating func records(
        _ payload: UnsafeBufferPointer<UInt8>, floor: UnsafePointer<UInt8>?, layout: TrLayout, trBytes:
            UnsafeBufferPointer<UInt8>, count: Int, receivedAt: Int64, fast: Bool, encoded: (EncodedRecord) throws -> Void,
        emit: (PipelineOutput) throws -> Void
    ) throws {
        let fieldCount = splitFields(payload, into: &starts) - 1
        // Most frames hold one record: no division then.
        guard count == 1 || fieldCount % count == 0 else {
            throw FrameError(
                .fieldCountMismatch, "\(fieldCount) fields do not divide into \(count) records of \(layout.trID)")
        }
        let width = count == 1 ? fieldCount : fieldCount / count
        guard width >= layout.documentedWidth else {
            throw FrameError(
                .recordTooShort,
                "\(layout.trID) records have \(width) fields, fewer than the documented \(layout.documentedWidth)")
        }
        perTR[layout.ordinal].count(width: width, records: count, extra: width > layout.documentedWidth)
        // The offsets are moved out for the records (the mapper mutates `self` meanwhile) and back after them: a copy
        // cost a retain and a release per frame.
        var localStarts: [Int32] = []
        swap(&localStarts, &starts)
        defer { swap(&localStarts, &starts) }
        try localStarts.withUnsafeBufferPointer { s in
            try mapRecords(
                payload, floor: floor, starts: s, layout: layout.shape, trBytes: trBytes, count: count, width: width,
                receivedAt: receivedAt, fast: fast, encoded: encoded, emit: emit)
        }
    }

    /// Maps the `count` records of a split payload: trades and order books straight into their Kafka form for
    /// `encoded` (`fast`), everything else (and any record the wire mapping declines) through the general mappings
    /// to `emit`. Throws `badField` after the good records, when any record failed.
    @inline(__always)
    private mutating func mapRecords(
        _ payload: UnsafeBufferPointer<UInt8>, floor: UnsafePointer<UInt8>?, starts s: UnsafeBufferPointer<Int32>,
        layout: TrLayout.Shape, trBytes: UnsafeBufferPointer<UInt8>, count: Int, width: Int, receivedAt: Int64,
        fast: Bool, encoded: (EncodedRecord) throws -> Void, emit: (PipelineOutput) throws -> Void
    ) throws {
        var published = 0
        // No array until a record fails: an empty one still cost a release call per frame.
        var failures: [String]? = nil
        let kind: EncodedRecord.Kind? =
            switch layout.mapping {
            case .domesticTrade, .overseasTrade: .tick
            case .domesticBook, .overseasBook: .orderBook
            case .executionNotice: nil
            }
        // The topic as a C string held by the pipeline: a raw pointer, so nothing is retained per record.
        let topicName = kind == .tick ? tickTopicName.cString : bookTopicName.cString
        // Only domestic order books take their date from the receive time.
        let kstDay = layout.mapping == .domesticBook ? KSTTime.kstDay(ofNanoseconds: receivedAt) : 0
        // Scratch for the hot path: the largest value (an order book of 20 levels and a 32-byte symbol) is under
        // 500 bytes; header values under 64.
        try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { scratch in
            try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { headerScratch in
                var receivedText = WireWriter(headerScratch.baseAddress!)
                if fast { receivedText.decimal(receivedAt, prefix: &receivedPrefix) }
                // The tr_id header is the tr_id's bytes in the frame (`trBytes`): no `String` per frame.
                for index in 0..<count {
                    let record = RecordView(
                        payload: payload, starts: s, first: index &* width, width: width, readableFrom: floor)
                    if fast, let kind {
                        var w = WireWriter(scratch.baseAddress!)
                        let timestamp: Int64? =
                            switch layout.mapping {
                            case .domesticTrade: mapper.wireDomesticTrade(record, into: &w)
                            case .overseasTrade: mapper.wireOverseasTrade(record, into: &w)
                            case .domesticBook: mapper.wireDomesticBook(record, kstDay: kstDay, into: &w)
                            case .overseasBook: mapper.wireOverseasBook(record, into: &w)
                            case .executionNotice: nil
                            }
                        if let timestamp {
                            var position = WireWriter(headerScratch.baseAddress! + 32)
                            if count < 10 {
                                // "1/1" … "9/9": nearly every frame.
                                position.byte(UInt8(ascii: "1") &+ UInt8(truncatingIfNeeded: index))
                                position.byte(UInt8(ascii: "/"))
                                position.byte(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: count))
                            } else {
                                position.position(index + 1, of: count)
                            }
                            published &+= 1
                            try encoded(
                                EncodedRecord(
                                    kind: kind, topicName: topicName, key: UnsafeRawBufferPointer(record.bytes(0)),
                                    value: w.bytes, timestampMs: KafkaRecord.milliseconds(timestamp),
                                    trID: UnsafeRawBufferPointer(trBytes), receivedAt: receivedText.bytes,
                                    position: position.bytes))
                            continue
                        }
                        // Declined: the general mapping below gives the exact error (or the message).
                    }
                    if try generalRecord(record, layout: layouts[layout.ordinal], index: index, count: count, receivedAt: receivedAt,
                                         failures: &failures, emit: emit) {
                        published &+= 1
                    }
                }
            }
        }
        perTR[layout.ordinal].published &+= published
        if let failures {
            // The good records of the frame were published; the whole raw frame is kept with what failed.
            throw FrameError(.badField, failures.joined(separator: "; "))
        }
    }

    /// One record through the general mappings to `emit`; `true` when it was published, `false` when it failed (its
    /// error appended to `failures`) or is a notice with no topic.
    @inline(never)
    private mutating func generalRecord(
        _ record: RecordView, layout: TrLayout, index: Int, count: Int, receivedAt: Int64, failures: inout [String]?,
        emit: (PipelineOutput) throws -> Void
    ) rethrows -> Bool {
        let event: MarketEvent
        let topic: String
        do throws(FrameError) {
            switch layout.mapping {
            case .domesticTrade:
                event = .tick(try mapper.domesticTrade(record))
                topic = tickTopic
            case .overseasTrade:
                event = .tick(try mapper.overseasTrade(record))
                topic = tickTopic
            case .domesticBook:
                event = .orderBook(try mapper.domesticBook(record, receivedAt: receivedAt))
                topic = bookTopic
            case .overseasBook:
                event = .orderBook(try mapper.overseasBook(record))
                topic = bookTopic
            case .executionNotice:
                let notice = try mapper.executionNotice(record, trID: layout.trID, receivedAt: receivedAt)
                guard let noticeTopic = topics.resolvedNotice else {
                    mapper.stats.noticesNotPublished += 1
                    return false
                }
                event = .notice(notice)
                topic = noticeTopic
            }
        } catch {
            failures = (failures ?? []) + [count > 1 ? "record \(index + 1)/\(count): \(error.detail)" : error.detail]
            return false
        }
        try emit(
            .market(
                MarketMessage(
                    topic: topic, event: event, trID: layout.trID, receivedAt: receivedAt, recordIndex: index,
                    recordCount: count)))
        return true
    }

    private mutating func learn(_ control: ControlMessage) throws(FrameError) {
        guard control.kind == .subscribed, let trID = control.trID, let key = control.aesKey, let iv = control.aesIV
        else { return }
        keys[trID] = try AESKey(key: key, iv: iv)
        counters.keysLearned += 1
    }
}

/// Runs `body`: lets a `rethrows` function sort the errors of a call that mixes its own and its closures' errors.
@inline(__always)
private func rethrowing<R>(_ body: () throws -> R) rethrows -> R { try body() }
