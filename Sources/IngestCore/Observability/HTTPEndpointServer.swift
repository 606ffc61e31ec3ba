import Dispatch
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 server for operational endpoints (`/metrics`, `/healthz`, `/readyz`).
public final class HTTPEndpointServer: Sendable {
    public typealias Handler = @Sendable (_ method: String, _ path: String) -> (status: Int, contentType: String, body: String)

    private let channel: any Channel
    /// The bound port.
    public let port: Int

    private init(channel: any Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    /// Binds `host:port` (port 0 picks a free one) and serves `handler`; throws a `TransportError` naming the
    /// address when it cannot bind.
    public static func start(host: String, port: Int, handler: @escaping Handler) async throws(TransportError) -> HTTPEndpointServer {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(EndpointHandler(handler: handler))
                }
            }
        do {
            let channel = try await bootstrap.bind(host: host, port: port).get()
            return HTTPEndpointServer(channel: channel, port: channel.localAddress?.port ?? port)
        } catch {
            throw TransportError("cannot listen on \(host):\(port) for metrics and health: \(error); set METRICS_ADDRESS to a free address or off")
        }
    }

    /// `start` for synchronous programs (blocks the calling thread until bound; never call it from async code).
    public static func startBlocking(host: String, port: Int, handler: @escaping Handler) throws(TransportError) -> HTTPEndpointServer {
        let result = Mutex<Result<HTTPEndpointServer, TransportError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do throws(TransportError) {
                let server = try await start(host: host, port: port, handler: handler)
                result.withLock { $0 = .success(server) }
            } catch {
                result.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    /// Parses `HOST:PORT` (`[::1]:9464` too); `nil` for anything else.
    public static func parseAddress(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return host.isEmpty ? nil : (host, port)
    }

    public func stop() async { try? await channel.close() }

    /// `stop` for synchronous programs.
    public func stopBlocking() { try? channel.close().wait() }
}

final class EndpointHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let handler: HTTPEndpointServer.Handler

    init(handler: @escaping HTTPEndpointServer.Handler) { self.handler = handler }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        let (status, type, body) = handler(head.method.rawValue, path)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: status), headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }
}
