import Foundation
public import Logging
import Synchronization

/// Counters of the credential store.
public struct CredentialCounters: Sendable, Equatable {
    public var tokensIssued = 0
    public var approvalKeysIssued = 0
    public var cacheHits = 0
    public var redisErrors = 0
    public var rateLimited = 0
}

/// Access tokens and approval keys for one app key: from memory, else from Redis (shared by every daemon of a
/// deployment), else issued by KIS, then cached in both.
///
/// Redis keys are namespaced by the app key's fingerprint (`kis-ingest:<fingerprint>:…`). Token issuance takes a
/// Redis lock that expires after 61 s and is never released early, so all daemons sharing one Redis together issue at
/// most one token per minute per app key (KIS answers EGW00133 otherwise). When Redis is unreachable the store keeps
/// working from memory, counts the error, and tries Redis again after `redisRetry`.
public final class CredentialStore: @unchecked Sendable {
    // @unchecked: mutable state is guarded by `lock`; Redis calls run on `redisQueue` only.
    public let credentials: KISCredentials
    private let rest: KISRestClient
    private let redisConfiguration: RedisConfiguration?
    private let cacheTTL: Duration
    private let refreshBefore: Duration
    private let redisRetry: Duration
    private let logger: Logger
    private let redisQueue = DispatchQueue(label: "kis.redis")
    private let lock = NSLock()
    private var redis: RedisClient?
    private var redisDownSince: ContinuousClock.Instant?
    private var token: AccessToken?
    private var approvalKey: (key: String, issuedAt: Int64)?
    private var counters = CredentialCounters()
    private var lastTokenAttempt: ContinuousClock.Instant?

    public init(credentials: KISCredentials, rest: KISRestClient, redis: RedisConfiguration?,
                cacheTTL: Duration = .seconds(23 * 3600), refreshBefore: Duration = .seconds(3600),
                redisRetry: Duration = .seconds(5), logger: Logger = Logger(label: "kis.auth")) {
        self.credentials = credentials
        self.rest = rest
        self.redisConfiguration = redis
        self.cacheTTL = cacheTTL
        self.refreshBefore = refreshBefore
        self.redisRetry = redisRetry
        self.logger = logger
    }

    public var snapshot: CredentialCounters { lock.withLock { counters } }

    private var prefix: String { "kis-ingest:\(credentials.fingerprint)" }

    // MARK: Redis, off the cooperative pool

    private func withRedis<T: Sendable>(_ body: @escaping @Sendable (RedisClient) throws -> T) async -> T? {
        await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            redisQueue.async { [self] in continuation.resume(returning: redisCall(body)) }
        }
    }

    private func redisCall<T>(_ body: (RedisClient) throws -> T) -> T? {
        guard let configuration = redisConfiguration else { return nil }
        let client: RedisClient
        if let r = lock.withLock({ redis }) {
            client = r
        } else {
            if let since = lock.withLock({ redisDownSince }), ContinuousClock.now - since < redisRetry { return nil }
            do {
                client = try RedisClient(configuration: configuration)
                let wasDown = lock.withLock { () -> Bool in
                    redis = client
                    defer { redisDownSince = nil }
                    return redisDownSince != nil
                }
                if wasDown { logger.notice("Redis is reachable again; using the shared cache", metadata: ["address": "\(configuration.host):\(configuration.port)"]) }
            } catch {
                noteRedisError(error.message)
                return nil
            }
        }
        do {
            return try body(client)
        } catch {
            noteRedisError("\(error)")
            lock.withLock { redis = nil }
            return nil
        }
    }

    private func noteRedisError(_ message: String) {
        lock.withLock {
            counters.redisErrors += 1
            if redisDownSince == nil { redisDownSince = .now }
        }
        logger.warning("Redis unavailable; continuing with the in-memory credential cache", metadata: ["error": "\(message)"])
    }

    // MARK: Approval key

    /// The WebSocket approval key: cached unless `forceNew` (after OPSP0011) or older than 12 h.
    public func approvalKey(forceNew: Bool = false) async throws(AuthError) -> String {
        let now = wallClockNanoseconds()
        let maxAge = min(Int64(cacheTTL.nanosecondsDouble), 12 * 3600 * 1_000_000_000)
        if !forceNew, let cached = lock.withLock({ approvalKey }), now - cached.issuedAt < maxAge {
            lock.withLock { counters.cacheHits += 1 }
            return cached.key
        }
        let redisKey = "\(prefix):approval_key"
        if !forceNew, let stored = await withRedis({ try $0.command(["GET", redisKey]).text }), let stored {
            let parts = stored.split(separator: " ", maxSplits: 1)
            if parts.count == 2, let issued = Int64(parts[0]), now - issued < maxAge {
                lock.withLock {
                    approvalKey = (String(parts[1]), issued)
                    counters.cacheHits += 1
                }
                return String(parts[1])
            }
        }
        let key = try await rest.issueApprovalKey(credentials)
        lock.withLock {
            approvalKey = (key, now)
            counters.approvalKeysIssued += 1
        }
        logger.info("issued a WebSocket approval key", metadata: ["app_key": "\(credentials.fingerprint)"])
        let ttl = String(max(1, maxAge / 1_000_000_000))
        _ = await withRedis { try $0.command(["SET", redisKey, "\(now) \(key)", "EX", ttl]) }
        return key
    }

    // MARK: Access token

    /// The access token: cached while it has more than `refreshBefore` left; otherwise issued under the shared
    /// one-per-minute lock. Throws an `AuthError` (EGW00133 included) without retrying in a loop.
    public func accessToken() async throws(AuthError) -> AccessToken {
        let refreshNs = Int64(refreshBefore.nanosecondsDouble)
        if let t = lock.withLock({ token }), t.expiresAt - wallClockNanoseconds() > refreshNs {
            lock.withLock { counters.cacheHits += 1 }
            return t
        }
        let redisKey = "\(prefix):access_token"
        let lockKey = "\(prefix):token_lock"
        for attempt in 0..<70 {
            if let t = await cachedToken(redisKey), t.expiresAt - wallClockNanoseconds() > refreshNs {
                lock.withLock {
                    token = t
                    counters.cacheHits += 1
                }
                return t
            }
            // Whoever sets the lock issues; the lock outlives the minute, so nobody issues twice in a minute.
            let acquired = await withRedis { try $0.command(["SET", lockKey, "\(ProcessInfo.processInfo.processIdentifier)", "NX", "EX", "61"]) }
            let mayIssue: Bool
            switch acquired {
            case .some(.status("OK")): mayIssue = true
            case .some: mayIssue = false
            case .none:
                // No Redis: a local one-per-minute guard instead.
                mayIssue = lock.withLock { () -> Bool in
                    if let last = lastTokenAttempt, ContinuousClock.now - last < .seconds(61) { return false }
                    lastTokenAttempt = .now
                    return true
                }
                if !mayIssue {
                    throw AuthError(code: "rate_limited_locally", message: "a token was requested less than 61 s ago and Redis is unreachable; retry later")
                }
            }
            if mayIssue {
                do {
                    let t = try await rest.issueToken(credentials)
                    lock.withLock {
                        token = t
                        counters.tokensIssued += 1
                    }
                    logger.info("issued an access token", metadata: ["app_key": "\(credentials.fingerprint)", "expires": "\(TimeParsing.iso8601(nanoseconds: t.expiresAt))"])
                    let ttl = max(1, min(Int64(cacheTTL.nanosecondsDouble), t.expiresAt - wallClockNanoseconds()) / 1_000_000_000)
                    _ = await withRedis { try $0.command(["SET", redisKey, "\(t.expiresAt) \(t.token)", "EX", String(ttl)]) }
                    return t
                } catch {
                    if error.isRateLimited { lock.withLock { counters.rateLimited += 1 } }
                    throw error
                }
            }
            if attempt == 0 {
                logger.info("another process holds the token lock; waiting for its token in Redis", metadata: ["app_key": "\(credentials.fingerprint)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
        throw AuthError(code: "rate_limited_locally", message: "no token appeared in Redis within 70 s although another process held the issuance lock")
    }

    private func cachedToken(_ key: String) async -> AccessToken? {
        guard let text = await withRedis({ try $0.command(["GET", key]).text }), let text else { return nil }
        let parts = text.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, let expires = Int64(parts[0]) else { return nil }
        return AccessToken(token: String(parts[1]), expiresAt: expires)
    }

    /// Forgets the approval key (after OPSP0011) everywhere.
    public func invalidateApprovalKey() async {
        lock.withLock { approvalKey = nil }
        let key = "\(prefix):approval_key"
        _ = await withRedis { try $0.command(["DEL", key]) }
    }
}
