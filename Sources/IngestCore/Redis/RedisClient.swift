internal import CHiredis
import Foundation

/// A Redis reply.
public enum RedisReply: Sendable, Equatable {
    case string(String)
    case status(String)
    case integer(Int64)
    case array([RedisReply])
    case null
    case error(String)

    /// The reply as text when it is a string or status.
    public var text: String? {
        switch self {
        case .string(let s), .status(let s): s
        default: nil
        }
    }
}

/// An error talking to Redis. Messages name the address, never the password.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where and how to reach Redis.
public struct RedisConfiguration: Sendable, Equatable {
    /// `REDIS_HOST`, default `localhost`.
    public var host: String
    /// `REDIS_PORT`, default 6379.
    public var port: Int
    /// `REDIS_PASSWORD`, default none. Never logged.
    public var password: String?
    /// `REDIS_DB`, default 0.
    public var database: Int
    /// Connect and command timeout.
    public var timeout: Duration

    public init(host: String = "localhost", port: Int = 6379, password: String? = nil, database: Int = 0,
                timeout: Duration = .seconds(2)) {
        self.host = host
        self.port = port
        self.password = password
        self.database = database
        self.timeout = timeout
    }

    var address: String { "\(host):\(port)" }
}

/// A blocking Redis connection (hiredis). Not thread-safe: one owner at a time; keep calls off the cooperative pool.
public final class RedisClient {
    private var context: UnsafeMutablePointer<redisContext>
    public let configuration: RedisConfiguration

    /// Connects, authenticates and selects the database; throws a `RedisError` naming the address.
    public init(configuration: RedisConfiguration) throws(RedisError) {
        self.configuration = configuration
        let seconds = configuration.timeout.components.seconds
        let micros = configuration.timeout.components.attoseconds / 1_000_000_000_000
        let tv = timeval(tv_sec: Int(seconds), tv_usec: Int(micros))
        guard let ctx = redisConnectWithTimeout(configuration.host, Int32(configuration.port), tv) else {
            throw RedisError("Redis at \(configuration.address): out of memory allocating a connection")
        }
        if ctx.pointee.err != 0 {
            let reason = Self.errorText(ctx)
            redisFree(ctx)
            throw RedisError("cannot connect to Redis at \(configuration.address): \(reason); check REDIS_HOST/REDIS_PORT")
        }
        redisSetTimeout(ctx, tv)
        self.context = ctx
        if let password = configuration.password, !password.isEmpty {
            let reply = try command(["AUTH", password])
            if case .error(let e) = reply {
                throw RedisError("Redis at \(configuration.address) refused the password (\(e.prefix(60))); check REDIS_PASSWORD")
            }
        }
        if configuration.database != 0 {
            if case .error(let e) = try command(["SELECT", String(configuration.database)]) {
                throw RedisError("Redis at \(configuration.address): SELECT \(configuration.database) failed: \(e)")
            }
        }
    }

    deinit { redisFree(context) }

    private static func errorText(_ ctx: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: ctx.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Sends one command (binary-safe arguments) and returns its reply; throws on a connection or protocol error.
    public func command(_ arguments: [String]) throws(RedisError) -> RedisReply {
        let bytes = arguments.map { Array($0.utf8) }
        let reply: UnsafeMutableRawPointer? = withPointers(bytes) { argv, lengths in
            UnsafeMutableRawPointer(chiredis_command_argv(context, Int32(arguments.count), argv, lengths))
        }
        guard let reply else {
            throw RedisError("Redis at \(configuration.address): \(Self.errorText(context)) during \(arguments.first ?? "")")
        }
        let typed = reply.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(reply) }
        return Self.convert(typed)
    }

    private func withPointers<R>(_ args: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        let buffers = args.map { a -> UnsafeMutablePointer<CChar> in
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: max(a.count, 1))
            a.withUnsafeBufferPointer { src in
                src.withMemoryRebound(to: CChar.self) { if let base = $0.baseAddress { p.update(from: base, count: a.count) } }
            }
            return p
        }
        defer { buffers.forEach { $0.deallocate() } }
        var argv: [UnsafePointer<CChar>?] = buffers.map { UnsafePointer($0) }
        let lengths = args.map(\.count)
        return argv.withUnsafeMutableBufferPointer { a in lengths.withUnsafeBufferPointer { l in body(a.baseAddress!, l.baseAddress!) } }
    }

    private static func convert(_ r: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let reply = r.pointee
        func text() -> String {
            guard let s = reply.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: s, count: Int(reply.len)), as: UTF8.self)
        }
        switch reply.type {
        case REDIS_REPLY_STRING: return .string(text())
        case REDIS_REPLY_STATUS: return .status(text())
        case REDIS_REPLY_INTEGER: return .integer(Int64(reply.integer))
        case REDIS_REPLY_NIL: return .null
        case REDIS_REPLY_ERROR: return .error(text())
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            for i in 0..<Int(reply.elements) {
                if let e = reply.element[i] { items.append(convert(e)) }
            }
            return .array(items)
        default: return .error("unsupported reply type \(reply.type)")
        }
    }
}
