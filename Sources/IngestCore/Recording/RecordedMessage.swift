/// What a row of a recording is: inbound, outbound or a marker, and which kind.
///
/// The numeric codes are stored with every message (in `message_blocks.frames`; format 1: `messages.kind`) and
/// described in the `kinds` table of every recording; they never change meaning (new kinds get new codes).
public enum RecordedKind: Int, Sendable, CaseIterable, Hashable {
    // Inbound (server → client), verbatim.
    case data = 1
    case encrypted = 2
    case control = 3
    case pingPong = 4
    case unknown = 5
    // Outbound (client → server), secrets masked.
    case subscribe = 11
    case unsubscribe = 12
    case pingPongEcho = 13
    case otherOutbound = 14
    // Markers written by the recorder, body = JSON details.
    case start = 21
    case stop = 22
    case connect = 23
    case disconnect = 24
    case reconnect = 25
    case gap = 26

    public enum Direction: String, Sendable { case inbound = "in", outbound = "out", marker }

    public var direction: Direction {
        switch rawValue {
        case ..<10: .inbound
        case ..<20: .outbound
        default: .marker
        }
    }

    public var name: String {
        switch self {
        case .data: "data"
        case .encrypted: "encrypted"
        case .control: "control"
        case .pingPong: "pingpong"
        case .unknown: "unknown"
        case .subscribe: "subscribe"
        case .unsubscribe: "unsubscribe"
        case .pingPongEcho: "pingpong"
        case .otherOutbound: "other"
        case .start: "start"
        case .stop: "stop"
        case .connect: "connect"
        case .disconnect: "disconnect"
        case .reconnect: "reconnect"
        case .gap: "gap"
        }
    }

    var meaning: String {
        switch self {
        case .data: "plaintext data frame (0|tr_id|count|payload)"
        case .encrypted: "encrypted data frame (1|tr_id|count|base64)"
        case .control: "JSON control message: subscription ack or error"
        case .pingPong: "PINGPONG heartbeat from the server"
        case .unknown: "inbound text that is neither a frame nor JSON"
        case .subscribe: "subscribe request (approval key masked)"
        case .unsubscribe: "unsubscribe request (approval key masked)"
        case .pingPongEcho: "PINGPONG echo sent back"
        case .otherOutbound: "any other outbound message"
        case .start: "recording started"
        case .stop: "recording stopped"
        case .connect: "WebSocket connected"
        case .disconnect: "WebSocket disconnected (body: reason)"
        case .reconnect: "reconnect attempt (body: attempt, delay)"
        case .gap: "known gap: frames may be missing between the neighbouring rows (body: reason)"
        }
    }

    /// Classifies an inbound text message from its first bytes (no full parse).
    public static func inbound(_ text: String) -> (kind: RecordedKind, trID: String?) {
        let utf8 = text.utf8
        guard let first = utf8.first else { return (.unknown, nil) }
        if first == UInt8(ascii: "0") || first == UInt8(ascii: "1") {
            var it = utf8.dropFirst()
            guard it.first == UInt8(ascii: "|") else { return (.unknown, nil) }
            it = it.dropFirst()
            let tr = it.prefix { $0 != UInt8(ascii: "|") }
            let trID = tr.count > 0 && tr.count <= 16 ? String(decoding: tr, as: UTF8.self) : nil
            return (first == UInt8(ascii: "0") ? .data : .encrypted, trID)
        }
        if first == UInt8(ascii: "{") {
            if let c = try? ControlMessage.parse(text) {
                return (c.kind == .pingPong ? .pingPong : .control, c.trID)
            }
            return (.control, nil)
        }
        return (.unknown, nil)
    }
}

/// One row of a recording.
public struct RecordedMessage: Sendable, Equatable {
    /// Monotonic sequence number, 1-based, continuous across the rows of one recording.
    public var seq: Int64
    public var sessionID: Int64
    /// Receive (or send) time, nanoseconds since the Unix epoch, UTC, taken as close to the socket as possible.
    public var receivedAt: Int64
    public var kind: RecordedKind
    public var trID: String?
    /// The message verbatim (outbound: secrets masked; markers: JSON details).
    public var body: String

    public init(seq: Int64 = 0, sessionID: Int64 = 0, receivedAt: Int64, kind: RecordedKind, trID: String?, body: String) {
        self.seq = seq
        self.sessionID = sessionID
        self.receivedAt = receivedAt
        self.kind = kind
        self.trID = trID
        self.body = body
    }
}

/// Anything that takes raw messages in arrival order: the recorder, and tests.
public protocol RawMessageSink: Sendable {
    /// Accepts one message; must not block on I/O.
    func record(_ message: RecordedMessage)
}
