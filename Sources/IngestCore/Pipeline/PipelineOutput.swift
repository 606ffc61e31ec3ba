/// A market message ready for Kafka: one record of a data frame, mapped.
public struct MarketMessage: Sendable, Equatable {
    public var topic: String
    public var event: MarketEvent
    public var trID: String
    /// When the frame was received, nanoseconds since the Unix epoch (UTC): from the socket live, from the
    /// recording in replay.
    public var receivedAt: Int64
    /// Position of the record in its frame (0-based) and the frame's record count.
    public var recordIndex: Int
    public var recordCount: Int

    /// The Kafka key: the symbol.
    public var key: String { event.symbol }
}

/// An inbound message kept, raw, for later inspection because it could not be mapped.
public struct DeadLetter: Sendable, Equatable {
    public var topic: String
    public var reason: DeadLetterReason
    public var detail: String
    /// The message exactly as received (for encrypted frames: the encrypted text; never the decrypted notice).
    public var raw: String
    public var trID: String?
    public var receivedAt: Int64

    /// The Kafka key: the tr_id when known, so that dead letters of one TR stay in order.
    public var key: String { trID ?? "unknown" }
}

/// Everything one inbound message turns into.
public enum PipelineOutput: Sendable, Equatable {
    case market(MarketMessage)
    case deadLetter(DeadLetter)
    /// A control message (ack, error, PINGPONG): no market message, but the session acts on it.
    case control(ControlMessage)
}
