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

    private mutating func resolveTopics() {
        tickTopic = topics.resolvedTick
        bookTopic = topics.resolvedOrderBook
    }
    /// Counters that are not per TR; per-TR ones are in `perTR` and folded in when `stats` is read.
    /// The mapper owns the counters that are not per TR (`counters`): one instance for the pipeline's life, so the
    /// hot path neither builds nor swaps one per frame.
    private var mapper = MarketMapper(stats: PipelineStats())
    private var counters: PipelineStats {
        get { mapper.stats }
        _modify { yield &mapper.stats }
    }
    private var perTR = [TrCounters](repeating: TrCounters(), count: TrLayout.all.count)

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
    public var snapshot: Snapshot { Snapshot(counters: counters, perTR: perTR, topics: topics) }

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
    private var starts: [Int32] = []
    /// The hot path's tr_id lookup (no global access, no retain per frame).
    private let layouts = TrLayout.Table()

    public init(topics: TopicConfiguration = TopicConfiguration()) {
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
        // The tr_id for a dead letter: a known layout's ordinal (no `String` is made per frame), or the text.
        var trID: String?
        var trOrdinal = -1
        // `FrameError`s become dead letters; errors of `encoded` and `emit` pass through.
        let result: FrameError? = try rethrowing { () -> FrameError? in
            do {
                try processBytes(
                    bytes, receivedAt: receivedAt, trID: &trID, trOrdinal: &trOrdinal, fast: fast, encoded: encoded,
                    emit: emit)
                return nil
            } catch let error as FrameError {
                return error
            }
        }
        if let error = result {
            if trID == nil && trOrdinal >= 0 { trID = layouts[trOrdinal].trID }
            try deadLetter(
                error, raw: String(decoding: bytes, as: UTF8.self), trID: trID, receivedAt: receivedAt, emit: emit)
        }
    }

    private mutating func deadLetter(
        _ error: FrameError, raw: String, trID: String?, receivedAt: Int64, emit: (PipelineOutput) throws -> Void
    ) rethrows {
        counters.deadLettersByReason[error.reason.name, default: 0] += 1
        // JSON kept as a dead letter must not carry credentials (a REST body fed in by mistake, say).
        let kept = raw.utf8.first == UInt8(ascii: "{") ? Secrets.maskJSON(raw) : raw
        try emit(
            .deadLetter(
                DeadLetter(
                    topic: topics.resolvedDeadLetter, reason: error.reason, detail: error.detail, raw: kept,
                    trID: trID, receivedAt: receivedAt)))
    }

    private mutating func processBytes(
        _ bytes: UnsafeBufferPointer<UInt8>, receivedAt: Int64, trID trIDOut: inout String?, trOrdinal: inout Int,
        fast: Bool, encoded: (EncodedRecord) throws -> Void, emit: (PipelineOutput) throws -> Void
    ) throws {
        guard let first = bytes.first else { throw FrameError(.emptyMessage, "empty message") }
        if first == UInt8(ascii: "{") || first == UInt8(ascii: " ") || first == UInt8(ascii: "\t")
            || first == UInt8(ascii: "\n") || first == UInt8(ascii: "\r")
        {
            let control = try ControlMessage.parse(bytes)
            trIDOut = control.trID
            try learn(control)
            counters.controlByCode.increment(bounded: control.code)
            try emit(.control(control))
            return
        }
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
        if let known {
            trOrdinal = known.ordinal
            perTR[known.ordinal].frames += 1
        } else {
            let trID = String(decoding: trBytes, as: UTF8.self)
            trIDOut = trID
            counters.framesByTrID.increment(bounded: trID)
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
                    p, layout: layout, trBytes: trBytes, count: count, receivedAt: receivedAt, fast: fast,
                    encoded: encoded, emit: emit)
            }
        } else {
            try records(
                payload, layout: layout, trBytes: trBytes, count: count, receivedAt: receivedAt, fast: fast,
                encoded: encoded, emit: emit)
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
        _ payload: UnsafeBufferPointer<UInt8>, layout: TrLayout, trBytes: UnsafeBufferPointer<UInt8>, count: Int,
        receivedAt: Int64, fast: Bool, encoded: (EncodedRecord) throws -> Void, emit: (PipelineOutput) throws -> Void
    ) throws {
        let fieldCount = splitFields(payload, into: &starts) - 1
        guard fieldCount % count == 0 else {
            throw FrameError(
                .fieldCountMismatch, "\(fieldCount) fields do not divide into \(count) records of \(layout.trID)")
        }
        let width = fieldCount / count
        guard width >= layout.documentedWidth else {
            throw FrameError(
                .recordTooShort,
                "\(layout.trID) records have \(width) fields, fewer than the documented \(layout.documentedWidth)")
        }
        perTR[layout.ordinal].count(width: width, records: count, extra: width > layout.documentedWidth)

        var published = 0
        var failures: [String] = []
        // The offsets are moved out for the loop (the mapper mutates `self` meanwhile) and back after it: a copy
        // cost a retain and a release per frame.
        var localStarts: [Int32] = []
        swap(&localStarts, &starts)
        defer { swap(&localStarts, &starts) }
        let kind: EncodedRecord.Kind? =
            switch layout.mapping {
            case .domesticTrade, .overseasTrade: .tick
            case .domesticBook, .overseasBook: .orderBook
            case .executionNotice: nil
            }
        let marketTopic = kind == .tick ? tickTopic : bookTopic
        let kstDay = KSTTime.kstDay(ofNanoseconds: receivedAt)
        // Scratch for the hot path: the largest value (an order book of 20 levels and a 32-byte symbol) is under
        // 500 bytes; header values under 64.
        // The offsets' buffer is taken outermost: taken inside the closures, it was retained and released per frame.
        try localStarts.withUnsafeBufferPointer { s in
            try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { scratch in
                try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { headerScratch in
                    var receivedText = WireWriter(headerScratch.baseAddress!)
                    receivedText.decimal(receivedAt)
                    // The tr_id header is the tr_id's bytes in the frame (`trBytes`): no `String` per frame.
                    for index in 0..<count {
                        let record = RecordView(payload: payload, starts: s, first: index * width, width: width)
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
                                position.decimal(Int64(index + 1))
                                position.byte(UInt8(ascii: "/"))
                                position.decimal(Int64(count))
                                published += 1
                                try encoded(
                                    EncodedRecord(
                                        kind: kind, topic: marketTopic, key: UnsafeRawBufferPointer(record.bytes(0)),
                                        value: w.bytes, timestampMs: KafkaRecord.milliseconds(timestamp),
                                        trID: UnsafeRawBufferPointer(trBytes), receivedAt: receivedText.bytes,
                                        position: position.bytes))
                                continue
                            }
                            // Declined: the general mapping below gives the exact error (or the message).
                        }
                        let event: MarketEvent
                        let topic: String
                        do {
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
                                    continue
                                }
                                event = .notice(notice)
                                topic = noticeTopic
                            }
                        } catch let error as FrameError {
                            failures.append(count > 1 ? "record \(index + 1)/\(count): \(error.detail)" : error.detail)
                            continue
                        }
                        published += 1
                        try emit(
                            .market(
                                MarketMessage(
                                    topic: topic, event: event, trID: layout.trID, receivedAt: receivedAt,
                                    recordIndex: index, recordCount: count)))
                    }
                }
            }
        }
        perTR[layout.ordinal].published += published
        if !failures.isEmpty {
            // The good records of the frame were published; the whole raw frame is kept with what failed.
            throw FrameError(.badField, failures.joined(separator: "; "))
        }
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
