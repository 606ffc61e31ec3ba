import Foundation
public import Logging
import Synchronization

/// How a KIS WebSocket session behaves.
public struct SessionConfiguration: Sendable {
    /// `KIS_WEBSOCKET_URL`.
    public var endpoint: Endpoint
    /// `KIS_SUBSCRIPTIONS`, at most 41.
    public var subscriptions: [Subscription]
    /// `KIS_CUSTTYPE`: `P` individual, `B` corporate.
    public var custType: String
    /// First reconnect delay (`KIS_RECONNECT_DELAY`); doubles per attempt up to `reconnectMaxDelay`, full jitter.
    public var reconnectDelay: Duration
    public var reconnectMaxDelay: Duration
    /// Attempts in a row before giving up (`KIS_RECONNECT_RETRIES`); `nil` = unlimited.
    public var maxAttempts: Int?
    /// No message of any kind for this long → close and reconnect (`KIS_HEARTBEAT_INTERVAL`).
    public var watchdog: Duration
    /// Time between subscribe requests.
    public var subscribePace: Duration
    /// Minimum wait after `OPSP8996 ALREADY IN USE appkey`.
    public var inUseBackoff: Duration
    public var maxMessageSize: Int
    public var tls: TLSOptions
    /// Echo PINGPONG (always on in production; off only to test that the server drops us).
    public var echoPingPong: Bool

    public init(endpoint: Endpoint, subscriptions: [Subscription], custType: String = "P",
                reconnectDelay: Duration = .seconds(1), reconnectMaxDelay: Duration = .seconds(30),
                maxAttempts: Int? = 5, watchdog: Duration = .seconds(150), subscribePace: Duration = .milliseconds(200),
                inUseBackoff: Duration = .seconds(30), maxMessageSize: Int = 8 << 20, tls: TLSOptions = TLSOptions(),
                echoPingPong: Bool = true) {
        self.endpoint = endpoint
        self.subscriptions = subscriptions
        self.custType = custType
        self.reconnectDelay = reconnectDelay
        self.reconnectMaxDelay = reconnectMaxDelay
        self.maxAttempts = maxAttempts
        self.watchdog = watchdog
        self.subscribePace = subscribePace
        self.inUseBackoff = inUseBackoff
        self.maxMessageSize = maxMessageSize
        self.tls = tls
        self.echoPingPong = echoPingPong
    }
}

/// Connection states, observable in logs, metrics and status events.
public enum ConnectionStatus: String, Sendable {
    case disconnected = "Disconnected", connecting = "Connecting", connected = "Connected", reconnecting = "Reconnecting"
}

/// Counters of one session.
public struct SessionCounters: Sendable, Equatable {
    public var messagesReceived = 0
    public var droppedBufferFull = 0
    public var pingPongsEchoed = 0
    public var connects = 0
    public var reconnectAttempts = 0
    public var subscribed = 0
    public var refused: [String: Int] = [:]
    public var controlByCode: [String: Int] = [:]
}

/// The session gave up.
public struct SessionError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// One KIS WebSocket session kept alive all day: approval key first, connect, paced subscribes counted on their
/// acks, PINGPONG echoed from the socket reader itself, a watchdog, and reconnects with exponential backoff and full
/// jitter that resubscribe everything. Inbound messages go, stamped, to the recorder (if any) and to a bounded
/// `FrameBuffer` that a processing thread drains; the reader never waits for parsing, Kafka or Redis.
public final class KISSession: @unchecked Sendable {
    // @unchecked: mutable state is in `state` (Mutex) or atomics.
    public let configuration: SessionConfiguration
    private let credentials: CredentialStore
    private let buffer: FrameBuffer
    private let recorder: (any RawMessageSink)?
    private let logger: Logger
    private let onStatus: @Sendable (StatusEvent) -> Void

    private struct State {
        var status = ConnectionStatus.disconnected
        var counters = SessionCounters()
        var acked: Set<Subscription> = []
        var connection: WebSocketConnection?
        var approvalKey = ""
        var lastMessage = ContinuousClock.now
        /// Drop logging: one line for the first drop, then at most one summary line per second (a log line per
        /// dropped frame would itself slow the pipeline that is already behind).
        var lastDropLog: ContinuousClock.Instant?
        var dropsSinceLog = 0
        var dataSinceConnect = false
        var needNewApprovalKey = false
        var minimumBackoff: Duration = .zero
        var retries: [Subscription: Int] = [:]
    }
    private let state = Mutex(State())

    public init(configuration: SessionConfiguration, credentials: CredentialStore, buffer: FrameBuffer,
                recorder: (any RawMessageSink)?, logger: Logger = Logger(label: "kis.session"),
                onStatus: @escaping @Sendable (StatusEvent) -> Void) {
        self.configuration = configuration
        self.credentials = credentials
        self.buffer = buffer
        self.recorder = recorder
        self.logger = logger
        self.onStatus = onStatus
    }

    public var status: ConnectionStatus { state.withLock { $0.status } }
    /// Seconds since the last inbound message of any kind (or since the last connect).
    public var secondsSinceLastMessage: Double { state.withLock { (ContinuousClock.now - $0.lastMessage).nanosecondsDouble / 1e9 } }
    public var counters: SessionCounters { state.withLock { $0.counters } }
    public var session: String { credentials.credentials.fingerprint }

    private func emit(_ kind: StatusEvent.Kind, reason: String? = nil, attempt: Int? = nil, delay: Duration? = nil,
                      gap: (Int64, Int64)? = nil, subscription: String? = nil) {
        let event = StatusEvent(kind: kind, time: wallClockNanoseconds(), session: session, reason: reason,
                                attempt: attempt, delayMilliseconds: delay.map { Int64($0.nanosecondsDouble / 1e6) },
                                gapFrom: gap?.0, gapTo: gap?.1, subscription: subscription)
        if let marker = event.markerKind { recorder?.record(RecordedMessage(receivedAt: event.time, kind: marker, trID: nil, body: event.json())) }
        onStatus(event)
    }

    private func setStatus(_ s: ConnectionStatus) {
        let old = state.withLock { st -> ConnectionStatus in
            defer { st.status = s }
            return st.status
        }
        if old != s { logger.info("WebSocket status \(s.rawValue)", metadata: ["session": "\(session)"]) }
    }

    /// Runs until the task is cancelled (returns normally) or the reconnect attempts run out (throws).
    public func run() async throws(SessionError) {
        var attempt = 0
        var disconnectedAt: Int64?
        while !Task.isCancelled {
            setStatus(attempt == 0 && disconnectedAt == nil ? .connecting : .reconnecting)
            if attempt == 0 && disconnectedAt == nil { emit(.connecting) }
            var reason = "unknown"
            do {
                let forceNew = state.withLock { st in defer { st.needNewApprovalKey = false }; return st.needNewApprovalKey }
                let key = try await credentials.approvalKey(forceNew: forceNew)
                try await connectAndServe(approvalKey: key, disconnectedAt: disconnectedAt) { reason = $0 }
            } catch let e as AuthError {
                reason = "approval key: \(e)"
                if e.isRateLimited { state.withLock { $0.minimumBackoff = .seconds(60) } }
            } catch let e as TransportError {
                reason = e.message
            } catch {
                reason = "\(error)"
            }
            if Task.isCancelled { break }
            let now = wallClockNanoseconds()
            if disconnectedAt == nil || state.withLock({ $0.dataSinceConnect }) { disconnectedAt = now }
            setStatus(.disconnected)
            emit(.disconnected, reason: reason)
            logger.warning("KIS session closed", metadata: ["session": "\(session)", "reason": "\(reason)"])
            let flowed = state.withLock { st in defer { st.dataSinceConnect = false }; return st.dataSinceConnect }
            if flowed { attempt = 0 }  // the counter resets only after data flowed again
            attempt += 1
            if let max = configuration.maxAttempts, attempt > max {
                setStatus(.disconnected)
                emit(.retriesExhausted, reason: reason, attempt: attempt - 1)
                throw SessionError(message: "gave up after \(max) reconnect attempts in a row without data; last error: \(reason)")
            }
            let delay = backoff(attempt: attempt)
            state.withLock { $0.counters.reconnectAttempts += 1 }
            setStatus(.reconnecting)
            emit(.reconnecting, reason: reason, attempt: attempt, delay: delay)
            do { try await Task.sleep(for: delay) } catch { break }
        }
        setStatus(.disconnected)
        emit(.disconnected, reason: "shutdown")
    }

    /// Exponential backoff with full jitter (AWS style) and a floor so no loop is ever tight.
    func backoff(attempt: Int) -> Duration {
        let base = configuration.reconnectDelay.nanosecondsDouble
        let cap = configuration.reconnectMaxDelay.nanosecondsDouble
        let ceiling = min(cap, base * pow(2, Double(min(attempt - 1, 30))))
        // Full jitter: uniform in [0, ceiling]; the 100 ms floor keeps even an unlucky draw from spinning.
        let ns = max(Double.random(in: 0...ceiling), 100_000_000)
        let floor = state.withLock { st in defer { st.minimumBackoff = .zero }; return st.minimumBackoff }
        return max(.nanoseconds(Int64(ns)), floor)
    }

    private func connectAndServe(approvalKey: String, disconnectedAt: Int64?, reason: (String) -> Void) async throws {
        let closed = AsyncStream<String>.makeStream()
        let connection = try await WebSocketConnection.connect(
            to: configuration.endpoint, maxMessageSize: configuration.maxMessageSize, tls: configuration.tls,
            onText: { [weak self] text, at in self?.inbound(text, receivedAt: at) },
            onClose: { why in
                closed.continuation.yield(why)
                closed.continuation.finish()
            })
        let connectedAt = wallClockNanoseconds()
        state.withLock {
            $0.connection = connection
            $0.approvalKey = approvalKey
            $0.acked = []
            $0.retries = [:]
            $0.lastMessage = .now
            $0.dataSinceConnect = false
            $0.counters.connects += 1
        }
        buffer.push(.connected(at: connectedAt), force: true)
        setStatus(.connected)
        emit(.connected)
        if let disconnectedAt { emit(.gap, reason: "disconnected", gap: (disconnectedAt, connectedAt)) }
        logger.info("connected to KIS", metadata: ["session": "\(session)", "url": "\(configuration.endpoint)"])

        let subscriber = Task { [configuration] in
            for (i, s) in configuration.subscriptions.enumerated() {
                if Task.isCancelled || !connection.isOpen { return }
                if i > 0 { try? await Task.sleep(for: configuration.subscribePace) }
                let request = s.request(approvalKey: approvalKey, custType: configuration.custType)
                connection.send(request)
                recorder?.record(RecordedMessage(receivedAt: wallClockNanoseconds(), kind: .subscribe, trID: s.trID, body: request))
            }
        }
        let watchdog = Task { [configuration] in
            while !Task.isCancelled && connection.isOpen {
                try? await Task.sleep(for: .milliseconds(250))
                let silent = state.withLock { ContinuousClock.now - $0.lastMessage }
                if silent > configuration.watchdog {
                    logger.warning("no message from KIS for \(silent); reconnecting", metadata: ["session": "\(session)"])
                    connection.abort(reason: "watchdog: no message for \(configuration.watchdog)")
                    return
                }
            }
        }
        await withTaskCancellationHandler {
            for await why in closed.stream {
                reason(why)
                break
            }
        } onCancel: {
            connection.close(reason: "shutting down")
        }
        subscriber.cancel()
        watchdog.cancel()
        state.withLock { $0.connection = nil }
    }

    /// The socket reader's work for one message: stamp, record, echo PINGPONG, act on control messages, hand over.
    func inbound(_ text: String, receivedAt: Int64) {
        let (kind, trID) = RecordedKind.inbound(text)
        recorder?.record(RecordedMessage(receivedAt: receivedAt, kind: kind, trID: trID, body: text))
        let connection = state.withLock { st -> WebSocketConnection? in
            st.lastMessage = .now
            st.counters.messagesReceived += 1
            if kind == .data || kind == .encrypted { st.dataSinceConnect = true }
            return st.connection
        }
        if kind == .pingPong {
            if configuration.echoPingPong, let connection {
                connection.send(text)  // the exact text, as a text frame
                recorder?.record(RecordedMessage(receivedAt: wallClockNanoseconds(), kind: .pingPongEcho, trID: "PINGPONG", body: text))
                state.withLock { $0.counters.pingPongsEchoed += 1 }
            }
        } else if kind == .control, let control = try? ControlMessage.parse(text) {
            handle(control, connection: connection)
        }
        let isControl = kind != .data && kind != .encrypted
        if !buffer.push(.message(text, receivedAt: receivedAt), force: isControl) {
            let (dropped, unlogged) = state.withLock { st -> (Int, Int?) in
                st.counters.droppedBufferFull += 1
                st.dropsSinceLog += 1
                let now = ContinuousClock.now
                guard st.lastDropLog.map({ now - $0 >= .seconds(1) }) ?? true else {
                    return (st.counters.droppedBufferFull, nil)
                }
                st.lastDropLog = now
                defer { st.dropsSinceLog = 0 }
                return (st.counters.droppedBufferFull, st.dropsSinceLog)
            }
            if let unlogged {
                logger.error("message buffer full, dropping message", metadata: [
                    "session": "\(session)", "tr_id": "\(trID ?? "")", "dropped_total": "\(dropped)",
                    "dropped_since_last_line": "\(unlogged)", "recorded": "\(recorder != nil)",
                ])
            }
        }
    }

    /// Server-side refusals (OPSP0007 SUBSCRIBE INTERNAL ERROR and the "resource not available" family) are retried
    /// for that registration after 2, 4, 8 … s (at most 60 s, five times), on the same connection.
    private func retryLater(_ pair: Subscription, code: String, connection: WebSocketConnection?) {
        guard let connection, configuration.subscriptions.contains(pair) else { return }
        let attempt = state.withLock { st -> Int in
            st.retries[pair, default: 0] += 1
            return st.retries[pair]!
        }
        guard attempt <= 5 else {
            logger.error("KIS keeps refusing a registration; giving up on it for this connection", metadata: ["subscription": "\(pair)", "code": "\(code)"])
            emit(.subscriptionRefused, reason: "\(code) after 5 retries", subscription: pair.description)
            return
        }
        let delay = Duration.seconds(min(60, 1 << attempt))
        logger.warning("KIS refused a registration for now; retrying", metadata: ["subscription": "\(pair)", "code": "\(code)", "in": "\(delay)"])
        let custType = configuration.custType
        Task { [weak self] in
            try? await Task.sleep(for: delay)
            guard let self, connection.isOpen else { return }
            let key = state.withLock { $0.approvalKey }
            let request = pair.request(approvalKey: key, custType: custType)
            connection.send(request)
            recorder?.record(RecordedMessage(receivedAt: wallClockNanoseconds(), kind: .subscribe, trID: pair.trID, body: request))
        }
    }

    private func handle(_ c: ControlMessage, connection: WebSocketConnection?) {
        let code = c.code
        state.withLock { $0.counters.controlByCode.increment(bounded: code) }
        let pair = Subscription(trID: c.trID ?? "", trKey: c.trKey ?? "")
        switch code {
        case "OPSP0000", "OPSP0002":
            let (count, all) = state.withLock { st -> (Int, Bool) in
                st.acked.insert(pair)
                st.counters.subscribed = st.acked.count
                return (st.acked.count, Set(configuration.subscriptions).isSubset(of: st.acked))
            }
            if code == "OPSP0002" { logger.info("already subscribed (treated as subscribed)", metadata: ["subscription": "\(pair)"]) }
            if all { emit(.subscribed, reason: "\(count) registrations acknowledged") }
        case "OPSP0001", "OPSP0003":
            state.withLock { st in
                st.acked.remove(pair)
                st.counters.subscribed = st.acked.count
            }
        case "OPSP0008":
            state.withLock { $0.counters.refused[code, default: 0] += 1 }
            logger.error("KIS refused a registration: MAX SUBSCRIBE OVER (41 per session); it is not subscribed", metadata: ["subscription": "\(pair)"])
            emit(.subscriptionRefused, reason: "OPSP0008 MAX SUBSCRIBE OVER", subscription: pair.description)
        case "OPSP8996":
            state.withLock {
                $0.counters.refused[code, default: 0] += 1
                $0.minimumBackoff = configuration.inUseBackoff
            }
            logger.error("KIS: ALREADY IN USE appkey (another session holds this app key); backing off", metadata: ["session": "\(session)"])
            connection?.abort(reason: "OPSP8996 ALREADY IN USE appkey")
        case "OPSP0011":
            state.withLock { $0.needNewApprovalKey = true }
            logger.warning("KIS: approval key not found (OPSP0011); issuing a new one and reconnecting", metadata: ["session": "\(session)"])
            Task { await credentials.invalidateApprovalKey() }
            connection?.abort(reason: "OPSP0011 invalid approval key")
        default:
            if c.kind == .other {
                state.withLock { $0.counters.refused[code, default: 0] += 1 }
                logger.warning("KIS control message", metadata: [
                    "code": "\(code)", "message": "\(c.messageText ?? "")", "tr_id": "\(c.trID ?? "")", "tr_key": "\(c.trKey ?? "")",
                    "rt_cd": "\(c.resultCode ?? "")",
                ])
                if ["OPSP0007", "OPSP8999", "OPSP9993", "OPSP9995"].contains(code) {
                    retryLater(pair, code: code, connection: connection)
                } else if !pair.trID.isEmpty {
                    emit(.subscriptionRefused, reason: "\(code) \(c.messageText ?? "")", subscription: pair.description)
                }
            }
        }
    }
}
