/// The Prometheus metrics and health of a running `LiveSession`, computed from its counters at scrape time.
extension LiveSession {
    /// `/metrics` in the Prometheus text format.
    public func metricsText() -> String {
        var m = PrometheusText()
        let p = pipelineStats
        let topics = configuration.topics
        m.add("tick_count", "counter", "Trades published to the tick topic.", Double(p.messagesByTopic[topics.prefix + topics.tick] ?? 0))
        m.add("orderbook_count", "counter", "Order books published to the order-book topic.", Double(p.messagesByTopic[topics.prefix + topics.orderBook] ?? 0))
        let kafkaFailed = producer?.counters.failed ?? 0
        m.add("error_count", "counter", "Dead letters plus Kafka delivery failures.", Double(p.deadLetters + kafkaFailed))
        m.add("kis_ingest_sessions", "gauge", "KIS sessions (one per app key with registrations).", Double(shards.count))
        for shard in shards {
            let session = shard.fingerprint
            let s = shard.session.counters
            let c = shard.credentials.snapshot
            let status = shard.session.status
            for st in [ConnectionStatus.disconnected, .connecting, .connected, .reconnecting] {
                m.add("kis_ingest_websocket_status", "gauge", "1 for the session's current WebSocket status.",
                      status == st ? 1 : 0, [("session", session), ("status", st.rawValue)])
            }
            m.add("kis_ingest_reconnects_total", "counter", "Reconnect attempts.", Double(s.reconnectAttempts), [("session", session)])
            m.add("kis_ingest_connects_total", "counter", "Successful WebSocket connections.", Double(s.connects), [("session", session)])
            m.add("kis_ingest_messages_received_total", "counter", "Inbound WebSocket messages of any kind.", Double(s.messagesReceived), [("session", session)])
            m.add("kis_ingest_buffer_dropped_total", "counter", "Frames dropped because the message buffer was full (still recorded with --record).", Double(s.droppedBufferFull), [("session", session)])
            m.add("kis_ingest_buffer_depth", "gauge", "Frames waiting between the socket reader and the pipeline.", Double(shard.buffer.count), [("session", session)])
            m.add("kis_ingest_pingpong_echoed_total", "counter", "PINGPONG heartbeats echoed.", Double(s.pingPongsEchoed), [("session", session)])
            m.add("kis_ingest_registrations", "gauge", "Registrations acknowledged on the current connection (KIS allows 41).", Double(s.subscribed), [("session", session)])
            m.add("kis_ingest_registrations_configured", "gauge", "Registrations this session is meant to carry.", Double(shard.subscriptions.count), [("session", session)])
            m.add("kis_ingest_registrations_refused_total", "counter", "Registrations refused, by code.", Double(s.refused.values.reduce(0, +)), [("session", session)])
            m.add("kis_ingest_seconds_since_last_message", "gauge", "Seconds since the last inbound message of any kind.", shard.session.secondsSinceLastMessage, [("session", session)])
            m.add("kis_ingest_tokens_issued_total", "counter", "Access tokens issued by KIS for this process (token refreshes).", Double(c.tokensIssued), [("session", session)])
            m.add("kis_ingest_approval_keys_issued_total", "counter", "WebSocket approval keys issued by KIS for this process.", Double(c.approvalKeysIssued), [("session", session)])
            m.add("kis_ingest_token_rate_limited_total", "counter", "EGW00133 answers (one token per minute per app key).", Double(c.rateLimited), [("session", session)])
            m.add("kis_ingest_credential_cache_hits_total", "counter", "Credentials served from memory or Redis.", Double(c.cacheHits), [("session", session)])
            m.add("kis_ingest_redis_errors_total", "counter", "Redis calls that failed (the in-memory copy was used).", Double(c.redisErrors), [("session", session)])
        }
        m.add("kis_ingest_pipeline_messages_total", "counter", "Inbound messages the pipeline processed (received minus dropped, once drained).", Double(p.messages))
        for (tr, n) in p.framesByTrID.sorted(by: { $0.key < $1.key }) {
            m.add("kis_ingest_frames_received_total", "counter", "Data frames received, by tr_id.", Double(n), [("tr_id", tr)])
        }
        for (tr, n) in p.recordsByTrID.sorted(by: { $0.key < $1.key }) {
            m.add("kis_ingest_records_total", "counter", "Records in data frames, by tr_id.", Double(n), [("tr_id", tr)])
        }
        for reason in DeadLetterReason.all {
            m.add("kis_ingest_deadletters_total", "counter", "Messages dead-lettered, by reason.", Double(p.deadLettersByReason[reason.name] ?? 0), [("reason", reason.name)])
        }
        for (code, n) in sessionCounters.controlByCode.sorted(by: { $0.key < $1.key }) {
            m.add("kis_ingest_control_messages_total", "counter", "Control messages, by msg_cd.", Double(n), [("code", code)])
        }
        m.add("kis_ingest_buffer_capacity", "gauge", "KIS_MESSAGE_BUFFER_SIZE (per session).", Double(configuration.bufferSize))
        let latency = pipelineLatency
        m.add(histogram: "kis_ingest_pipeline_latency_seconds", "Socket reader to Kafka produce call enqueued, per frame (buffer wait, parse, encode, enqueue).", latency)
        for q in [0.5, 0.99, 0.999] {
            m.add("kis_ingest_pipeline_latency_quantile_seconds", "gauge", "Quantiles of kis_ingest_pipeline_latency_seconds since start (within 1/16).",
                  Double(latency.quantile(q)) / 1e9, [("quantile", "\(q)")])
        }
        producer?.addMetrics(to: &m)
        m.add("kis_ingest_sign_corrections_total", "counter", "Deltas negated because their sign code said down.", Double(p.signCorrections))
        m.add("kis_ingest_book_total_mismatches_total", "counter", "H0STASP0 records whose totals differ from the level sums.", Double(p.bookTotalMismatches))
        for (tr, n) in p.recordsWithExtraFields.sorted(by: { $0.key < $1.key }) {
            m.add("kis_ingest_records_with_extra_fields_total", "counter", "Records wider than documented, by tr_id.", Double(n), [("tr_id", tr)])
        }
        return m.text
    }

    /// `/readyz`: the session is connected and Kafka is reachable.
    public func readiness() -> (ready: Bool, reason: String) {
        let notConnected = sessionSummaries.filter { $0.status != .connected }
        guard notConnected.isEmpty else {
            return (false, notConnected.map { "KIS session \($0.session) is \($0.status.rawValue)" }.joined(separator: "; "))
        }
        if let producer {
            if let fatal = producer.fatalError { return (false, "Kafka producer fatal error: \(fatal)") }
            guard producer.brokersReachable(timeout: .seconds(1)) else {
                return (false, "Kafka brokers \(configuration.kafka.brokers) unreachable: \(producer.lastError ?? "no metadata")")
            }
        }
        return (true, "ok")
    }

    /// Serves `/metrics`, `/healthz` and `/readyz`.
    public func startEndpoints(host: String, port: Int) async throws(TransportError) -> HTTPEndpointServer {
        try await HTTPEndpointServer.start(
            host: host, port: port, handler: OperationalEndpoints.handler(metrics: { [self] in metricsText() }, readiness: { [self] in readiness() }))
    }
}
