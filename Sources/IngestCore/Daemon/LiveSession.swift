import Dispatch
import Foundation
public import Logging

/// The live loop shared by `ingestd` and `ingest-record live`: auth → session → buffer → pipeline → Kafka (when a
/// producer is given) and the recorder (when a path is given), with a graceful shutdown on SIGINT/SIGTERM.
public final class LiveSession: @unchecked Sendable {
    public let configuration: DaemonConfiguration
    let producer: KafkaProducer?
    let recorder: SessionRecorder?
    let credentials: CredentialStore
    let buffer: FrameBuffer
    let engine: IngestEngine
    let session: KISSession
    let logger: Logger

    public init(configuration: DaemonConfiguration, producer: KafkaProducer?, recordPath: String?, logger: Logger) throws {
        self.configuration = configuration
        self.producer = producer
        self.logger = logger
        let fingerprint = configuration.credentials.fingerprint
        if let recordPath {
            recorder = try SessionRecorder(
                configuration: RecorderConfiguration(path: recordPath),
                session: SessionInfo(startedAt: wallClockNanoseconds(), sourceURL: configuration.session.endpoint.description,
                                     subscriptions: configuration.session.subscriptions.map(\.description),
                                     appKeyFingerprint: fingerprint))
        } else {
            recorder = nil
        }
        credentials = CredentialStore(
            credentials: configuration.credentials, rest: KISRestClient(base: configuration.restEndpoint, tls: configuration.session.tls),
            redis: configuration.redis, cacheTTL: configuration.tokenCacheTTL, refreshBefore: configuration.tokenRefreshBefore,
            logger: Logger(label: "kis.auth"))
        buffer = FrameBuffer(capacity: configuration.bufferSize)
        engine = IngestEngine(buffer: buffer, producer: producer, topics: configuration.topics, logger: logger)
        let statusTopic = configuration.topics.prefix + configuration.statusTopic
        session = KISSession(
            configuration: configuration.session, credentials: credentials, buffer: buffer, recorder: recorder,
            logger: Logger(label: "kis.session")
        ) { [producer] event in
            guard let producer else { return }
            let record = KafkaRecord(topic: statusTopic, key: Array(event.session.utf8), value: Array(event.json().utf8),
                                     timestampMs: event.time / 1_000_000, headers: [KafkaHeader("event", event.kind.rawValue)])
            try? producer.send(record)
        }
    }

    /// Runs until SIGINT/SIGTERM (then drains, flushes and returns 0) or until the reconnect attempts run out
    /// (returns 3). A second signal exits at once.
    public func runUntilSignalled() async -> Int32 {
        engine.start()
        let sessionTask = Task { try await session.run() }
        let tokenTask = Task { await keepAccessTokenFresh() }
        let signals = SignalWatcher(logger: logger) { sessionTask.cancel() }
        var exitCode: Int32 = 0
        do {
            try await sessionTask.value
        } catch {
            logger.critical("\(String(describing: error))")
            exitCode = 3
        }
        tokenTask.cancel()
        signals.stopWatchingFirst()
        // Graceful shutdown: no more frames, drain the buffer through the pipeline, flush Kafka, close the recording.
        buffer.close()
        engine.waitDrained()
        var undelivered = 0
        if let producer {
            undelivered = producer.close(timeout: configuration.flushTimeout)
            let c = producer.counters
            logger.info("Kafka: \(c.delivered) delivered, \(c.failed) failed, \(undelivered) undelivered at shutdown")
        }
        let stats = engine.stats
        let counters = session.counters
        var summary: [String] = [
            "received \(counters.messagesReceived)", "published " + stats.messagesByTopic.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "),
            "dead letters \(stats.deadLetters)", "buffer drops \(counters.droppedBufferFull)", "reconnects \(counters.reconnectAttempts)",
        ]
        if let recorder {
            let r = recorder.close(endedAt: wallClockNanoseconds(), reason: exitCode == 0 ? "shutdown" : "retries exhausted")
            summary.append("recorded \(r.rows) rows in \(r.files.joined(separator: ", "))")
        }
        if undelivered > 0 {
            summary.append("\(undelivered) messages could not be delivered to Kafka; they are in the recording" + (recorder == nil ? " (none attached: they are lost)" : ""))
        }
        logger.info("stopped: \(summary.joined(separator: "; "))")
        return exitCode
    }

    /// Keeps the REST access token fresh (shared through Redis); failures are logged and retried after a minute.
    private func keepAccessTokenFresh() async {
        while !Task.isCancelled {
            var wait: Duration = .seconds(60)
            do {
                let token = try await credentials.accessToken()
                let left = Double(token.expiresAt - wallClockNanoseconds()) / 1e9 - configuration.tokenRefreshBefore.nanosecondsDouble / 1e9
                wait = .seconds(max(60, min(left, 3600)))
            } catch {
                logger.warning("access token not available; retrying in 60 s", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: wait)
        }
    }

    public var sessionCounters: SessionCounters { session.counters }
    public var connectionStatus: ConnectionStatus { session.status }
    public var secondsSinceLastMessage: Double { session.secondsSinceLastMessage }
    public var pipelineStats: PipelineStats { engine.stats }
    public var credentialCounters: CredentialCounters { credentials.snapshot }
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
