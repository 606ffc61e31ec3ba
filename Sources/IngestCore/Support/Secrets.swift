internal import COpenSSL

/// Keeping secrets (app key and secret, approval key, access token, passwords) out of logs, metrics, recordings,
/// dead letters and error text.
public enum Secrets {
    /// JSON field names whose string values are secrets.
    static let jsonFields = ["approval_key", "appkey", "appsecret", "secretkey", "access_token", "token", "password"]

    /// The text with the string value of every secret JSON field replaced by `***` (`"approval_key":"***"`).
    ///
    /// Works on any JSON-looking text without parsing it, so it also masks truncated or malformed JSON.
    public static func maskJSON(_ text: String) -> String {
        guard text.contains("\"") else { return text }
        var bytes = Array(text.utf8)
        var changed = false
        for field in jsonFields {
            let needle = Array("\"\(field)\"".utf8)
            var searchFrom = 0
            while let start = find(needle, in: bytes, from: searchFrom) {
                var i = start + needle.count
                while i < bytes.count, bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\t") { i += 1 }
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { searchFrom = start + 1; continue }
                i += 1
                while i < bytes.count, bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\t") { i += 1 }
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { searchFrom = start + 1; continue }
                let valueStart = i + 1
                var j = valueStart
                while j < bytes.count, bytes[j] != UInt8(ascii: "\"") {
                    j += bytes[j] == UInt8(ascii: "\\") ? 2 : 1
                }
                let valueEnd = min(j, bytes.count)
                if valueEnd > valueStart {
                    bytes.replaceSubrange(valueStart..<valueEnd, with: Array("***".utf8))
                    changed = true
                }
                searchFrom = valueStart
            }
        }
        return changed ? String(decoding: bytes, as: UTF8.self) : text
    }

    /// `sha256:` + the first 16 hex digits of SHA-256 of `secret`: identifies an app key without revealing it.
    public static func fingerprint(_ secret: String) -> String {
        "sha256:" + sha256Hex(Array(secret.utf8)).prefix(16)
    }

    /// Lowercase hex SHA-256.
    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = bytes.withUnsafeBytes { b in EVP_Digest(b.baseAddress, b.count, &digest, &length, EVP_sha256(), nil) }
        return digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    private static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard needle.count <= hay.count else { return nil }
        var i = from
        while i + needle.count <= hay.count {
            if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
