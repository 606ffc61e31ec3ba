/// A change of a KIS session's state, published on the status topic (`market.status`, key = the app key's
/// fingerprint) so consumers see holes instead of guessing, and written as a marker into recordings.
public struct StatusEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case connecting, connected, subscribed, disconnected, reconnecting, gap
        case subscriptionRefused = "subscription_refused"
        case retriesExhausted = "retries_exhausted"
    }

    public var kind: Kind
    /// When, nanoseconds since the epoch (UTC).
    public var time: Int64
    /// The app key's fingerprint.
    public var session: String
    public var reason: String?
    public var attempt: Int?
    public var delayMilliseconds: Int64?
    /// For `gap`: data may be missing between these receive times.
    public var gapFrom: Int64?
    public var gapTo: Int64?
    public var subscription: String?

    public init(kind: Kind, time: Int64, session: String, reason: String? = nil, attempt: Int? = nil,
                delayMilliseconds: Int64? = nil, gapFrom: Int64? = nil, gapTo: Int64? = nil, subscription: String? = nil) {
        self.kind = kind
        self.time = time
        self.session = session
        self.reason = reason
        self.attempt = attempt
        self.delayMilliseconds = delayMilliseconds
        self.gapFrom = gapFrom
        self.gapTo = gapTo
        self.subscription = subscription
    }

    /// `{"event":"gap","time_ns":…,"session":"sha256:…","gap_from_ns":…,"gap_to_ns":…,"reason":"…"}`
    public func json() -> String {
        var parts = ["\"event\":\"\(kind.rawValue)\"", "\"time_ns\":\(time)", "\"session\":\(JSONText.quote(session))"]
        if let reason { parts.append("\"reason\":\(JSONText.quote(reason))") }
        if let attempt { parts.append("\"attempt\":\(attempt)") }
        if let delayMilliseconds { parts.append("\"delay_ms\":\(delayMilliseconds)") }
        if let gapFrom { parts.append("\"gap_from_ns\":\(gapFrom)") }
        if let gapTo { parts.append("\"gap_to_ns\":\(gapTo)") }
        if let subscription { parts.append("\"subscription\":\(JSONText.quote(subscription))") }
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// The recording marker for this event, if it has one.
    public var markerKind: RecordedKind? {
        switch kind {
        case .connected: .connect
        case .disconnected: .disconnect
        case .reconnecting: .reconnect
        case .gap: .gap
        default: nil
        }
    }
}
