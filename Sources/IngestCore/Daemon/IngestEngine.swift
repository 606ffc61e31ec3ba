import Foundation
public import Logging
import Synchronization

/// The processing side of the live path: the same `FramePipeline` and `KafkaProducer` the replayer uses, fed from
/// the `FrameBuffer`.
///
/// Inline mode (`KIS_PIPELINE_INLINE`, default on): while nothing is queued, the socket reader processes each frame
/// itself, so a frame reaches the producer without a thread hand-over and its wake-up; once frames queue up
/// (a burst, or the producer's queue more than half full), the engine's own thread takes over and the reader only
/// queues, as without inline mode. Only one thread processes at a time, so order is kept.
public final class IngestEngine: InlineConsumer, @unchecked Sendable {
    // @unchecked: `pipeline` and `latency` are touched only by whoever holds the buffer's consumer role;
    // the snapshot is guarded by `statsLock`.
    private let buffer: FrameBuffer
    private let producer: KafkaProducer?
    private let inline: Bool
    private let polling: Bool
    /// Inline processing stops while more messages than this are waiting for the broker, so the socket reader
    /// never waits for room in the producer's queue.
    private let inlineOutstandingLimit: Int
    private var pipeline: FramePipeline
    private let logger: Logger
    private let backgroundThreads: BackgroundThreads
    private let done = DispatchSemaphore(value: 0)
    /// The last snapshot: the pipeline's counters unfolded (folding is the reader's work, off the hot path).
    private let statsLock = Mutex((FramePipeline.Snapshot(), LatencyHistogram()))
    private var latency = LatencyHistogram()
    /// Processed since the last snapshot; written by the consumer, read by the engine thread to decide when to claim.
    private let dirtyFlag = Atomic<Bool>(false)
    /// `DispatchTime` uptime of the last snapshot.
    private let publishedAt = Atomic<UInt64>(0)
    private let sendFailures = Atomic<Int>(0)

    /// `backgroundThreads` schedules the pipeline thread (the socket reader is not this engine's).
    public init(buffer: FrameBuffer, producer: KafkaProducer?, topics: TopicConfiguration, inline: Bool = false,
                backgroundThreads: BackgroundThreads = .normal, logger: Logger) {
        self.buffer = buffer
        self.producer = producer
        self.inline = inline
        // With a caller-polled producer, whoever processes serves the delivery reports: after every frame, and the
        // engine thread at least every millisecond while messages are outstanding (every 100 ms when idle).
        self.polling = producer.map { !$0.pollsOnOwnThread } ?? false
        self.inlineOutstandingLimit = producer.map { max(1, $0.queueCapacity / 2) } ?? .max
        self.pipeline = FramePipeline(topics: topics)
        self.backgroundThreads = backgroundThreads
        self.logger = logger
    }

    public func start() {
        if inline { buffer.setInlineConsumer(self) }
        let thread = Thread { [self] in
            backgroundThreads.enterCurrentThread(name: "ingest-pipeline")
            loop: while true {
                if polling, let producer { producer.poll() }
                let wait: Duration = polling && (producer?.outstanding ?? 0) > 0 ? .milliseconds(1) : .milliseconds(100)
                // When idle, claim the pipeline only to publish a snapshot nobody else will: the processing side
                // publishes at most a millisecond apart, so one is due here only when the last one is older and
                // messages came after it. (Holding the claim makes the reader queue, so it is not taken needlessly.)
                let snapshotDue = dirtyFlag.load(ordering: .relaxed)
                    && DispatchTime.now().uptimeNanoseconds &- publishedAt.load(ordering: .relaxed) >= Self.snapshotInterval
                switch buffer.claim(timeout: wait, idle: snapshotDue) {
                case .item(let item):
                    process(item)
                    // A snapshot for metrics also whenever the buffer runs dry.
                    publishIfDue(drained: buffer.isEmpty)
                    buffer.release()
                case .idle:
                    publish()
                    buffer.release()
                case .nothing:
                    continue loop
                case .closed:
                    break loop
                }
            }
            publish()
            done.signal()
        }
        thread.start()
    }

    public func acceptsInline() -> Bool { (producer?.outstanding ?? 0) < inlineOutstandingLimit }

    public func consumeInline(_ item: InboundItem) {
        process(item)
        publishIfDue(drained: false)
        if polling, let producer { producer.poll() }
    }

    /// Snapshots (what `/metrics` and the counters the tests gate on read) are at most this old while messages flow.
    static let snapshotInterval: UInt64 = 1_000_000

    /// After an item, as the consumer: publishes a snapshot when the last one is a millisecond old, 256 messages ago,
    /// or the buffer ran dry, so that the published counters never lag the producer's by more than that.
    private func publishIfDue(drained: Bool) {
        if drained || pipeline.messageCount & 0xFF == 0
            || DispatchTime.now().uptimeNanoseconds &- publishedAt.load(ordering: .relaxed) >= Self.snapshotInterval
        {
            publish()
        } else if !dirtyFlag.load(ordering: .relaxed) {
            dirtyFlag.store(true, ordering: .relaxed)
        }
    }

    private func process(_ item: InboundItem) {
        switch item {
        case .connected:
            pipeline.resetKeys()
        case .message(let text, let receivedAt):
            var produced = false
            pipeline.process(
                text, receivedAt: receivedAt,
                encoded: { record in
                    guard let producer else { return }
                    do {
                        try producer.sendWaiting(record)
                        produced = true
                    } catch {
                        sendFailed(topic: record.topic, error)
                    }
                },
                other: { output in
                    guard let producer, let record = KafkaRecord(output) else { return }
                    do {
                        try producer.sendWaiting(record)
                        produced = true
                    } catch {
                        sendFailed(topic: record.topic, error)
                    }
                })
            // Socket reader → last produce call of the frame enqueued (buffer wait, parse, encode, enqueue).
            if produced { latency.record(nanoseconds: wallClockNanoseconds() - receivedAt) }
        }
    }

    private func sendFailed(topic: String, _ error: any Error) {
        sendFailures.add(1, ordering: .relaxed)
        logger.error("could not hand a message to Kafka", metadata: ["topic": "\(topic)", "error": "\(error)"])
    }

    private func publish() {
        statsLock.withLock { $0 = (pipeline.snapshot, latency) }
        dirtyFlag.store(false, ordering: .relaxed)
        publishedAt.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed)
    }

    /// Waits until the buffer is closed and drained.
    public func waitDrained() { done.wait() }

    public var stats: PipelineStats { statsLock.withLock { $0.0 }.stats }
    /// Socket reader → Kafka produce call enqueued, per frame that produced something.
    public var latencyHistogram: LatencyHistogram { statsLock.withLock { $0.1 } }
    public var kafkaSendFailures: Int { sendFailures.load(ordering: .relaxed) }
}
