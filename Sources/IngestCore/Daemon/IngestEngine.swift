import Foundation
public import Logging
import Synchronization

/// The processing side of the live path: drains the `FrameBuffer` on its own thread through the same
/// `FramePipeline` and `KafkaProducer` the replayer uses.
public final class IngestEngine: @unchecked Sendable {
    // @unchecked: `pipeline` is touched by the processing thread only; counters are guarded.
    private let buffer: FrameBuffer
    private let producer: KafkaProducer?
    private var pipeline: FramePipeline
    private let logger: Logger
    private let done = DispatchSemaphore(value: 0)
    private let statsLock = Mutex((PipelineStats(), LatencyHistogram()))
    private var latency = LatencyHistogram()
    private let sendFailures = Atomic<Int>(0)

    public init(buffer: FrameBuffer, producer: KafkaProducer?, topics: TopicConfiguration, logger: Logger) {
        self.buffer = buffer
        self.producer = producer
        self.pipeline = FramePipeline(topics: topics)
        self.logger = logger
    }

    public func start() {
        let thread = Thread { [self] in
            var dirty = false
            // With a caller-polled producer this thread serves its delivery reports: every frame, and at least every
            // millisecond while messages are outstanding (every 100 ms when idle, for errors and logs).
            let polling = producer.map { !$0.pollsOnOwnThread } ?? false
            loop: while true {
                // Publish a snapshot for metrics every 256 messages, and whenever the buffer runs dry (idle time).
                if dirty && buffer.isEmpty {
                    publish()
                    dirty = false
                }
                let item: InboundItem
                if polling, let producer {
                    producer.poll()
                    switch buffer.pop(timeout: producer.outstanding > 0 ? .milliseconds(1) : .milliseconds(100)) {
                    case .item(let next): item = next
                    case .timedOut: continue loop
                    case .closed: break loop
                    }
                } else {
                    guard let next = buffer.pop() else { break loop }
                    item = next
                }
                process(item)
                dirty = true
                if pipeline.messageCount & 0xFF == 0 {
                    publish()
                    dirty = false
                }
            }
            publish()
            done.signal()
        }
        thread.name = "ingest-pipeline"
        thread.start()
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

    private func publish() { statsLock.withLock { $0 = (pipeline.stats, latency) } }

    /// Waits until the buffer is closed and drained.
    public func waitDrained() { done.wait() }

    public var stats: PipelineStats { statsLock.withLock { $0.0 } }
    /// Socket reader → Kafka produce call enqueued, per frame that produced something.
    public var latencyHistogram: LatencyHistogram { statsLock.withLock { $0.1 } }
    public var kafkaSendFailures: Int { sendFailures.load(ordering: .relaxed) }
}
