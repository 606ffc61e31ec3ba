import Foundation

/// One recorded frame as the KIS-compatible server sends it: attributed to its (tr_id, tr_key), encrypted frames kept
/// as plaintext so they can be re-encrypted with the key each client was handed.
struct PlaybackFrame: Sendable, Equatable {
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

/// What the rows of a recording so far say about the frames that follow: the AES keys in force (per connection, and
/// the last ever seen per tr_id, for recordings whose ack fell outside the window). Turns rows into playback frames.
struct PlaybackAttribution: Sendable {
    private var keys: [String: AESKey] = [:]
    private var lastKnown: [String: AESKey] = [:]

    /// Whether `row` is a frame to serve: inbound data, encrypted or unknown text, received at or after `from`.
    static func isFrame(_ row: RecordedRowView, from: Int64) -> Bool {
        switch row.kind {
        case .data, .encrypted, .unknown: row.receivedAt >= from
        default: false
        }
    }

    /// Follows a row that is not a frame (connections reset the keys; subscription acks bring new ones).
    mutating func follow(_ row: RecordedRowView) {
        switch row.kind {
        case .connect:
            keys.removeAll()
        case .control:
            if let c = try? ControlMessage.parse(row.body), c.kind == .subscribed, let tr = c.trID,
                let k = c.aesKey, let iv = c.aesIV, let key = try? AESKey(key: k, iv: iv)
            {
                keys[tr] = key
                lastKnown[tr] = key
            }
        default:
            break
        }
    }

    /// The playback frame a row that `isFrame` is.
    func frame(_ row: RecordedRowView) -> PlaybackFrame {
        let body = String(decoding: row.body, as: UTF8.self)
        var frame = PlaybackFrame(receivedAt: row.receivedAt, trID: row.trID, trKey: nil, body: body)
        let parts = body.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4 else { return frame }
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
        return frame
    }
}

/// The frames of a recording as the server serves them, read from the file while serving: what is kept in memory is
/// an index (the frame count, the (tr_id, tr_key) pairs, and a checkpoint every `checkpointInterval` frames), not
/// the frames. Serving a whole day therefore takes as much memory as serving a minute.
///
/// A client resuming at frame `n` (its app key's cursor) starts reading at the checkpoint before `n`, with the AES
/// keys in force there, and skips fewer than `checkpointInterval` frames.
struct ServePlayback: Sendable {
    /// Frames to serve (inbound data rows in the window).
    let count: Int
    /// Every (tr_id, tr_key) the recording has data for.
    let pairs: Set<Subscription>

    private let path: String
    private let from: Int64
    private let to: Int64?
    private let checkpointInterval: Int
    /// `checkpoints[k]`: where frame `k × checkpointInterval` is, and the keys in force just before it.
    private let checkpoints: [Checkpoint]

    private struct Checkpoint: Sendable {
        let seq: Int64
        let attribution: PlaybackAttribution
    }

    init(path: String, from: Int64?, to: Int64?, checkpointInterval: Int = 16_384) throws {
        self.path = path
        self.from = from ?? .min
        self.to = to
        self.checkpointInterval = max(1, checkpointInterval)
        let reader = try RecordingReader(path: path)
        var attribution = PlaybackAttribution()
        var checkpoints: [Checkpoint] = []
        var pairs: Set<Subscription> = []
        var count = 0
        let start = self.from
        let interval = self.checkpointInterval
        try reader.forEachPrefetched(to: to) { row in
            guard PlaybackAttribution.isFrame(row, from: start) else { return attribution.follow(row) }
            if count % interval == 0 { checkpoints.append(Checkpoint(seq: row.seq, attribution: attribution)) }
            count += 1
            let frame = attribution.frame(row)
            if let tr = frame.trID, let key = frame.trKey { pairs.insert(Subscription(trID: tr, trKey: key)) }
        }
        self.count = count
        self.pairs = pairs
        self.checkpoints = checkpoints
    }

    /// Thrown by a `forEach` body to stop early.
    struct Stop: Error {}

    /// Calls `body` with every frame from index `first` on, in order, with its index, reading the file as it goes
    /// (on a thread of its own, a few hundred frames ahead). `body` may block (pacing) and may throw `Stop` to end
    /// early. Frames appended to the file after the index was built are not served.
    func forEach(from first: Int, _ body: (Int, PlaybackFrame) throws -> Void) throws {
        guard first < count, first >= 0 else { return }
        let checkpoint = checkpoints[first / checkpointInterval]
        var index = first / checkpointInterval * checkpointInterval
        var attribution = checkpoint.attribution
        let start = from
        let count = count
        do {
            try RecordingReader(path: path).forEachPrefetched(to: to, fromSeq: checkpoint.seq, batch: 256, depth: 2) { row in
                guard PlaybackAttribution.isFrame(row, from: start) else { return attribution.follow(row) }
                guard index < count else { throw Stop() }
                defer { index += 1 }
                guard index >= first else { return }
                try body(index, attribution.frame(row))
            }
        } catch is Stop {
            return
        }
    }
}
