import Dispatch
import Foundation
public import Logging
import Synchronization

/// One app key's part of a live run: its credentials, KIS session, buffer, pipeline thread and recording.
final class LiveShard: Sendable {
    let index: Int
    let subscriptions: [Subscription]
    let recorder: SessionRecorder?
    let credentials: CredentialStore
    let buffer: FrameBuffer
    let engine: IngestEngine
    let session: KISSession

    init(_ shard: DaemonConfiguration.Shard, configuration: DaemonConfiguration, producer: KafkaProducer?,
         recordPath: String?, logger: Logger) throws {
        index = shard.index
        subscriptions = shard.subscriptions
        let fingerprint = shard.credentials.fingerprint
        if let recordPath {
            recorder = try SessionRecorder(
                configuration: RecorderConfiguration(path: recordPath, backgroundThreads: configuration.backgroundThreads),
                session: SessionInfo(startedAt: wallClockNanoseconds(), sourceURL: configuration.session.endpoint.description,
                                     subscriptions: shard.subscriptions.map(\.description), appKeyFingerprint: fingerprint))
        } else {
            recorder = nil
        }
        credentials = CredentialStore(
            credentials: shard.credentials, rest: KISRestClient(base: configuration.restEndpoint, tls: configuration.session.tls),
            redis: configuration.redis, cacheTTL: configuration.tokenCacheTTL, refreshBefore: configuration.tokenRefreshBefore,
            logger: Logger(label: "kis.auth"))
        buffer = FrameBuffer(capacity: configuration.bufferSize)
        engine = IngestEngine(buffer: buffer, producer: producer, topics: configuration.topics,
                              inline: configuration.pipelineInline, backgroundThreads: configuration.backgroundThreads,
                              logger: logger)
        let statusTopic = configuration.topics.prefix + configuration.statusTopic
        var sessionConfiguration = configuration.session
        sessionConfiguration.subscriptions = shard.subscriptions
        session = KISSession(
            configuration: sessionConfiguration, credentials: credentials, buffer: buffer, recorder: recorder,
            logger: Logger(label: "kis.session")
        ) { [producer] event in
            guard let producer else { return }
            let record = KafkaRecord(topic: statusTopic, key: Array(event.session.utf8), value: Array(event.json().utf8),
                                     timestampMs: event.time / 1_000_000, headers: [KafkaHeader("event", event.kind.rawValue)])
            try? producer.send(record)
        }
    }

    var fingerprint: String { session.session }
}

/// The live loop shared by `ingestd` and `ingest-record live`: for every app key with registrations, auth → session
/// → buffer → pipeline, all into one Kafka producer (when given) and one recording per key (when a path is given),
/// with a graceful shutdown on SIGINT/SIGTERM.
public final class LiveSession: @unchecked Sendable {
    public let configuration: DaemonConfiguration
    let producer: KafkaProducer?
    let shards: [LiveShard]
    let logger: Logger

    /// With several app keys the recordings are `<stem>.key2.<ext>`, `<stem>.key3.<ext>`, … beside `recordPath`
    /// (which holds the first key's session).
    public init(configuration: DaemonConfiguration, producer: KafkaProducer?, recordPath: String?, logger: Logger) throws {
        self.configuration = configuration
        self.producer = producer
        self.logger = logger
        shards = try configuration.shards.enumerated().map { i, shard in
            try LiveShard(shard, configuration: configuration, producer: producer,
                          recordPath: recordPath.map { i == 0 ? $0 : Self.shardRecordingPath($0, keyIndex: shard.index) },
                          logger: logger)
        }
        if configuration.credentials.count > 1 {
            let idle = configuration.credentials.count - shards.count
            let text = "\(shards.count) KIS sessions, one per app key" + (idle > 0 ? "; \(idle) app keys idle (no registrations left for them)" : "")
            logger.info("\(text)",
                        metadata: ["registrations": "\(shards.map { "\($0.fingerprint)=\($0.subscriptions.count)" }.joined(separator: " "))"])
        }
    }

    /// `dir/name.sqlite` → `dir/name.key2.sqlite` for the second app key.
    public static func shardRecordingPath(_ path: String, keyIndex: Int) -> String {
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension.isEmpty ? "sqlite" : url.pathExtension
        return "\(url.deletingPathExtension().path).key\(keyIndex + 1).\(ext)"
    }

    /// Runs until SIGINT/SIGTERM (then drains, flushes and returns 0) or until one session runs out of reconnect
    /// attempts (then stops the others the same way and returns 3). A second signal exits at once.
    public func runUntilSignalled() async -> Int32 {
        for shard in shards { shard.engine.start() }
        let failure = FirstFailure()
        let sessions = Task { [shards, logger] in
            await withTaskGroup(of: Void.self) { group in
                for shard in shards {
                    group.addTask {
                        do {
                            try await shard.session.run()
                        } catch {
                            logger.critical("\(String(describing: error))", metadata: ["session": "\(shard.fingerprint)"])
                            failure.note("\(shard.fingerprint): \(error)")
                        }
                    }
                }
                // One session giving up stops the daemon: a supervisor restart is better than silently missing symbols.
                for await _ in group {
                    if failure.text != nil { group.cancelAll() }
                }
            }
        }
        let tokenTasks = shards.map { shard in Task { await keepAccessTokenFresh(shard) } }
        let signals = SignalWatcher(logger: logger) { sessions.cancel() }
        await sessions.value
        let exitCode: Int32 = failure.text == nil ? 0 : 3
        for task in tokenTasks { task.cancel() }
        signals.stopWatchingFirst()
        // Graceful shutdown: no more frames, drain the buffers through the pipelines, flush Kafka, close the recordings.
        for shard in shards { shard.buffer.close() }
        for shard in shards { shard.engine.waitDrained() }
        var undelivered = 0
        if let producer {
            undelivered = producer.close(timeout: configuration.flushTimeout)
            let c = producer.counters
            logger.info("Kafka: \(c.delivered) delivered, \(c.failed) failed, \(undelivered) undelivered at shutdown")
        }
        let stats = pipelineStats
        let counters = sessionCounters
        var summary: [String] = [
            "received \(counters.messagesReceived)", "published " + stats.messagesByTopic.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "),
            "dead letters \(stats.deadLetters)", "buffer drops \(counters.droppedBufferFull)", "reconnects \(counters.reconnectAttempts)",
        ]
        var recorded: [String] = []
        for shard in shards {
            guard let recorder = shard.recorder else { continue }
            let r = recorder.close(endedAt: wallClockNanoseconds(), reason: exitCode == 0 ? "shutdown" : "retries exhausted")
            summary.append("recorded \(r.rows) rows in \(r.files.joined(separator: ", "))")
            recorded += r.files
        }
        if undelivered > 0 {
            summary.append("\(undelivered) messages could not be delivered to Kafka; they are in the recording" + (recorded.isEmpty ? " (none attached: they are lost)" : ""))
        }
        if shards.count > 1 { summary.append("\(shards.count) sessions") }
        let latency = pipelineLatency
        if latency.count > 0 {
            summary.append(String(format: "socket → produce enqueued p50 %.1f µs, p99 %.1f µs, p99.9 %.1f µs, max %.1f µs over %d frames",
                                  Double(latency.quantile(0.5)) / 1e3, Double(latency.quantile(0.99)) / 1e3,
                                  Double(latency.quantile(0.999)) / 1e3, Double(latency.maxNanoseconds) / 1e3, Int(latency.count)))
        }
        logger.info("stopped: \(summary.joined(separator: "; "))")
        return exitCode
    }

    /// Keeps the REST access token fresh (shared through Redis); failures are logged and retried after a minute.
    private func keepAccessTokenFresh(_ shard: LiveShard) async {
        while !Task.isCancelled {
            var wait: Duration = .seconds(60)
            do {
                let token = try await shard.credentials.accessToken()
                let left = Double(token.expiresAt - wallClockNanoseconds()) / 1e9 - configuration.tokenRefreshBefore.nanosecondsDouble / 1e9
                wait = .seconds(max(60, min(left, 3600)))
            } catch {
                logger.warning("access token not available; retrying in 60 s", metadata: ["session": "\(shard.fingerprint)", "error": "\(error)"])
            }
            try? await Task.sleep(for: wait)
        }
    }

    /// Counters of all sessions added up.
    public var sessionCounters: SessionCounters {
        shards.map(\.session.counters).reduce(into: SessionCounters()) { total, c in
            total.messagesReceived += c.messagesReceived
            total.droppedBufferFull += c.droppedBufferFull
            total.pingPongsEchoed += c.pingPongsEchoed
            total.connects += c.connects
            total.reconnectAttempts += c.reconnectAttempts
            total.subscribed += c.subscribed
            total.refused.merge(c.refused, uniquingKeysWith: +)
            total.controlByCode.merge(c.controlByCode, uniquingKeysWith: +)
        }
    }

    /// The first session's status while there is one session; with several, `.connected` only when all are.
    public var connectionStatus: ConnectionStatus {
        let all = shards.map(\.session.status)
        if all.allSatisfy({ $0 == .connected }) { return .connected }
        return all.first { $0 != .connected } ?? .disconnected
    }

    /// The pipelines' counters added up.
    public var pipelineStats: PipelineStats {
        shards.reduce(into: PipelineStats()) { $0.merge($1.engine.stats) }
    }

    /// Socket reader → produce enqueued, all sessions.
    public var pipelineLatency: LatencyHistogram {
        shards.reduce(into: LatencyHistogram()) { $0.merge($1.engine.latencyHistogram) }
    }

    /// One line per session: fingerprint, status, registrations acknowledged / configured.
    public var sessionSummaries: [(session: String, status: ConnectionStatus, registrations: Int, configured: Int)] {
        shards.map { ($0.fingerprint, $0.session.status, $0.session.counters.subscribed, $0.subscriptions.count) }
    }
}

/// The first session failure of a run.
final class FirstFailure: Sendable {
    private let value = Mutex<String?>(nil)
    func note(_ text: String) { value.withLock { $0 = $0 ?? text } }
    var text: String? { value.withLock { $0 } }
}

/// SIGINT/SIGTERM: the first starts a graceful shutdown, a second exits at once.
final class SignalWatcher: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal] = []
    private var first = true
    private var firstAt: ContinuousClock.Instant?
    private let lock = NSLock()

    init(logger: Logger, onFirst: @escaping @Sendable () -> Void) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in
                // `timeout`, systemd and friends may deliver one stop request to both the process and its group:
                // a repeat within half a second is the same request.
                let (isFirst, duplicate) = lock.withLock { () -> (Bool, Bool) in
                    defer { first = false }
                    let duplicate = firstAt.map { ContinuousClock.now - $0 < .milliseconds(500) } ?? false
                    if first { firstAt = .now }
                    return (first, duplicate)
                }
                if duplicate { return }
                if isFirst {
                    logger.notice("signal \(sig): shutting down gracefully (send it again to exit at once)")
                    onFirst()
                } else {
                    logger.warning("second signal: exiting now")
                    exit(130)
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    func stopWatchingFirst() {
        lock.withLock {
            if first { firstAt = .now }
            first = false
        }
    }
}
