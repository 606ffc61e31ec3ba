/// Why an inbound message could not become a market message. Each reason is a stable, machine-readable name used in
/// dead-letter headers (`dlq.reason`) and metrics.
public struct DeadLetterReason: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    private init(_ name: String) { self.name = name }
    public var description: String { name }

    /// The message is empty.
    public static let emptyMessage = DeadLetterReason("empty_message")
    /// The first character is none of `{` (control), `0` (plaintext) or `1` (encrypted), or the flag is not followed
    /// by `|`.
    public static let unknownMessageType = DeadLetterReason("unknown_message_type")
    /// A data frame without the four `|`-separated parts `flag|tr_id|count|payload`, or with an invalid tr_id.
    public static let malformedHeader = DeadLetterReason("malformed_header")
    /// The record count is not a positive decimal number.
    public static let badRecordCount = DeadLetterReason("bad_record_count")
    /// The number of `^` fields is not a multiple of the record count.
    public static let fieldCountMismatch = DeadLetterReason("field_count_mismatch")
    /// Each record is narrower than the TR's documented width.
    public static let recordTooShort = DeadLetterReason("record_too_short")
    /// No mapping exists for this tr_id.
    public static let unmappedTrID = DeadLetterReason("unmapped_tr_id")
    /// A required field (symbol, price, volume, date, time) is empty or not a number or not a valid date/time.
    public static let badField = DeadLetterReason("bad_field")
    /// An encrypted frame arrived before the subscription ack that carries its AES key and IV.
    public static let missingKey = DeadLetterReason("missing_key")
    /// The AES key or IV from the ack has the wrong length.
    public static let badKey = DeadLetterReason("bad_key")
    /// The encrypted payload is not valid base64.
    public static let badBase64 = DeadLetterReason("bad_base64")
    /// AES-256-CBC decryption or PKCS#7 unpadding failed.
    public static let decryptFailed = DeadLetterReason("decrypt_failed")
    /// The payload (decrypted or not) is not valid UTF-8.
    public static let invalidUTF8 = DeadLetterReason("invalid_utf8")
    /// A control message that is not a JSON object of the expected shape.
    public static let badControlMessage = DeadLetterReason("bad_control_message")

    public static let all: [DeadLetterReason] = [
        .emptyMessage, .unknownMessageType, .malformedHeader, .badRecordCount, .fieldCountMismatch, .recordTooShort,
        .unmappedTrID, .badField, .missingKey, .badKey, .badBase64, .decryptFailed, .invalidUTF8, .badControlMessage,
    ]
}

/// An inbound message that cannot be used, with a reason and a human-readable detail (never containing secrets).
public struct FrameError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: DeadLetterReason
    public let detail: String

    public init(_ reason: DeadLetterReason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "\(reason): \(detail)" }
}
