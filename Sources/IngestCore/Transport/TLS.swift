import NIOSSL

/// TLS settings for `wss://` and `https://`.
public struct TLSOptions: Sendable, Equatable {
    /// A PEM file of CA certificates to trust instead of the system store (self-signed test servers).
    public var caFile: String?
    /// Skip certificate verification (never in production; for local test servers only).
    public var insecure: Bool

    public init(caFile: String? = nil, insecure: Bool = false) {
        self.caFile = caFile
        self.insecure = insecure
    }

    func clientContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile { configuration.trustRoots = .file(caFile) }
        if insecure { configuration.certificateVerification = .none }
        return try NIOSSLContext(configuration: configuration)
    }
}
