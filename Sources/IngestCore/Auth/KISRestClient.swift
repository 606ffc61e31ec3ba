import Foundation

/// KIS's OAuth endpoints: `/oauth2/tokenP`, `/oauth2/Approval`, `/oauth2/revokeP` (protocol reference §3).
public struct KISRestClient: Sendable {
    public let base: Endpoint
    public let tls: TLSOptions
    public let timeout: Duration

    public init(base: Endpoint, tls: TLSOptions = TLSOptions(), timeout: Duration = .seconds(10)) {
        self.base = base
        self.tls = tls
        self.timeout = timeout
    }

    private func post(_ path: String, _ fields: [(String, String)]) async throws(AuthError) -> (Int, [String: Any]) {
        let body = "{" + fields.map { "\(JSONText.quote($0.0)):\(JSONText.quote($0.1))" }.joined(separator: ",") + "}"
        let response: HTTPResponse
        do {
            response = try await HTTPClient.post(base, path: path, json: body, tls: tls, timeout: timeout)
        } catch {
            throw AuthError(code: "transport", message: "\(path): \(error.message); check KIS_API_URL")
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any]
        guard let object else {
            throw AuthError(code: "bad_response", message: "\(path) answered HTTP \(response.status) with a body that is not a JSON object (\(response.body.utf8.count) bytes)", status: response.status)
        }
        if let code = object["error_code"] as? String ?? (object["msg_cd"] as? String).flatMap({ $0.hasPrefix("EGW") ? $0 : nil }) {
            let text = object["error_description"] as? String ?? object["msg1"] as? String ?? ""
            throw AuthError(code: code, message: "\(path) refused: \(text)", status: response.status)
        }
        guard (200..<300).contains(response.status) else {
            throw AuthError(code: "http_\(response.status)", message: "\(path) answered HTTP \(response.status)", status: response.status)
        }
        return (response.status, object)
    }

    /// `POST /oauth2/tokenP`: a new access token (or, within 6 h, the same one again).
    public func issueToken(_ c: KISCredentials) async throws(AuthError) -> AccessToken {
        let (_, o) = try await post("/oauth2/tokenP", [("grant_type", "client_credentials"), ("appkey", c.appKey), ("appsecret", c.appSecret)])
        guard let token = o["access_token"] as? String, !token.isEmpty else {
            throw AuthError(code: "bad_response", message: "/oauth2/tokenP answered without access_token")
        }
        let expiry: Int64
        if let text = o["access_token_token_expired"] as? String, let ns = Self.parseKST(text) {
            expiry = ns
        } else if let seconds = (o["expires_in"] as? NSNumber)?.int64Value {
            expiry = wallClockNanoseconds() + seconds * 1_000_000_000
        } else {
            throw AuthError(code: "bad_response", message: "/oauth2/tokenP answered without a usable expiry")
        }
        return AccessToken(token: token, expiresAt: expiry)
    }

    /// `POST /oauth2/Approval` (the body says `secretkey`): the WebSocket approval key.
    public func issueApprovalKey(_ c: KISCredentials) async throws(AuthError) -> String {
        let (_, o) = try await post("/oauth2/Approval", [("grant_type", "client_credentials"), ("appkey", c.appKey), ("secretkey", c.appSecret)])
        guard let key = o["approval_key"] as? String, !key.isEmpty else {
            throw AuthError(code: "bad_response", message: "/oauth2/Approval answered without approval_key")
        }
        return key
    }

    /// `POST /oauth2/revokeP`.
    public func revokeToken(_ c: KISCredentials, token: String) async throws(AuthError) {
        _ = try await post("/oauth2/revokeP", [("appkey", c.appKey), ("appsecret", c.appSecret), ("token", token)])
    }

    /// `YYYY-MM-DD HH:MM:SS` in KST → ns since the epoch.
    public static func parseKST(_ text: String) -> Int64? {
        let digits = text.filter(\.isNumber)
        guard digits.count == 14 else { return nil }
        let bytes = Array(digits.utf8)
        return bytes.withUnsafeBufferPointer { b -> Int64? in
            guard let day = KSTTime.day(yyyymmdd: UnsafeBufferPointer(rebasing: b[0..<8])),
                let second = KSTTime.secondOfDay(hhmmss: UnsafeBufferPointer(rebasing: b[8..<14]))
            else { return nil }
            return KSTTime.nanoseconds(kstDay: day, secondOfDay: second)
        }
    }
}
