import Foundation

/// A JSON control message from the KIS WebSocket: subscription acks, errors and the PINGPONG heartbeat.
///
/// Every field is optional on the wire (protocol reference §6); missing ones are `nil` here.
public struct ControlMessage: Sendable, Equatable {
    public var trID: String?
    public var trKey: String?
    public var encrypt: String?
    public var resultCode: String?
    public var messageCode: String?
    public var messageText: String?
    /// AES-256 key from a subscription ack (`body.output.key`, 32 ASCII characters used as raw bytes).
    public var aesKey: String?
    /// AES IV from a subscription ack (`body.output.iv`, 16 ASCII characters used as raw bytes).
    public var aesIV: String?
    /// `header.datetime` of a PINGPONG, `YYYYMMDDHHMMSS` KST.
    public var datetime: String?

    /// What the message means for a session.
    public enum Kind: Sendable, Equatable {
        /// Heartbeat: echo the exact text back.
        case pingPong
        /// `OPSP0000 SUBSCRIBE SUCCESS`, or the benign `OPSP0002 ALREADY IN SUBSCRIBE`.
        case subscribed
        case unsubscribed
        /// Any other code; `msg_cd` (or `msg1`) is kept verbatim.
        case other
    }

    public var kind: Kind {
        if trID == "PINGPONG" { return .pingPong }
        switch messageCode {
        case "OPSP0000", "OPSP0002": return .subscribed
        case "OPSP0001", "OPSP0003": return .unsubscribed
        default: break
        }
        if messageCode == nil, let text = messageText?.uppercased() {
            if text.contains("UNSUBSCRIBE") { return .unsubscribed }
            if text.contains("SUBSCRIBE SUCCESS") || text.contains("ALREADY IN SUBSCRIBE") { return .subscribed }
        }
        return .other
    }

    /// A short code for metrics and logs: `PINGPONG`, the `msg_cd`, or `unknown`.
    public var code: String {
        if trID == "PINGPONG" { return "PINGPONG" }
        return messageCode ?? "unknown"
    }

    public init(
        trID: String? = nil, trKey: String? = nil, encrypt: String? = nil, resultCode: String? = nil,
        messageCode: String? = nil, messageText: String? = nil, aesKey: String? = nil, aesIV: String? = nil,
        datetime: String? = nil
    ) {
        self.trID = trID
        self.trKey = trKey
        self.encrypt = encrypt
        self.resultCode = resultCode
        self.messageCode = messageCode
        self.messageText = messageText
        self.aesKey = aesKey
        self.aesIV = aesIV
        self.datetime = datetime
    }

    /// Parses a control message; throws a `FrameError` with reason `badControlMessage` when the text is not a JSON
    /// object or a field has the wrong type.
    public static func parse(_ text: String) throws(FrameError) -> ControlMessage {
        var text = text
        let result = text.withUTF8 { p in Result { () throws(FrameError) -> ControlMessage in try parse(p) } }
        return try result.get()
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(FrameError) -> ControlMessage {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(buffer: bytes), options: [])
        } catch {
            throw FrameError(.badControlMessage, "not valid JSON (\(bytes.count) bytes)")
        }
        guard let root = object as? [String: Any] else {
            throw FrameError(.badControlMessage, "JSON is not an object")
        }
        func dict(_ value: Any?, _ name: String) throws(FrameError) -> [String: Any]? {
            guard let value, !(value is NSNull) else { return nil }
            guard let d = value as? [String: Any] else { throw FrameError(.badControlMessage, "\(name) is not an object") }
            return d
        }
        func text(_ d: [String: Any]?, _ key: String, _ path: String) throws(FrameError) -> String? {
            guard let value = d?[key], !(value is NSNull) else { return nil }
            if let s = value as? String { return s }
            if let n = value as? NSNumber { return n.stringValue }
            throw FrameError(.badControlMessage, "\(path) has the wrong type")
        }
        let header = try dict(root["header"], "header")
        let body = try dict(root["body"], "body")
        let output = try dict(body?["output"], "body.output")
        guard header != nil || body != nil else {
            throw FrameError(.badControlMessage, "neither header nor body present")
        }
        return ControlMessage(
            trID: try text(header, "tr_id", "header.tr_id"),
            trKey: try text(header, "tr_key", "header.tr_key"),
            encrypt: try text(header, "encrypt", "header.encrypt"),
            resultCode: try text(body, "rt_cd", "body.rt_cd"),
            messageCode: try text(body, "msg_cd", "body.msg_cd"),
            messageText: try text(body, "msg1", "body.msg1"),
            aesKey: try text(output, "key", "body.output.key"),
            aesIV: try text(output, "iv", "body.output.iv"),
            datetime: try text(header, "datetime", "header.datetime")
        )
    }
}
