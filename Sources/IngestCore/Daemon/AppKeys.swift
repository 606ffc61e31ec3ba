import Foundation

/// Several KIS app keys: where they come from and how the registrations are spread across their sessions.
///
/// KIS allows one WebSocket session per app key and 41 registrations per session. `ingestd` takes any number of app
/// key/secret pairs, opens one session per key that has registrations, and spreads the registrations across them.
public enum AppKeys {
    /// The app keys, in this order: `KIS_API_KEY`/`KIS_API_SECRET`, then `KIS_API_KEY_<n>`/`KIS_API_SECRET_<n>` by
    /// ascending `n`, then the lines of `KIS_CREDENTIALS_FILE` (`APP_KEY APP_SECRET`, `#` comments). Error messages
    /// never contain a key or a secret, only fingerprints, variable names and line numbers.
    public static func load(_ env: [String: String]) throws(ConfigurationError) -> [KISCredentials] {
        func value(_ name: String) -> String? {
            guard let v = env[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        var result: [(KISCredentials, String)] = []
        func pair(_ keyName: String, _ secretName: String) throws(ConfigurationError) {
            switch (value(keyName), value(secretName)) {
            case (nil, nil): return
            case (let key?, let secret?): result.append((KISCredentials(appKey: key, appSecret: secret), keyName))
            case (_?, nil): throw ConfigurationError("\(secretName) is not set but \(keyName) is: every app key needs its secret (example: \(secretName)=<the 180-character app secret>)")
            case (nil, _?): throw ConfigurationError("\(keyName) is not set but \(secretName) is: every secret needs its app key (example: \(keyName)=PSxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx)")
            }
        }
        try pair("KIS_API_KEY", "KIS_API_SECRET")
        var indices: Set<Int> = []
        for name in env.keys {
            for prefix in ["KIS_API_KEY_", "KIS_API_SECRET_"] where name.hasPrefix(prefix) {
                let suffix = name.dropFirst(prefix.count)
                guard let n = Int(suffix), n >= 0, String(n) == suffix else {
                    if value(name) != nil {
                        throw ConfigurationError("\(name): expected \(prefix)<number> such as \(prefix)2 for an additional app key")
                    }
                    continue
                }
                indices.insert(n)
            }
        }
        for n in indices.sorted() { try pair("KIS_API_KEY_\(n)", "KIS_API_SECRET_\(n)") }
        if let file = value("KIS_CREDENTIALS_FILE") {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError("KIS_CREDENTIALS_FILE=\"\(file)\" cannot be read (expected a file of APP_KEY APP_SECRET lines)")
            }
            for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard fields.count == 2 else {
                    throw ConfigurationError("KIS_CREDENTIALS_FILE \(file):\(index + 1): expected two fields, APP_KEY APP_SECRET, separated by spaces (found \(fields.count); contents not shown)")
                }
                result.append((KISCredentials(appKey: String(fields[0]), appSecret: String(fields[1])), "\(file):\(index + 1)"))
            }
        }
        guard !result.isEmpty else {
            throw ConfigurationError("KIS_API_KEY is not set: it is required (example: KIS_API_KEY=PSxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx), or give several app keys as KIS_API_KEY_1/KIS_API_SECRET_1, … or KIS_CREDENTIALS_FILE")
        }
        var seen: [String: String] = [:]
        for (credentials, source) in result {
            if let first = seen[credentials.appKey] {
                throw ConfigurationError("the app key in \(source) (\(credentials.fingerprint)) is the same as the one in \(first): KIS allows one session per app key, so each key may be given once")
            }
            seen[credentials.appKey] = source
        }
        return result.map(\.0)
    }

    /// Spreads registrations over `sessions` sessions of at most `limit` each: a symbol's registrations stay on one
    /// session when they fit, each symbol goes to the least loaded session (ties: the lower index), notices
    /// (`H0STCNI0`/`H0STCNI9`, tied to the first key's account) go to session 0. Sessions may end up empty when
    /// there are fewer symbols than keys. Throws when the registrations do not fit.
    public static func spread(_ subscriptions: [Subscription], sessions: Int, limit: Int) throws(ConfigurationError) -> [[Subscription]] {
        precondition(sessions > 0 && limit > 0)
        guard subscriptions.count <= sessions * limit else {
            let keysNeeded = (subscriptions.count + limit - 1) / limit
            throw ConfigurationError("KIS_SUBSCRIPTIONS has \(subscriptions.count) registrations; \(sessions) app key\(sessions == 1 ? "" : "s") allow\(sessions == 1 ? "s" : "") \(sessions * limit) (\(limit) per session, trades + books + notices together): remove \(subscriptions.count - sessions * limit) or add \(keysNeeded - sessions) app key\(keysNeeded - sessions == 1 ? "" : "s") (KIS_API_KEY_<n>/KIS_API_SECRET_<n> or KIS_CREDENTIALS_FILE)")
        }
        var plan = [[Subscription]](repeating: [], count: sessions)
        func isNotice(_ s: Subscription) -> Bool { s.trID.hasPrefix("H0STCNI") }
        var groups: [(key: String, items: [Subscription])] = []
        var groupIndex: [String: Int] = [:]
        for s in subscriptions {
            if isNotice(s) {
                plan[0].append(s)
                continue
            }
            if let i = groupIndex[s.trKey] {
                groups[i].items.append(s)
            } else {
                groupIndex[s.trKey] = groups.count
                groups.append((s.trKey, [s]))
            }
        }
        guard plan[0].count <= limit else {
            throw ConfigurationError("KIS_SUBSCRIPTIONS has \(plan[0].count) notice registrations; they all go to the first app key's session, which allows \(limit)")
        }
        for group in groups {
            // The least loaded session with room for the whole group; otherwise split it over the least loaded ones.
            if let target = plan.indices.filter({ plan[$0].count + group.items.count <= limit }).min(by: { (plan[$0].count, $0) < (plan[$1].count, $1) }) {
                plan[target] += group.items
                continue
            }
            for item in group.items {
                guard let target = plan.indices.filter({ plan[$0].count < limit }).min(by: { (plan[$0].count, $0) < (plan[$1].count, $1) }) else {
                    throw ConfigurationError("KIS_SUBSCRIPTIONS do not fit into \(sessions) sessions of \(limit)")
                }
                plan[target].append(item)
            }
        }
        return plan
    }
}
