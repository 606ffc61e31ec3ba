import Foundation

/// What to replay, and how fast.
public struct ReplayOptions: Sendable {
    /// Playback speed (1 = original pacing, 10 = ten times faster); `nil` = as fast as the pipeline allows.
    public var speed: Double?
    /// Receive-time window, nanoseconds: `from` inclusive, `to` exclusive.
    public var from: Int64?
    public var to: Int64?
    /// Only market messages of these symbols (dead letters are then left out too: they have no symbol).
    public var symbols: Set<String>?
    /// Only frames of these tr_ids (control messages always pass: they carry the AES keys).
    public var trIDs: Set<String>?
    public var topics: TopicConfiguration

    public init(speed: Double? = nil, from: Int64? = nil, to: Int64? = nil, symbols: Set<String>? = nil,
                trIDs: Set<String>? = nil, topics: TopicConfiguration = TopicConfiguration()) {
        self.speed = speed
        self.from = from
        self.to = to
        self.symbols = symbols
        self.trIDs = trIDs
        self.topics = topics
    }
}

/// Where a replay is, for a progress display.
public struct ReplayProgress: Sendable {
    public var rows: Int
    public var totalRows: Int
    public var messages: Int
    public var recordedTime: Int64
    public var lastRecordedTime: Int64
    public var elapsedSeconds: Double
    /// Estimated seconds left.
    public var etaSeconds: Double?
    /// Messages published so far, by topic.
    public var messagesByTopic: [String: Int] = [:]
}

/// What a replay did.
public struct ReplaySummary: Sendable {
    /// Inbound rows pushed through the pipeline.
    public var rowsReplayed = 0
    /// Rows skipped by the window, the tr_id filter or direction (outbound, markers).
    public var rowsSkipped = 0
    /// Market messages and dead letters left out by `--symbols`.
    public var messagesFilteredOut = 0
    public var messagesByTopic: [String: Int] = [:]
    public var deadLettersByReason: [String: Int] = [:]
    public var firstRecorded: Int64?
    public var lastRecorded: Int64?
    public var wallSeconds = 0.0
    public var pacing: PacingStats?
    public var pipeline = PipelineStats()

    public var messages: Int { messagesByTopic.values.reduce(0, +) }
}

/// Pushes a recording through the same `FramePipeline` as the live daemon, in recorded order, at the recorded
/// pacing (absolute schedule: start + recorded offset ÷ speed), N× faster, or flat out.
///
/// The output depends only on the recording and the options: receive times come from the recording, so keys,
/// values, headers and timestamps are identical run after run.
public struct Replayer {
    public let reader: RecordingReader
    public let options: ReplayOptions

    public init(reader: RecordingReader, options: ReplayOptions) {
        self.reader = reader
        self.options = options
    }

    /// Replays into `sink` (called for every market message and dead letter, in order); `progress` is called about
    /// four times a second.
    public func run(
        progress: ((ReplayProgress) -> Void)? = nil, into sink: (PipelineOutput) throws -> Void
    ) throws -> ReplaySummary {
        try run(progress: progress, fast: false, encoded: { _ in }, into: sink)
    }

    /// The hot path, as the live daemon runs it: trades and order books reach `encoded` already in their Kafka form
    /// (valid only during the call), dead letters and notices reach `other` (see `FramePipeline`).
    public func run(
        progress: ((ReplayProgress) -> Void)? = nil, encoded: (EncodedRecord) throws -> Void,
        other: (PipelineOutput) throws -> Void
    ) throws -> ReplaySummary {
        try run(progress: progress, fast: true, encoded: encoded, into: other)
    }

    private func run(
        progress: ((ReplayProgress) -> Void)?, fast: Bool, encoded: (EncodedRecord) throws -> Void,
        into sink: (PipelineOutput) throws -> Void
    ) throws -> ReplaySummary {
        var pipeline = FramePipeline(topics: options.topics)
        var summary = ReplaySummary()
        let extent = try reader.extent()
        let windowStart = options.from ?? extent.first ?? 0
        let windowEnd = options.to ?? ((extent.last ?? 0) + 1)
        let started = ContinuousClock.now
        var clock: PacingClock?
        var origin: Int64 = 0
        var errors: [Int64] = []
        var lastProgress = started
        var rows = 0
        let speed = options.speed
        // Hot-path messages by kind, folded into `summary.messagesByTopic` now and then (no hashing per record).
        var ticks = 0
        var books = 0
        let tickTopic = options.topics.resolvedTick
        let bookTopic = options.topics.resolvedOrderBook
        func fold() {
            if ticks > 0 { summary.messagesByTopic[tickTopic, default: 0] += ticks }
            if books > 0 { summary.messagesByTopic[bookTopic, default: 0] += books }
            ticks = 0
            books = 0
        }
        let symbols = options.symbols

        // Flat out, reading runs on a thread of its own (`forEachPrefetched`); paced, one thread is plenty.
        func rowsInOrder(_ body: (RecordedRowView) throws -> Void) throws {
            if speed == nil {
                try reader.forEachPrefetched(to: options.to, body)
            } else {
                try reader.forEachRow(to: options.to, body)
            }
        }
        try rowsInOrder { row in
            rows += 1
            switch row.kind.direction {
            case .marker:
                // AES keys are per connection, as live.
                if row.kind == .connect { pipeline.resetKeys() }
                summary.rowsSkipped += 1
                return
            case .outbound:
                summary.rowsSkipped += 1
                return
            case .inbound:
                break
            }
            let isFrame = row.kind == .data || row.kind == .encrypted
            if row.receivedAt < windowStart {
                // Before the window only the acks matter: they carry the keys for encrypted frames in the window.
                if row.kind == .control { pipeline.process(bytes: row.body, receivedAt: row.receivedAt) { _ in } }
                summary.rowsSkipped += 1
                return
            }
            if isFrame, let trIDs = options.trIDs, !trIDs.contains(row.trID ?? "") {
                summary.rowsSkipped += 1
                return
            }
            if let speed {
                if clock == nil {
                    clock = PacingClock()
                    origin = row.receivedAt
                }
                let target = clock!.instant(offsetNanoseconds: Int64(Double(row.receivedAt - origin) / speed))
                errors.append(clock!.wait(until: target))
            }
            if summary.firstRecorded == nil { summary.firstRecorded = row.receivedAt }
            summary.lastRecorded = row.receivedAt
            summary.rowsReplayed += 1
            let general = { (output: PipelineOutput) throws -> Void in
                switch output {
                case .market(let m):
                    if let symbols, !symbols.contains(m.key) {
                        summary.messagesFilteredOut += 1
                        return
                    }
                    summary.messagesByTopic[m.topic, default: 0] += 1
                case .deadLetter(let d):
                    if symbols != nil {
                        summary.messagesFilteredOut += 1
                        return
                    }
                    summary.messagesByTopic[d.topic, default: 0] += 1
                    summary.deadLettersByReason[d.reason.name, default: 0] += 1
                case .control:
                    return
                }
                try sink(output)
            }
            if fast {
                try pipeline.process(
                    bytes: row.body, receivedAt: row.receivedAt,
                    encoded: { record in
                        if let symbols, !symbols.contains(record.symbol) {
                            summary.messagesFilteredOut += 1
                            return
                        }
                        if record.kind == .tick { ticks += 1 } else { books += 1 }
                        try encoded(record)
                    }, other: general)
            } else {
                try pipeline.process(bytes: row.body, receivedAt: row.receivedAt, emit: general)
            }
            if let progress, rows & 0xFF == 0 {
                let now = ContinuousClock.now
                if now - lastProgress >= .milliseconds(250) {
                    lastProgress = now
                    fold()
                    let elapsed = (now - started).nanosecondsDouble / 1e9
                    var eta: Double?
                    if let speed {
                        eta = Double(windowEnd - row.receivedAt) / 1e9 / speed
                    } else if rows > 0 {
                        eta = elapsed / Double(rows) * Double(Int(extent.rows) - rows)
                    }
                    progress(ReplayProgress(rows: rows, totalRows: Int(extent.rows), messages: summary.messages,
                                            recordedTime: row.receivedAt, lastRecordedTime: windowEnd,
                                            elapsedSeconds: elapsed, etaSeconds: eta, messagesByTopic: summary.messagesByTopic))
                }
            }
        }
        fold()
        summary.wallSeconds = (ContinuousClock.now - started).nanosecondsDouble / 1e9
        if speed != nil { summary.pacing = PacingStats(errors) }
        summary.pipeline = pipeline.stats
        return summary
    }
}
