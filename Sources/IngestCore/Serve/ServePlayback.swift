import Foundation

/// One recorded frame as the KIS-compatible server sends it: attributed to its (tr_id, tr_key), encrypted frames kept
/// as plaintext so they can be re-encrypted with the key each client was handed.
struct PlaybackFrame: Sendable {
    var receivedAt: Int64
    var trID: String?
    /// The record's key (#0: stock code, HTS ID for notices); `nil` when it cannot be told (sent to every client).
    var trKey: String?
    /// Plaintext frames and unattributable text: sent as is.
    var body: String
    /// Encrypted frames: the decrypted payload and the record count, to re-encrypt per client.
    var plaintext: String?
    var count: String?
}

/// The inbound frames of a recording, in order, ready to serve.
struct ServePlayback: Sendable {
    let frames: [PlaybackFrame]
    /// Every (tr_id, tr_key) the recording has data for.
    let pairs: Set<Subscription>

    init(path: String, from: Int64?, to: Int64?) throws {
        let reader = try RecordingReader(path: path)
        var frames: [PlaybackFrame] = []
        var keys: [String: AESKey] = [:]
        var lastKnown: [String: AESKey] = [:]
        var pairs: Set<Subscription> = []
        try reader.forEach(to: to) { row in
            switch row.kind {
            case .connect:
                keys.removeAll()
            case .control:
                if let c = try? ControlMessage.parse(row.body), c.kind == .subscribed, let tr = c.trID,
                    let k = c.aesKey, let iv = c.aesIV, let key = try? AESKey(key: k, iv: iv) {
                    keys[tr] = key
                    lastKnown[tr] = key
                }
            case .data, .encrypted, .unknown:
                guard row.receivedAt >= (from ?? .min) else { return }
                var frame = PlaybackFrame(receivedAt: row.receivedAt, trID: row.trID, trKey: nil, body: row.body)
                let parts = row.body.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
                if parts.count == 4 {
                    if row.kind == .encrypted, let tr = row.trID {
                        for key in [keys[tr], lastKnown[tr]].compactMap({ $0 }) {
                            if let plain = try? key.decrypt(base64: String(parts[3])) {
                                let text = String(decoding: plain, as: UTF8.self)
                                frame.plaintext = text
                                frame.count = String(parts[2])
                                frame.trKey = text.split(separator: "^", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
                                break
                            }
                        }
                    } else if row.kind == .data {
                        let key = parts[3].split(separator: "^", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
                        if let key, !key.isEmpty, key.count <= 32 { frame.trKey = key }
                    }
                }
                if let tr = frame.trID, let key = frame.trKey { pairs.insert(Subscription(trID: tr, trKey: key)) }
                frames.append(frame)
            default:
                break
            }
        }
        self.frames = frames
        self.pairs = pairs
    }
}
