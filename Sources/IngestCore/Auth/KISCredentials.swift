/// A KIS app key and secret. Never printed: `description` shows the fingerprint only.
public struct KISCredentials: Sendable, Equatable, CustomStringConvertible {
    public let appKey: String
    public let appSecret: String

    public init(appKey: String, appSecret: String) {
        self.appKey = appKey
        self.appSecret = appSecret
    }

    /// `sha256:` + 16 hex digits: names this key in logs, metrics, Redis keys and recordings.
    public var fingerprint: String { Secrets.fingerprint(appKey) }

    public var description: String { "app key \(fingerprint)" }
}

/// An access token and when it expires (from `access_token_token_expired`, KST).
public struct AccessToken: Sendable, Equatable {
    public var token: String
    /// Expiry, nanoseconds since the Unix epoch.
    public var expiresAt: Int64
}

/// Why KIS refused an auth request, or why it could not be made.
public struct AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    /// KIS's `error_code` (`EGW00133`, `EGW00103`, …) or ours (`transport`, `bad_response`, `rate_limited_locally`).
    public let code: String
    public let message: String
    /// HTTP status, when there was an answer.
    public let status: Int?

    public init(code: String, message: String, status: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
    }

    /// EGW00133: one token issuance per minute per app key; retry after at least 60 s.
    public var isRateLimited: Bool { code == "EGW00133" }

    public var description: String { "\(code): \(message)" + (status.map { " (HTTP \($0))" } ?? "") }
}
