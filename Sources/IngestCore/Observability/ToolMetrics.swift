import Foundation
import Synchronization

/// `/metrics`, `/healthz` and `/readyz` of `ingest-replay` (replay mode): progress and what was published, from the
/// replayer's progress callback and the producer's counters.
public final class ReplayMetrics: Sendable {
    private let progress = Mutex<ReplayProgress?>(nil)
    private let finished = Atomic<Bool>(false)
    let producer: KafkaProducer?
    let topics: TopicConfiguration

    public init(producer: KafkaProducer?, topics: TopicConfiguration) {
        self.producer = producer
        self.topics = topics
    }

    public func update(_ p: ReplayProgress) { progress.withLock { $0 = p } }
    public func finish(_ summary: ReplaySummary) {
        progress.withLock {
            $0 = ReplayProgress(rows: $0?.totalRows ?? summary.rowsReplayed, totalRows: $0?.totalRows ?? summary.rowsReplayed,
                                messages: summary.messages, recordedTime: summary.lastRecorded ?? 0,
                                lastRecordedTime: summary.lastRecorded ?? 0, elapsedSeconds: summary.wallSeconds, etaSeconds: 0,
                                messagesByTopic: summary.messagesByTopic)
        }
        finished.store(true, ordering: .relaxed)
    }

    public func metricsText() -> String {
        var m = PrometheusText()
        let p = progress.withLock { $0 }
        let byTopic = p?.messagesByTopic ?? [:]
        m.add("tick_count", "counter", "Trades published to the tick topic.", Double(byTopic[topics.prefix + topics.tick] ?? 0))
        m.add("orderbook_count", "counter", "Order books published to the order-book topic.", Double(byTopic[topics.prefix + topics.orderBook] ?? 0))
        m.add("error_count", "counter", "Dead letters plus Kafka delivery failures.",
              Double((byTopic[topics.resolvedDeadLetter] ?? 0) + (producer?.counters.failed ?? 0)))
        m.add("kis_ingest_replay_rows_total", "counter", "Recording rows read so far.", Double(p?.rows ?? 0))
        m.add("kis_ingest_replay_rows", "gauge", "Rows in the recording.", Double(p?.totalRows ?? 0))
        m.add("kis_ingest_replay_recorded_time_seconds", "gauge", "Receive time (Unix seconds) of the row being replayed.", Double(p?.recordedTime ?? 0) / 1e9)
        m.add("kis_ingest_replay_done", "gauge", "1 once the replay has finished.", finished.load(ordering: .relaxed) ? 1 : 0)
        for (topic, n) in byTopic.sorted(by: { $0.key < $1.key }) {
            m.add("kis_ingest_replay_messages_total", "counter", "Messages published, by topic.", Double(n), [("topic", topic)])
        }
        if let producer { producer.addMetrics(to: &m) }
        return m.text
    }

    public func readiness() -> (Bool, String) {
        guard let producer else { return (true, "ok (dry run)") }
        if let fatal = producer.fatalError { return (false, "Kafka producer fatal error: \(fatal)") }
        return producer.brokersReachable(timeout: .seconds(1)) ? (true, "ok") : (false, "Kafka brokers \(producer.configuration.brokers) unreachable")
    }
}

extension KafkaProducer {
    /// The producer's counters, queue and produce latency in Prometheus form.
    public func addMetrics(to m: inout PrometheusText) {
        let k = counters
        m.add("kis_ingest_kafka_enqueued_total", "counter", "Messages handed to the Kafka producer.", Double(k.enqueued))
        m.add("kis_ingest_kafka_delivered_total", "counter", "Messages acknowledged by Kafka.", Double(k.delivered))
        for (error, n) in k.failedByError.sorted(by: { $0.key < $1.key }) {
            m.add("kis_ingest_kafka_delivery_errors_total", "counter", "Messages Kafka could not take, by librdkafka error.", Double(n), [("error", error)])
        }
        m.add("kis_ingest_kafka_queue_full_total", "counter", "Enqueue attempts refused because the producer queue was full.", Double(k.queueFull))
        m.add("kis_ingest_kafka_queue_depth", "gauge", "Messages enqueued but not yet delivered.", Double(outstanding))
        m.add(histogram: "kis_ingest_kafka_produce_latency_seconds", "Kafka produce latency: enqueue to broker acknowledgement, one delivered message in 16.", deliveryLatency)
    }
}

extension ServeStatus {
    /// `ingest-replay serve`'s counters in Prometheus form.
    public func metricsText() -> String {
        var m = PrometheusText()
        m.add("kis_serve_connections", "gauge", "Open WebSocket connections.", Double(connections))
        m.add("kis_serve_connections_total", "counter", "WebSocket connections accepted.", Double(connectionsTotal))
        m.add("kis_serve_frames_sent_total", "counter", "Recorded frames sent to clients.", Double(framesSent))
        m.add("kis_serve_frames", "gauge", "Frames in the served recording.", Double(totalFrames))
        m.add("kis_serve_position", "gauge", "Furthest playback position of any app key.", Double(position))
        m.add("kis_serve_tokens_issued_total", "counter", "Access tokens issued.", Double(tokensIssued))
        m.add("kis_serve_tokens_refused_total", "counter", "Access tokens refused (EGW00133 or injected).", Double(tokensRefused))
        m.add("kis_serve_approval_keys_issued_total", "counter", "Approval keys issued.", Double(approvalKeysIssued))
        m.add("kis_serve_pingpongs_sent_total", "counter", "PINGPONGs sent.", Double(pingPongsSent))
        m.add("kis_serve_pingpongs_echoed_total", "counter", "PINGPONGs echoed by clients.", Double(pingPongsEchoed))
        m.add("kis_serve_dropped_for_no_echo_total", "counter", "Clients dropped for not echoing PINGPONG.", Double(droppedForNoEcho))
        m.add("kis_serve_subscribes_total", "counter", "Subscribe requests acknowledged.", Double(subscribes))
        m.add("kis_serve_rejected_in_use_total", "counter", "Connections refused with OPSP8996.", Double(rejectedInUse))
        return m.text
    }
}

/// The standard endpoint routing: `/metrics`, `/healthz`, `/readyz`.
public enum OperationalEndpoints {
    public static func handler(metrics: @escaping @Sendable () -> String,
                               readiness: @escaping @Sendable () -> (Bool, String)) -> HTTPEndpointServer.Handler {
        { _, path in
            switch path {
            case "/metrics": return (200, "text/plain; version=0.0.4; charset=utf-8", metrics())
            case "/healthz": return (200, "text/plain; charset=utf-8", "ok\n")
            case "/readyz":
                let (ready, reason) = readiness()
                return (ready ? 200 : 503, "text/plain; charset=utf-8", reason + "\n")
            default: return (404, "text/plain; charset=utf-8", "not found: try /metrics, /healthz or /readyz\n")
            }
        }
    }
}
