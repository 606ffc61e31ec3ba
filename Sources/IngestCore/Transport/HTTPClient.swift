import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A response to a REST call.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var body: String
}

/// A minimal HTTP/1.1 client for KIS's few REST calls (one request per connection, JSON in and out).
public enum HTTPClient {
    /// POSTs `body` as JSON to `base` + `path` and returns the status and body. Throws a `TransportError` naming
    /// the endpoint when it cannot connect, the TLS handshake fails or no complete answer arrives within `timeout`.
    public static func post(
        _ base: Endpoint, path: String, json body: String, headers extra: [(String, String)] = [],
        tls: TLSOptions = TLSOptions(), timeout: Duration = .seconds(10)
    ) async throws(TransportError) -> HTTPResponse {
        let target = "\(base.secure ? "https" : "http")://\(base.host):\(base.port)\(path)"
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: HTTPResponse.self)
        let sslContext: NIOSSLContext?
        do { sslContext = base.secure ? try tls.clientContext() : nil } catch {
            throw TransportError("TLS set-up for \(target) failed: \(error)")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(base.host):\(base.port)")
        headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Connection", value: "close")
        for (name, value) in extra { headers.add(name: name, value: value) }
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.nanoseconds(Int64(timeout.nanosecondsDouble)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: base.host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(head: head, body: body, promise: promise))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: base.host, port: base.port).get()
        } catch {
            promise.fail(error)
            throw TransportError("cannot connect to \(target): \(error)")
        }
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.nanosecondsDouble))) {
            promise.fail(TransportError("no complete answer from \(target) within \(timeout)"))
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            return try await promise.futureResult.get()
        } catch let e as TransportError {
            throw e
        } catch {
            throw TransportError("request to \(target) failed: \(error)")
        }
    }
}

final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: all state is touched on the channel's event loop only.
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let head: HTTPRequestHead
    let body: String
    let promise: EventLoopPromise<HTTPResponse>
    private var status = 0
    private var buffer = ByteBuffer()

    init(head: HTTPRequestHead, body: String, promise: EventLoopPromise<HTTPResponse>) {
        self.head = head
        self.body = body
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): status = Int(h.status.code)
        case .body(var b): buffer.writeBuffer(&b)
        case .end:
            promise.succeed(HTTPResponse(status: status, body: buffer.readString(length: buffer.readableBytes) ?? ""))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(TransportError("the server closed the connection before answering completely"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
