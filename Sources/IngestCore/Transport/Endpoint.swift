import Foundation

/// A `ws://`, `wss://`, `http://` or `https://` address, parsed once.
public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
    public var secure: Bool
    public var host: String
    public var port: Int
    /// Path and query, at least `/`.
    public var path: String
    public var isWebSocket: Bool

    /// Parses a URL; throws a `TransportError` naming it when the scheme, host or port is wrong.
    public init(_ text: String) throws(TransportError) {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty
        else {
            throw TransportError("\"\(text)\" is not a URL such as ws://ops.koreainvestment.com:21000/tryitout")
        }
        switch scheme {
        case "ws": (secure, isWebSocket) = (false, true)
        case "wss": (secure, isWebSocket) = (true, true)
        case "http": (secure, isWebSocket) = (false, false)
        case "https": (secure, isWebSocket) = (true, false)
        default: throw TransportError("\"\(text)\": scheme \(scheme) is not ws, wss, http or https")
        }
        self.host = host
        self.port = url.port ?? (secure ? 443 : 80)
        guard (1...65535).contains(self.port) else { throw TransportError("\"\(text)\": port \(self.port) is out of range") }
        var p = url.path.isEmpty ? "/" : url.path
        if let q = url.query { p += "?" + q }
        self.path = p
    }

    public var description: String {
        "\(isWebSocket ? (secure ? "wss" : "ws") : (secure ? "https" : "http"))://\(host):\(port)\(path)"
    }
}

/// A network error: what failed, where, and what to do.
public struct TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Wall-clock time in nanoseconds since the Unix epoch (UTC): the receive time recorded with every message.
@inline(__always)
public func wallClockNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
