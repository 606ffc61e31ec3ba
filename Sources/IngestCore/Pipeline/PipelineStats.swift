/// Counters kept by a `FramePipeline`: what came in, what went out, and everything that was odd on the way.
public struct PipelineStats: Sendable, Equatable {
    /// Inbound messages of any kind.
    public var messages = 0
    /// Data frames by tr_id (plaintext and encrypted).
    public var framesByTrID: [String: Int] = [:]
    /// Records by tr_id (a multi-record frame counts once per record).
    public var recordsByTrID: [String: Int] = [:]
    /// Market messages produced, by topic.
    public var messagesByTopic: [String: Int] = [:]
    /// Dead letters by reason name.
    public var deadLettersByReason: [String: Int] = [:]
    /// Control messages by code (`PINGPONG`, `OPSP0000`, …).
    public var controlByCode: [String: Int] = [:]
    /// Frames by record width, by tr_id: drift shows up here first (H0STCNT0 47, H0STASP0 62/63). At most `keyLimit`
    /// widths per tr_id; frames of further widths are counted under `otherWidth`.
    public var widthsByTrID: [String: [Int: Int]] = [:]
    /// Records wider than documented, by tr_id (the extra trailing fields are accepted and ignored).
    public var recordsWithExtraFields: [String: Int] = [:]
    /// Optional fields that did not parse and were set to zero, by `TR.FIELD`.
    public var fieldDefaults: [String: Int] = [:]
    /// Deltas negated because their sign code said down (§12).
    public var signCorrections = 0
    /// H0STASP0 records whose total quantities (#43/#44) differ from the level sums.
    public var bookTotalMismatches = 0
    /// Decrypted execution notices not published because no notice topic is configured.
    public var noticesNotPublished = 0
    /// AES keys learned from subscription acks.
    public var keysLearned = 0

    public init() {}

    /// Adds another pipeline's counters (one pipeline per KIS session).
    public mutating func merge(_ o: PipelineStats) {
        messages += o.messages
        framesByTrID.merge(o.framesByTrID, uniquingKeysWith: +)
        recordsByTrID.merge(o.recordsByTrID, uniquingKeysWith: +)
        messagesByTopic.merge(o.messagesByTopic, uniquingKeysWith: +)
        deadLettersByReason.merge(o.deadLettersByReason, uniquingKeysWith: +)
        controlByCode.merge(o.controlByCode, uniquingKeysWith: +)
        widthsByTrID.merge(o.widthsByTrID) { a, b in a.merging(b, uniquingKeysWith: +) }
        recordsWithExtraFields.merge(o.recordsWithExtraFields, uniquingKeysWith: +)
        fieldDefaults.merge(o.fieldDefaults, uniquingKeysWith: +)
        signCorrections += o.signCorrections
        bookTotalMismatches += o.bookTotalMismatches
        noticesNotPublished += o.noticesNotPublished
        keysLearned += o.keysLearned
    }

    /// Total dead letters.
    public var deadLetters: Int { deadLettersByReason.values.reduce(0, +) }
}

extension PipelineStats {
    /// Distinct keys a counter keyed by what the server sends (unknown tr_ids, control codes) keeps; further keys are
    /// counted under `otherKey`. A broken or hostile feed then cannot grow memory or the metrics' label sets without
    /// bound.
    public static let keyLimit = 64
    /// The key that collects everything past `keyLimit` distinct keys.
    public static let otherKey = "_other"
    /// The width in `widthsByTrID` that collects frames of widths past `keyLimit` distinct ones (no record is 0 wide).
    public static let otherWidth = 0
}

extension Dictionary where Value == Int {
    /// Adds `amount` under `key`, or under `other` once `limit` other keys exist.
    @inline(__always)
    mutating func add(_ amount: Int, bounded key: Key, other: Key, limit: Int = PipelineStats.keyLimit) {
        if let index = self.index(forKey: key) {
            values[index] += amount
        } else if count < limit {
            self[key] = amount
        } else {
            self[other, default: 0] += amount
        }
    }
}

extension Dictionary where Key == String, Value == Int {
    /// Adds one under `key`, or under `PipelineStats.otherKey` once `limit` other keys exist.
    @inline(__always)
    mutating func increment(bounded key: String, limit: Int = PipelineStats.keyLimit) {
        add(1, bounded: key, other: PipelineStats.otherKey, limit: limit)
    }
}
