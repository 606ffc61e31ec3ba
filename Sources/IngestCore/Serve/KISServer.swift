import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization

/// How the KIS-compatible server behaves.
public struct ServeOptions: Sendable {
    public var host: String
    public var port: Int
    /// Playback speed; `nil` = as fast as the client reads.
    public var speed: Double?
    /// Constant frames per second, whatever the recorded gaps (load tests); excludes `speed`.
    public var rate: Double?
    public var from: Int64?
    public var to: Int64?
    /// PINGPONG period, and how long a client may take to echo it before it is dropped.
    public var pingPongInterval: Duration
    public var pingPongTimeout: Duration
    /// Playback for a client starts once it has sent no subscribe for this long.
    public var startDelay: Duration
    public var registrationLimit: Int
    /// One token per this interval per app key (EGW00133 otherwise).
    public var tokenInterval: Duration
    /// PEM certificate and key: serve `wss://` and `https://` instead of `ws://` and `http://`.
    public var tlsCertificate: String?
    public var tlsKey: String?

    public init(host: String = "127.0.0.1", port: Int = 0, speed: Double? = nil, from: Int64? = nil, to: Int64? = nil,
                pingPongInterval: Duration = .seconds(100), pingPongTimeout: Duration? = nil,
                startDelay: Duration = .seconds(1), registrationLimit: Int = Subscription.perSessionLimit,
                tokenInterval: Duration = .seconds(60), tlsCertificate: String? = nil, tlsKey: String? = nil,
                rate: Double? = nil) {
        self.host = host
        self.rate = rate
        self.port = port
        self.speed = speed
        self.from = from
        self.to = to
        self.pingPongInterval = pingPongInterval
        self.pingPongTimeout = pingPongTimeout ?? pingPongInterval
        self.startDelay = startDelay
        self.registrationLimit = registrationLimit
        self.tokenInterval = tokenInterval
        self.tlsCertificate = tlsCertificate
        self.tlsKey = tlsKey
    }
}

/// What the server has done, for `/admin/status` and tests.
public struct ServeStatus: Sendable, Equatable {
    public var connections = 0
    public var framesSent = 0
    public var totalFrames = 0
    public var position = 0
    public var tokensIssued = 0
    public var tokensRefused = 0
    public var approvalKeysIssued = 0
    public var pingPongsSent = 0
    public var pingPongsEchoed = 0
    public var droppedForNoEcho = 0
    public var subscribes = 0
    public var rejectedInUse = 0
    public var connectionsTotal = 0

    var json: String {
        "{\"connections\":\(connections),\"connections_total\":\(connectionsTotal),\"frames_sent\":\(framesSent),\"total_frames\":\(totalFrames),\"position\":\(position),\"done\":\(position >= totalFrames),\"tokens_issued\":\(tokensIssued),\"tokens_refused\":\(tokensRefused),\"approval_keys_issued\":\(approvalKeysIssued),\"pingpongs_sent\":\(pingPongsSent),\"pingpongs_echoed\":\(pingPongsEchoed),\"dropped_for_no_echo\":\(droppedForNoEcho),\"subscribes\":\(subscribes),\"rejected_in_use\":\(rejectedInUse)}"
    }
}

/// A KIS-compatible server that serves a recording with KIS's rules (protocol reference §3–§9): REST `tokenP`,
/// `Approval`, `revokeP` (EGW00133 for a second token within a minute); a WebSocket that acks subscriptions with
/// key/iv, streams the recorded frames of the subscribed (tr_id, tr_key) pairs (re-encrypting notices with the key it
/// handed out), sends PINGPONG and drops clients that do not echo, allows one session per app key (OPSP8996) and 41
/// registrations (OPSP0008), refuses unknown approval keys (OPSP0011) and answers duplicates with ALREADY IN
/// SUBSCRIBE. Faults are injected through `POST /admin/fault`.
public final class KISServer: @unchecked Sendable {
    // @unchecked: shared state lives in `shared` (Mutex); the rest is immutable after init.
    let options: ServeOptions
    let playback: ServePlayback
    let logger: Logger
    private var channel: (any Channel)?

    struct Shared {
        var status = ServeStatus()
        var approvalKeys: [String: String] = [:]  // approval key → app key
        var lastToken: [String: (token: String, issuedAt: ContinuousClock.Instant, expires: String)] = [:]
        var activeSession: [String: ObjectIdentifier] = [:]  // app key → connection
        var cursor: [String: Int] = [:]  // app key → next frame
        var connections: [ObjectIdentifier: ServeConnection] = [:]
        var refuseTokensUntil: ContinuousClock.Instant?
        var subscribeErrors = 0
        var silentUntil: ContinuousClock.Instant?
        /// Until then every subscribe is answered OPSP8996 (as when KIS still holds a dead session of the app key).
        var inUseUntil: ContinuousClock.Instant?
    }
    let shared = Mutex(Shared())

    public init(recording: String, options: ServeOptions, logger: Logger = Logger(label: "kis.serve")) throws {
        self.options = options
        self.playback = try ServePlayback(path: recording, from: options.from, to: options.to)
        self.logger = logger
        shared.withLock { $0.status.totalFrames = playback.count }
    }

    public var status: ServeStatus {
        shared.withLock { s in
            var st = s.status
            st.connections = s.connections.count
            st.position = s.cursor.values.max() ?? 0
            return st
        }
    }

    /// Binds and starts serving; returns the bound port.
    public func start() async throws -> Int {
        var sslContext: NIOSSLContext?
        if let cert = options.tlsCertificate, let key = options.tlsKey {
            let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
            let configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            sslContext = try NIOSSLContext(configuration: configuration)
        }
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    let rest = RESTHandler(server: self)
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: 1 << 20, automaticErrorHandling: true,
                        shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
                        upgradePipelineHandler: { [self] channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                let connection = ServeConnection(server: self, channel: channel)
                                try channel.pipeline.syncOperations.addHandlers([
                                    NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 1024, maxAccumulatedFrameSize: 1 << 20),
                                    ServeFrameHandler(connection: connection),
                                ])
                                self.opened(connection)
                            }
                        })
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                            context.pipeline.syncOperations.removeHandler(rest, promise: nil)
                        }))
                    try channel.pipeline.syncOperations.addHandler(rest)
                }
            }
        let channel = try await bootstrap.bind(host: options.host, port: options.port).get()
        self.channel = channel
        let port = channel.localAddress?.port ?? options.port
        if !["127.0.0.1", "::1", "localhost"].contains(options.host) {
            logger.warning("serve mode is bound to \(options.host), not loopback: anyone who can reach it gets the recording")
        }
        logger.info("KIS-compatible server listening", metadata: [
            "address": "\(options.host):\(port)", "frames": "\(playback.count)", "pairs": "\(playback.pairs.count)", "tls": "\(options.tlsCertificate != nil)",
        ])
        return port
    }

    public func stop() async {
        try? await channel?.close()
        let all = shared.withLock { Array($0.connections.values) }
        for c in all { c.drop() }
    }

    func opened(_ c: ServeConnection) {
        shared.withLock {
            $0.connections[ObjectIdentifier(c)] = c
            $0.status.connectionsTotal += 1
        }
        c.startTimers()
    }

    func closed(_ c: ServeConnection) {
        shared.withLock { s in
            s.connections[ObjectIdentifier(c)] = nil
            for (app, id) in s.activeSession where id == ObjectIdentifier(c) { s.activeSession[app] = nil }
        }
    }

    var isSilent: Bool {
        shared.withLock { s in s.silentUntil.map { ContinuousClock.now < $0 } ?? false }
    }

    // MARK: REST

    func handleREST(method: HTTPMethod, path: String, body: String) -> (HTTPResponseStatus, String) {
        let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        func field(_ name: String) -> String? { (object[name] as? String).flatMap { $0.isEmpty ? nil : $0 } }
        let route = path.split(separator: "?").first.map(String.init) ?? path
        switch (method, route) {
        case (.POST, "/oauth2/tokenP"):
            guard let app = field("appkey") else { return (.forbidden, gatewayError("EGW00103", "유효하지 않은 AppKey입니다.")) }
            guard field("appsecret") != nil else { return (.forbidden, gatewayError("EGW00105", "유효하지 않은 AppSecret입니다.")) }
            return shared.withLock { s -> (HTTPResponseStatus, String) in
                let now = ContinuousClock.now
                if let until = s.refuseTokensUntil, now < until {
                    s.status.tokensRefused += 1
                    return (.forbidden, gatewayError("EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)"))
                }
                if let last = s.lastToken[app], now - last.issuedAt < options.tokenInterval {
                    s.status.tokensRefused += 1
                    return (.forbidden, gatewayError("EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)"))
                }
                var token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9." + randomLetters(300)
                var expires = Self.kstText(wallClockNanoseconds() + 86_400_000_000_000)
                if let last = s.lastToken[app], now - last.issuedAt < .seconds(6 * 3600) {
                    token = last.token  // within 6 h KIS hands out the same token again
                    expires = last.expires
                }
                s.lastToken[app] = (token, now, expires)
                s.status.tokensIssued += 1
                return (.ok, "{\"access_token\":\"\(token)\",\"access_token_token_expired\":\"\(expires)\",\"token_type\":\"Bearer\",\"expires_in\":86400}")
            }
        case (.POST, "/oauth2/Approval"):
            guard let app = field("appkey") else { return (.forbidden, gatewayError("EGW00103", "유효하지 않은 AppKey입니다.")) }
            guard field("secretkey") != nil else { return (.forbidden, gatewayError("EGW00105", "유효하지 않은 AppSecret입니다.")) }
            let key = UUID().uuidString.lowercased()
            shared.withLock {
                $0.approvalKeys[key] = app
                $0.status.approvalKeysIssued += 1
            }
            return (.ok, "{\"approval_key\":\"\(key)\"}")
        case (.POST, "/oauth2/revokeP"):
            return (.ok, "{\"code\":200,\"message\":\"접근토큰 폐기에 성공하였습니다\"}")
        case (.GET, "/admin/status"), (.POST, "/admin/status"):
            return (.ok, status.json)
        case (.POST, "/admin/fault"):
            return fault(object)
        default:
            return (.notFound, "{\"error\":\"no such endpoint: \(method) \(route)\"}")
        }
    }

    private func gatewayError(_ code: String, _ text: String) -> String {
        "{\"error_description\":\"\(text)\",\"error_code\":\"\(code)\"}"
    }

    /// Fault injection: `{"action": "close" | "drop" | "silence" | "malformed" | "refuse-tokens" | "forget-approval-keys" |
    /// "subscribe-errors", "seconds": N, "count": N}`.
    func fault(_ o: [String: Any]) -> (HTTPResponseStatus, String) {
        let action = o["action"] as? String ?? ""
        let seconds = (o["seconds"] as? NSNumber)?.doubleValue ?? 0
        let connections = shared.withLock { Array($0.connections.values) }
        switch action {
        case "close": connections.forEach { $0.closeGracefully() }
        case "drop": connections.forEach { $0.drop() }
        case "silence": shared.withLock { $0.silentUntil = .now + .milliseconds(Int64(seconds * 1000)) }
        case "malformed":
            for c in connections {
                c.sendText("0|H0STCNT0|001|005930^0930")
                c.sendText("0|H0STCNT0|xyz|005930^093000^1")
                c.sendText("\u{7F}garbage")
            }
        case "refuse-tokens": shared.withLock { $0.refuseTokensUntil = .now + .milliseconds(Int64(seconds * 1000)) }
        case "forget-approval-keys": shared.withLock { $0.approvalKeys.removeAll() }
        case "subscribe-errors": shared.withLock { $0.subscribeErrors = (o["count"] as? NSNumber)?.intValue ?? 1 }
        case "in-use": shared.withLock { $0.inUseUntil = .now + .milliseconds(Int64(seconds * 1000)) }
        default:
            return (.badRequest, "{\"error\":\"unknown action \\\"\(action)\\\": use close, drop, silence, malformed, refuse-tokens, forget-approval-keys, subscribe-errors or in-use\"}")
        }
        logger.notice("fault injected", metadata: ["action": "\(action)", "seconds": "\(seconds)", "connections": "\(connections.count)"])
        return (.ok, "{\"ok\":true,\"action\":\"\(action)\",\"connections\":\(connections.count)}")
    }

    static func kstText(_ ns: Int64) -> String {
        let d = KSTTime.kstDateString(ofNanoseconds: ns)
        let t = KSTTime.hhmmss(ofNanoseconds: ns)
        let c = Array(d + t)
        return "\(String(c[0..<4]))-\(String(c[4..<6]))-\(String(c[6..<8])) \(String(c[8..<10])):\(String(c[10..<12])):\(String(c[12..<14]))"
    }
}

func randomLetters(_ n: Int, from alphabet: String = "abcdefghijklmnopqrstuvwxyz") -> String {
    let a = Array(alphabet)
    return String((0..<n).map { _ in a.randomElement()! })
}

/// REST requests before (or instead of) a WebSocket upgrade.
final class RESTHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    // @unchecked: used on its channel's event loop only.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let server: KISServer
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(server: KISServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body.clear()
        case .body(var b):
            if body.readableBytes + b.readableBytes <= 1 << 20 { body.writeBuffer(&b) }
        case .end:
            guard let head else { return }
            let text = body.readString(length: body.readableBytes) ?? ""
            let (status, json) = server.handleREST(method: head.method, path: head.uri, body: text)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
            headers.add(name: "Content-Length", value: String(json.utf8.count))
            let keepAlive = head.isKeepAlive
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: json)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
            self.head = nil
        }
    }
}

/// One WebSocket client of the server.
final class ServeConnection: @unchecked Sendable {
    // @unchecked: mutable state is guarded by `state`.
    let server: KISServer
    let channel: any Channel
    struct State {
        var appKey: String?
        var subscriptions: Set<Subscription> = []
        var keys: [String: AESKey] = [:]
        var lastSubscribe: ContinuousClock.Instant?
        var awaitingEcho: String?
        var echoDeadline: ContinuousClock.Instant?
        var closed = false
        var rejectedInUse = false
    }
    let state = Mutex(State())

    init(server: KISServer, channel: any Channel) {
        self.server = server
        self.channel = channel
    }

    func sendText(_ text: String) {
        var buffer = channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: buffer), promise: nil)
    }

    func closeGracefully() {
        var data = channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: .goingAway)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)).whenComplete { [channel] _ in
            channel.close(promise: nil)
        }
    }

    /// Closes the TCP connection without a close frame.
    func drop() { channel.close(promise: nil) }

    func startTimers() {
        let thread = Thread { [self] in
            BackgroundThreads.nameCurrentThread("serve-playback")
            playbackLoop()
        }
        thread.start()
        schedulePing()
    }

    private func schedulePing() {
        let interval = server.options.pingPongInterval
        channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(interval.nanosecondsDouble))) { [self] in
            let (closed, overdue) = state.withLock { s -> (Bool, Bool) in
                (s.closed, s.awaitingEcho != nil && s.echoDeadline.map { ContinuousClock.now >= $0 } == true)
            }
            if closed { return }
            if overdue {
                server.shared.withLock { $0.status.droppedForNoEcho += 1 }
                server.logger.notice("dropping a client that did not echo PINGPONG")
                drop()
                return
            }
            if !server.isSilent {
                let ping = "{\"header\":{\"tr_id\":\"PINGPONG\",\"datetime\":\"\(KSTTime.timestamp14(ofNanoseconds: wallClockNanoseconds()))\"}}"
                state.withLock { s in
                    if s.awaitingEcho == nil {
                        s.awaitingEcho = ping
                        s.echoDeadline = .now + server.options.pingPongTimeout
                    }
                }
                server.shared.withLock { $0.status.pingPongsSent += 1 }
                sendText(ping)
            }
            schedulePing()
        }
        // A client that never echoes is dropped at the deadline even between pings.
        channel.eventLoop.scheduleTask(in: .nanoseconds(Int64((interval + server.options.pingPongTimeout).nanosecondsDouble) + 1_000_000)) { [self] in
            let overdue = state.withLock { s in !s.closed && s.awaitingEcho != nil && s.echoDeadline.map { ContinuousClock.now >= $0 } == true }
            if overdue {
                server.shared.withLock { $0.status.droppedForNoEcho += 1 }
                server.logger.notice("dropping a client that did not echo PINGPONG")
                drop()
            }
        }
    }

    func received(_ text: String) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            sendText(control(tr: "", key: "", rt: "9", code: "OPSP9999", msg: "JSON PARSING ERROR : invalid json format"))
            return
        }
        let header = object["header"] as? [String: Any]
        if header?["tr_id"] as? String == "PINGPONG" {
            let echoed = state.withLock { s -> Bool in
                guard s.awaitingEcho == text else { return false }
                s.awaitingEcho = nil
                s.echoDeadline = nil
                return true
            }
            if echoed { server.shared.withLock { $0.status.pingPongsEchoed += 1 } }
            return
        }
        guard let header else {
            sendText(control(tr: "", key: "", rt: "9", code: "OPSP9998", msg: "JSON PARSING ERROR : header not found"))
            return
        }
        guard let body = object["body"] as? [String: Any] else {
            sendText(control(tr: "", key: "", rt: "9", code: "OPSP9992", msg: "JSON PARSING ERROR : body not found"))
            return
        }
        guard let input = body["input"] as? [String: Any] else {
            sendText(control(tr: "", key: "", rt: "9", code: "OPSP9991", msg: "JSON PARSING ERROR : input not found"))
            return
        }
        let tr = input["tr_id"] as? String ?? ""
        guard let key = input["tr_key"] as? String, !key.isEmpty else {
            sendText(control(tr: tr, key: "", rt: "9", code: "OPSP9990", msg: "JSON PARSING ERROR : tr_key not found"))
            return
        }
        guard let custType = header["custtype"] as? String, custType == "P" || custType == "B" else {
            sendText(control(tr: tr, key: key, rt: "9", code: "OPSP8998", msg: "JSON PARSING ERROR : invalid custtype"))
            return
        }
        let trType = header["tr_type"] as? String ?? ""
        guard trType == "1" || trType == "2" else {
            sendText(control(tr: tr, key: key, rt: "9", code: "OPSP8997", msg: "JSON PARSING ERROR : invalid tr_type"))
            return
        }
        guard !tr.isEmpty, tr.count <= 16 else {
            sendText(control(tr: tr, key: key, rt: "9", code: "OPSP8991", msg: "SUBSCRIBE ERROR : invalid tr_id"))
            return
        }
        let approval = header["approval_key"] as? String ?? ""
        guard let app = server.shared.withLock({ $0.approvalKeys[approval] }) else {
            sendText(control(tr: tr, key: key, rt: "1", code: "OPSP0011", msg: "invalid approval : NOT FOUND"))
            return
        }
        // One session per app key.
        let me = ObjectIdentifier(self)
        let alreadyRejected = state.withLock { s in defer { s.rejectedInUse = true }; return s.rejectedInUse }
        let inUse = server.shared.withLock { s -> Bool in
            if let until = s.inUseUntil, ContinuousClock.now < until {
                if !alreadyRejected { s.status.rejectedInUse += 1 }
                return true
            }
            if let holder = s.activeSession[app], holder != me, s.connections[holder] != nil {
                if !alreadyRejected { s.status.rejectedInUse += 1 }  // counted per connection
                return true
            }
            s.activeSession[app] = me
            return false
        }
        if !inUse { state.withLock { $0.rejectedInUse = false } }
        if inUse {
            sendText("{\"header\":{\"tr_id\":\"(null)\",\"tr_key\":\"\",\"encrypt\":\"N\"},\"body\":{\"rt_cd\":\"9\",\"msg_cd\":\"OPSP8996\",\"msg1\":\"ALREADY IN USE appkey\"}}")
            channel.eventLoop.scheduleTask(in: .milliseconds(200)) { [self] in closeGracefully() }
            return
        }
        let pair = Subscription(trID: tr, trKey: key)
        let limit = server.options.registrationLimit
        let internalError = trType == "1" && server.shared.withLock { s -> Bool in
            guard s.subscribeErrors > 0 else { return false }
            s.subscribeErrors -= 1
            return true
        }
        if internalError {
            sendText(control(tr: tr, key: key, rt: "1", code: "OPSP0007", msg: "SUBSCRIBE INTERNAL ERROR"))
            return
        }
        let reply = state.withLock { s -> String in
            s.appKey = app
            if trType == "2" {
                guard s.subscriptions.remove(pair) != nil else {
                    return control(tr: tr, key: key, rt: "1", code: "OPSP0003", msg: "UNSUBSCRIBE ERROR(not found!)")
                }
                return control(tr: tr, key: key, rt: "0", code: "OPSP0001", msg: "UNSUBSCRIBE SUCCESS")
            }
            s.lastSubscribe = .now
            if s.subscriptions.contains(pair) {
                return control(tr: tr, key: key, rt: "1", code: "OPSP0002", msg: "ALREADY IN SUBSCRIBE")
            }
            if s.subscriptions.count >= limit {
                return control(tr: tr, key: key, rt: "1", code: "OPSP0008", msg: "MAX SUBSCRIBE OVER")
            }
            s.subscriptions.insert(pair)
            let k = randomLetters(32)
            let iv = randomLetters(16, from: "0123456789abcdef")
            s.keys[tr] = try? AESKey(key: k, iv: iv)
            let encrypt = tr.contains("CNI") ? "Y" : "N"
            return "{\"header\":{\"tr_id\":\"\(tr)\",\"tr_key\":\"\(key)\",\"encrypt\":\"\(encrypt)\"},\"body\":{\"rt_cd\":\"0\",\"msg_cd\":\"OPSP0000\",\"msg1\":\"SUBSCRIBE SUCCESS\",\"output\":{\"iv\":\"\(iv)\",\"key\":\"\(k)\"}}}"
        }
        server.shared.withLock { $0.status.subscribes += 1 }
        sendText(reply)
    }

    private func control(tr: String, key: String, rt: String, code: String, msg: String) -> String {
        "{\"header\":{\"tr_id\":\(JSONText.quote(tr)),\"tr_key\":\(JSONText.quote(key)),\"encrypt\":\"N\"},\"body\":{\"rt_cd\":\"\(rt)\",\"msg_cd\":\"\(code)\",\"msg1\":\"\(msg)\"}}"
    }

    func closedByPeer() {
        state.withLock { $0.closed = true }
        server.closed(self)
    }

    /// Streams the recording to this client: waits until its subscribing has been quiet for `startDelay`, then sends
    /// every frame of a subscribed pair from the app key's cursor on, read from the file as it goes, paced when a
    /// speed or rate is set. Frames that are due are sent in one event-loop task and one flush (at most `batchLimit`).
    private func playbackLoop() {
        let options = server.options
        var app = ""
        while true {
            let (closed, ready, appKey) = state.withLock { s -> (Bool, Bool, String?) in
                (s.closed, s.lastSubscribe.map { ContinuousClock.now - $0 >= options.startDelay } ?? false, s.appKey)
            }
            if closed { return }
            if ready, let appKey {
                app = appKey
                break
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let first = server.shared.withLock { $0.cursor[app] ?? 0 }
        let clock = PacingClock()
        var origin: Int64?
        var batch: [String] = []
        batch.reserveCapacity(Self.batchLimit)
        /// A batch is open from the frame that starts it until it is flushed; `now` is when it was opened.
        var open = false
        var now: Int64 = 0
        /// When frame `i` (received at `receivedAt`) is due, in nanoseconds after the start; `nil` = unpaced.
        func due(_ i: Int, _ receivedAt: Int64) -> Int64? {
            if let rate = options.rate { return Int64(Double(i - first) * 1e9 / rate) }
            if let speed = options.speed { return Int64(Double(receivedAt - (origin ?? receivedAt)) / speed) }
            return nil
        }
        func flush(end: Int) {
            if !batch.isEmpty {
                while !channel.isWritable && channel.isActive { Thread.sleep(forTimeInterval: 0.001) }
                sendTexts(batch)
            }
            let sent = batch.count
            batch.removeAll(keepingCapacity: true)
            open = false
            server.shared.withLock {
                $0.status.framesSent += sent
                $0.cursor[app] = end
            }
        }
        var end = first
        do {
            try server.playback.forEach(from: first) { i, frame in
                if origin == nil { origin = frame.receivedAt }
                let dueAt = due(i, frame.receivedAt)
                if open && (batch.count >= Self.batchLimit || (dueAt.map { $0 > now } ?? false)) { flush(end: i) }
                if !open {
                    if state.withLock({ $0.closed }) { throw ServePlayback.Stop() }
                    while server.isSilent { Thread.sleep(forTimeInterval: 0.01) }
                    // Sleep (never spin: the client under test shares the CPU) until the frame is due.
                    if let dueAt { clock.wait(until: clock.instant(offsetNanoseconds: dueAt), precise: false) }
                    now = PacingClock.nanoseconds(ContinuousClock.now - clock.start)
                    open = true
                }
                end = i + 1
                let tr = frame.trID ?? ""
                let text = state.withLock { s -> String? in
                    let send: Bool
                    var key: AESKey?
                    if let trKey = frame.trKey {
                        send = s.subscriptions.contains(Subscription(trID: tr, trKey: trKey))
                        key = s.keys[tr]
                    } else {
                        // Unattributable text goes to every client subscribed to anything of its tr_id (or anything).
                        send = frame.trID == nil ? !s.subscriptions.isEmpty : s.subscriptions.contains { $0.trID == tr }
                    }
                    guard send else { return nil }
                    if let plain = frame.plaintext, let count = frame.count, let trID = frame.trID, let key {
                        return "1|\(trID)|\(count)|" + key.encryptToBase64(Array(plain.utf8))
                    }
                    return frame.body
                }
                if let text { batch.append(text) }
            }
            if open { flush(end: end) }
        } catch {
            server.logger.error(
                "serve: reading the recording failed; this client gets no more frames",
                metadata: ["frame": "\(end)", "error": "\(error)"])
            closeGracefully()
        }
    }

    /// Frames handed to the event loop at once.
    static let batchLimit = 256

    /// Writes the texts as WebSocket text frames with one flush, on the channel's event loop.
    func sendTexts(_ texts: [String]) {
        channel.eventLoop.execute { [channel] in
            for text in texts {
                // Room in front for the frame header (at most 14 bytes): NIO's encoder then prepends it in place
                // instead of writing a second buffer per frame.
                var buffer = channel.allocator.buffer(capacity: text.utf8.count + 14)
                buffer.moveWriterIndex(forwardBy: 14)
                buffer.moveReaderIndex(forwardBy: 14)
                buffer.writeString(text)
                channel.write(WebSocketFrame(fin: true, opcode: .text, data: buffer), promise: nil)
            }
            channel.flush()
        }
    }
}

/// Frames of one server-side WebSocket.
final class ServeFrameHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let connection: ServeConnection

    init(connection: ServeConnection) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            var data = frame.unmaskedData
            connection.received(data.readString(length: data.readableBytes) ?? "")
        case .ping:
            // KIS answers protocol pings with an error and a disconnect (protocol reference §7).
            connection.sendText("{\"header\":{\"tr_id\":\"(null)\",\"tr_key\":\"\",\"encrypt\":\"N\"},\"body\":{\"rt_cd\":\"9\",\"msg_cd\":\"OPSP8991\",\"msg1\":\"SUBSCRIBE ERROR : invalid tr_id\"}}")
            connection.drop()
        case .connectionClose:
            let reply = WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in context.close(promise: nil) }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.closedByPeer()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
