import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import Synchronization

/// A client WebSocket connection that hands every text message, with its receive time, to a callback on the event
/// loop (the socket reader), and sends text messages from any thread.
///
/// It never sends RFC 6455 pings (KIS drops clients that do); it answers server pings with pongs as the RFC requires.
public final class WebSocketConnection: Sendable {
    private let channel: any Channel
    private let state: ConnectionState

    /// Called for every complete text message, on the event loop: must not block.
    public typealias TextHandler = @Sendable (_ text: String, _ receivedAt: Int64) -> Void
    /// Called once when the connection is gone, with a human-readable reason.
    public typealias CloseHandler = @Sendable (_ reason: String) -> Void

    private init(channel: any Channel, state: ConnectionState) {
        self.channel = channel
        self.state = state
    }

    /// Connects, upgrades to WebSocket and starts delivering messages. Throws a `TransportError` that names the
    /// endpoint when the TCP connection, TLS or the upgrade fails.
    public static func connect(
        to endpoint: Endpoint,
        maxMessageSize: Int = 8 << 20, tls: TLSOptions = TLSOptions(), connectTimeout: Duration = .seconds(10),
        onText: @escaping TextHandler, onClose: @escaping CloseHandler
    ) async throws(TransportError) -> WebSocketConnection {
        let group = MultiThreadedEventLoopGroup.singleton
        let state = ConnectionState(onText: onText, onClose: onClose)
        let upgraded = group.next().makePromise(of: Void.self)
        let sslContext: NIOSSLContext?
        do {
            sslContext = endpoint.secure ? try tls.clientContext() : nil
        } catch {
            throw TransportError("TLS set-up for \(endpoint) failed: \(error)")
        }
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.nanoseconds(Int64(connectTimeout.nanosecondsDouble)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: endpoint.host)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    let request = UpgradeRequestHandler(endpoint: endpoint, upgraded: upgraded)
                    let upgrader = NIOWebSocketClientUpgrader(
                        maxFrameSize: maxMessageSize, automaticErrorHandling: false,
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandlers([
                                    NIOWebSocketFrameAggregator(
                                        minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 4096,
                                        maxAccumulatedFrameSize: maxMessageSize),
                                    ClientFrameHandler(state: state),
                                ])
                            }
                        })
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes,
                        withClientUpgrade: (upgraders: [upgrader], completionHandler: { context in
                            upgraded.succeed()
                            context.pipeline.syncOperations.removeHandler(request, promise: nil)
                        }))
                    try channel.pipeline.syncOperations.addHandler(request)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
        } catch {
            upgraded.fail(error)
            throw TransportError("cannot connect to \(endpoint): \(error)")
        }
        do {
            try await upgraded.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw TransportError("WebSocket upgrade with \(endpoint) failed: \(error)")
        }
        return WebSocketConnection(channel: channel, state: state)
    }

    /// Sends one text message (masked, as a client must). Safe from any thread; never blocks.
    public func send(_ text: String) {
        var buffer = channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: buffer)
        channel.writeAndFlush(frame, promise: nil)
    }

    /// Sends a close frame and closes the connection.
    public func close(reason: String = "client closing") {
        state.setReasonIfUnset("closed by us: \(reason)")
        var data = channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: .normalClosure)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)
        channel.writeAndFlush(frame).whenComplete { [channel] _ in
            channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
        }
    }

    /// Drops the TCP connection at once, without a close frame (watchdog, shutdown).
    public func abort(reason: String) {
        state.setReasonIfUnset(reason)
        channel.close(promise: nil)
    }

    /// Completes when the connection is closed.
    public func waitClosed() async {
        try? await channel.closeFuture.get()
    }

    public var isOpen: Bool { channel.isActive }
}

/// Shared between the connection object and its channel handler.
final class ConnectionState: Sendable {
    let onText: WebSocketConnection.TextHandler
    let onClose: WebSocketConnection.CloseHandler
    private let reason = Mutex<String?>(nil)
    private let closed = Atomic<Bool>(false)

    init(onText: @escaping WebSocketConnection.TextHandler, onClose: @escaping WebSocketConnection.CloseHandler) {
        self.onText = onText
        self.onClose = onClose
    }

    func setReasonIfUnset(_ text: String) {
        reason.withLock { if $0 == nil { $0 = text } }
    }

    func closedNow() {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        onClose(reason.withLock { $0 } ?? "connection closed by the server without a close frame")
    }
}

/// Sends the upgrade request when the channel becomes active, and fails the upgrade on a non-101 answer.
final class UpgradeRequestHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let endpoint: Endpoint
    let upgraded: EventLoopPromise<Void>

    init(endpoint: Endpoint, upgraded: EventLoopPromise<Void>) {
        self.endpoint = endpoint
        self.upgraded = upgraded
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(endpoint.host):\(endpoint.port)")
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: endpoint.path, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            upgraded.fail(TransportError("the server answered HTTP \(head.status.code) instead of switching protocols"))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        upgraded.fail(TransportError("the connection closed during the WebSocket upgrade"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        upgraded.fail(error)
        context.close(promise: nil)
    }
}

/// The socket reader: stamps and hands over text messages, answers pings and close frames.
final class ClientFrameHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let state: ConnectionState

    init(state: ConnectionState) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            let receivedAt = wallClockNanoseconds()
            var data = frame.unmaskedData
            let text = data.readString(length: data.readableBytes) ?? ""
            state.onText(text, receivedAt)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readWebSocketErrorCode().map { "\($0)" } ?? "none"
            let text = data.readString(length: data.readableBytes) ?? ""
            state.setReasonIfUnset("server sent close frame (code \(code)\(text.isEmpty ? "" : ", \(text)"))")
            let reply = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in context.close(promise: nil) }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.closedNow()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state.setReasonIfUnset("connection error: \(error)")
        context.close(promise: nil)
    }
}
