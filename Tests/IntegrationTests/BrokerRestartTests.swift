import Foundation
import IngestCore
import SwiftProtobuf
import Testing

/// A tansu broker of the test's own (memory storage) on a free port, killed and restarted at will.
final class PrivateBroker: @unchecked Sendable {
    let port: Int
    let log: URL
    private(set) var process: Background?

    init(in dir: URL) throws {
        port = try freePort()
        log = dir.appendingPathComponent("broker-\(port).log")
        try start()
    }

    var brokers: String { "127.0.0.1:\(port)" }

    func start() throws {
        let tansu = ProcessInfo.processInfo.environment["KIS_TANSU"]
            ?? Binaries.repositoryRoot.appendingPathComponent(".deps/bin/tansu").path
        process = try Background(URL(fileURLWithPath: tansu), [
            "broker", "--listener-url", "tcp://127.0.0.1:\(port)", "--advertised-listener-url", "tcp://127.0.0.1:\(port)",
            "--storage-engine", "memory://tansu/",
        ], log: log)
        for _ in 0..<100 {
            if tcpPortOpen(port) { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        Issue.record("tansu did not start on \(port): \(process?.output ?? "")")
    }

    func kill() { process?.stop(signal: SIGKILL) }

    /// Restarts the broker while `client` is paused (SIGSTOP) and recreates `topics` with their old partition counts
    /// before the client resumes. A memory broker forgets its topics, and tansu silently accepts (and loses) produce
    /// requests for topics it does not know, which a real Kafka cluster, whose topics outlive a restart, never sees.
    func restart(topics: [(String, Int)], pausing client: Process) throws {
        sendSignal(client.processIdentifier, SIGSTOP)
        defer { sendSignal(client.processIdentifier, SIGCONT) }
        try start()
        let admin = try KafkaProducer(configuration: KafkaConfiguration(brokers: brokers))
        try admin.createTopics(topics.map { (name: $0.0, partitions: $0.1) })
        admin.close(timeout: .seconds(1))
    }

    /// Partition counts of `topics` on the running broker.
    func partitions(_ topics: [String]) throws -> [(String, Int)] {
        let consumer = try KafkaConsumer(brokers: brokers)
        return try topics.map { ($0, try consumer.partitionCount($0)) }
    }

    deinit { process?.stop(signal: SIGKILL) }
}

func sendSignal(_ pid: Int32, _ signal: Int32) { kill(pid, signal) }

/// `true` when something accepts TCP connections on 127.0.0.1:`port`.
func tcpPortOpen(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// Reads topics continuously from the beginning, on a thread of its own, until stopped. Across a broker restart the
/// test uses two: one for the broker's first life, one from the beginning of its second (a memory broker starts
/// empty, and tansu answers fetches beyond its new end with nothing rather than OFFSET_OUT_OF_RANGE).
final class ContinuousConsumer: @unchecked Sendable {
    private let lock = NSLock()
    private var records: [ConsumedRecord] = []
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    /// Waits (up to 30 s) until every topic exists, then starts reading.
    init(brokers: String, topics: [String]) throws {
        let consumer = UncheckedBox(try KafkaConsumer(brokers: brokers))
        for _ in 0..<300 {
            if topics.allSatisfy({ ((try? consumer.value.partitionCount($0, timeout: .seconds(1))) ?? 0) > 0 }) { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        try consumer.value.assignFromBeginning(topics)
        Thread.detachNewThread { [self] in
            let consumer = consumer.value
            while lock.withLock({ running }) {
                if let r = try? consumer.poll(timeout: .milliseconds(100)) { lock.withLock { records.append(r) } }
            }
            withExtendedLifetime(consumer) {}
            done.signal()
        }
    }

    var count: Int { lock.withLock { records.count } }
    var all: [ConsumedRecord] { lock.withLock { records } }

    func stop() {
        let wasRunning = lock.withLock { () -> Bool in
            defer { running = false }
            return running
        }
        if wasRunning { done.wait() }
    }

    deinit { stop() }
}

/// Moves a value that is used by one thread at a time across an isolation boundary.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// What a metrics endpoint says about the producer.
func producerCounters(_ port: Int) async -> (enqueued: Int, delivered: Int)? {
    guard let body = try? await HTTPClient.post(try Endpoint("http://127.0.0.1:\(port)"), path: "/metrics", json: "").body else { return nil }
    func value(_ name: String) -> Int? {
        body.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last!) }.map { Int($0) }
    }
    guard let e = value("kis_ingest_kafka_enqueued_total"), let d = value("kis_ingest_kafka_delivered_total") else { return nil }
    return (e, d)
}

/// Trades plus books a daemon published so far (`tick_count` + `orderbook_count`).
func publishedMarketMessages(_ port: Int) async -> Int? {
    guard let body = try? await HTTPClient.post(try Endpoint("http://127.0.0.1:\(port)"), path: "/metrics", json: "").body else { return nil }
    let values = body.split(separator: "\n").filter { $0.hasPrefix("tick_count ") || $0.hasPrefix("orderbook_count ") }
        .compactMap { Double($0.split(separator: " ").last!) }
    return values.count == 2 ? Int(values.reduce(0, +)) : nil
}

/// Checks what a consumer saw across a broker restart against what the recording holds: the same messages (topic,
/// key, value; multiplicity kept), none twice, none missing, and per symbol in receive order.
func checkExactlyOnce(_ seen: [ConsumedRecord], expected: [ConsumedRecord], label: String) -> String {
    func identity(_ r: ConsumedRecord) -> String { "\(r.topic.split(separator: ".").suffix(2).joined(separator: "."))|\(r.key)|\(r.value)" }
    var counts: [String: Int] = [:]
    for r in seen { counts[identity(r), default: 0] += 1 }
    var expectedCounts: [String: Int] = [:]
    for r in expected { expectedCounts[identity(r), default: 0] += 1 }
    let duplicates = counts.reduce(0) { $0 + max(0, $1.value - (expectedCounts[$1.key] ?? 0)) }
    let missing = expectedCounts.reduce(0) { $0 + max(0, $1.value - (counts[$1.key] ?? 0)) }
    // Per topic and key, receive times never go backwards in consumption order.
    var last: [String: Int64] = [:]
    var outOfOrder = 0
    for r in seen {
        let k = "\(r.topic)|\(r.key)"
        let t = Int64(r.header("recv_time_ns") ?? "") ?? 0
        if let previous = last[k], t < previous { outOfOrder += 1 }
        last[k] = t
    }
    #expect(seen.count == expected.count, "\(label): \(seen.count) consumed, \(expected.count) expected")
    #expect(duplicates == 0, "\(label): \(duplicates) duplicates or unexpected messages")
    #expect(missing == 0, "\(label): \(missing) missing")
    #expect(outOfOrder == 0, "\(label): per-symbol order")
    return "\(label): \(expected.count) expected, \(seen.count) consumed, \(duplicates) duplicates, \(missing) missing, \(outOfOrder) out of order"
}

@Suite(.serialized) struct BrokerRestartTests {
    /// The Kafka-protocol broker is killed (SIGKILL) while `ingestd` ingests from serve mode, stays down while frames
    /// keep coming, and restarts empty (memory storage). A consumer that reads continuously across the restart sees
    /// every message of the recording exactly once, in per-symbol order.
    ///
    /// Honest limits, by design of the test: a memory broker loses whatever it held when killed, so the kill is
    /// placed where everything the daemon enqueued has been acknowledged and consumed (serve's `silence` fault makes
    /// that instant; frames flow again while the broker is down). And tansu does not accept the idempotent
    /// producer's epoch bump after losing its producer state (it answers UNKNOWN_PRODUCER_ID forever), so this test
    /// turns idempotence off and keeps order with one request in flight, as a non-idempotent producer must.
    @Test func ingestdSurvivesABrokerRestart() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let broker = try PrivateBroker(in: dir)
        let serve = try ServeProcess(fixtureSession, ["--speed", "10"], in: dir)
        let prefix = LocalServices.uniquePrefix("brokerkill")
        let metricsPort = try freePort()
        var env = try daemonEnvironment(serve: serve, appKey: "PSbrokerkill\(UUID().uuidString.prefix(4))", prefix: prefix, extra: [
            "KAFKA_BROKERS": broker.brokers, "METRICS_ADDRESS": "127.0.0.1:\(metricsPort)", "KIS_HEARTBEAT_INTERVAL": "60s",
            "KAFKA_PROPERTY_ENABLE_IDEMPOTENCE": "false", "KAFKA_PROPERTY_MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION": "1",
            "KAFKA_PROPERTY_RECONNECT_BACKOFF_MAX_MS": "500",
        ])
        env["LOG_LEVEL"] = "notice"
        let daemon = try Background(try Binaries.url("ingestd"), [], environment: env, log: dir.appendingPathComponent("ingestd.log"))
        let topics = [prefix + "market.tick", prefix + "market.orderbook"]
        #expect(try await waitUntil(30) { (await producerCounters(metricsPort)?.delivered ?? 0) > 300 }, "\(daemon.output)")
        let consumer = try ContinuousConsumer(brokers: broker.brokers, topics: topics)
        let layout = try broker.partitions(topics)
        try await serve.fault("silence", seconds: 4)
        // Quiet: nothing in flight, and the consumer has every trade and book the daemon published, on two polls in a
        // row with nothing published in between (one poll could fall between a produce and the next metrics snapshot).
        var lastQuiet: Int?
        let quiet = try await waitUntil(4) {
            guard let c = await producerCounters(metricsPort), let published = await publishedMarketMessages(metricsPort),
                c.enqueued == c.delivered, consumer.count == published
            else {
                lastQuiet = nil
                return false
            }
            defer { lastQuiet = published }
            return lastQuiet == published
        }
        let countersAtQuiet = await producerCounters(metricsPort)
        try #require(quiet, "no quiet moment: \(String(describing: countersAtQuiet)) consumed \(consumer.count)")
        let before = consumer.count
        let killedAt = ContinuousClock.now
        broker.kill()
        consumer.stop()
        // Frames keep coming while the broker is down: the producer queues them.
        let queued = try await waitUntil(20) {
            guard let c = await producerCounters(metricsPort) else { return false }
            return c.enqueued - c.delivered > 200
        }
        #expect(queued, "frames did not resume while the broker was down")
        let downFor = ContinuousClock.now - killedAt
        try broker.restart(topics: layout, pausing: daemon.process)
        let restartedAt = ContinuousClock.now
        let second = try ContinuousConsumer(brokers: broker.brokers, topics: topics)
        #expect(try await waitUntil(60) { try await serve.status()["done"] as? Bool == true }, "serve did not finish")
        let caughtUp = try await waitUntil(60) {
            guard let c = await producerCounters(metricsPort), let published = await publishedMarketMessages(metricsPort) else { return false }
            return c.enqueued == c.delivered && consumer.count + second.count >= published
        }
        let countersAfter = await producerCounters(metricsPort)
        #expect(caughtUp, "the producer did not catch up: \(String(describing: countersAfter))")
        let recovered = ContinuousClock.now - restartedAt
        try await Task.sleep(for: .seconds(2))
        #expect(daemon.stop() == 0, "\(daemon.output)")
        second.stop()
        let seen = consumer.all + second.all

        let replayPrefix = LocalServices.uniquePrefix("brokerkill-replay")
        let replay = try Binaries.run(try Binaries.url("ingest-replay"), [
            fixtureSession, "--max", "--tr-ids", "H0STCNT0,H0STASP0", "--topic-prefix", replayPrefix,
        ], environment: ["KAFKA_BROKERS": try LocalServices.kafkaBrokers])
        #expect(replay.status == 0, "\(replay.stderr)")
        let expected = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers)
            .readAll([replayPrefix + "market.tick", replayPrefix + "market.orderbook"], idle: .seconds(3))
        // Live order books carry today's date; compare them by time of day, as liveEqualsReplay does.
        func normalized(_ records: [ConsumedRecord]) throws -> [ConsumedRecord] {
            try records.map { r in
                guard r.topic.hasSuffix("market.orderbook") else { return r }
                var book = try OrderBook(serializedBytes: r.value)
                book.timestamp = book.timestamp % 86_400_000_000_000
                var copy = r
                copy.value = try book.serializedBytes()
                return copy
            }
        }
        let summary = checkExactlyOnce(try normalized(seen), expected: try normalized(expected), label: "ingestd")
        print("broker restart under ingestd: \(summary); \(before) consumed before the kill, broker down \(downFor), producer caught up \(recovered) after the restart")
    }

    /// The same for `ingest-replay --speed 1`: the broker is killed at a moment when everything enqueued was
    /// acknowledged and consumed, stays down for a few seconds while the replay keeps producing, and comes back.
    @Test func replaySurvivesABrokerRestart() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let broker = try PrivateBroker(in: dir)
        let prefix = LocalServices.uniquePrefix("brokerkill-rp")
        let metricsPort = try freePort()
        // 60 s of recorded time at 2×: 30 s of producing.
        let extent = try RecordingReader(path: fixtureSession).extent()
        let from = String(extent.first! + 20_000_000_000), to = String(extent.first! + 80_000_000_000)
        let replay = try Background(try Binaries.url("ingest-replay"), [
            fixtureSession, "--speed", "2", "--from", from, "--to", to, "--tr-ids", "H0STCNT0,H0STASP0", "--topic-prefix", prefix,
            "--metrics-address", "127.0.0.1:\(metricsPort)",
        ], environment: [
            "KAFKA_BROKERS": broker.brokers, "KAFKA_PROPERTY_ENABLE_IDEMPOTENCE": "false",
            "KAFKA_PROPERTY_MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION": "1", "KAFKA_PROPERTY_RECONNECT_BACKOFF_MAX_MS": "500",
        ], log: dir.appendingPathComponent("replay.log"))
        let topics = [prefix + "market.tick", prefix + "market.orderbook"]
        #expect(try await waitUntil(30) { (await producerCounters(metricsPort)?.delivered ?? 0) > 100 }, "\(replay.output)")
        let consumer = try ContinuousConsumer(brokers: broker.brokers, topics: topics)
        let layout = try broker.partitions(topics)
        let quiet = try await waitUntil(10) {
            guard let c = await producerCounters(metricsPort) else { return false }
            return c.enqueued == c.delivered && consumer.count == c.delivered
        }
        try #require(quiet, "no quiet moment")
        let before = consumer.count
        broker.kill()
        consumer.stop()
        #expect(try await waitUntil(20) {
            guard let c = await producerCounters(metricsPort) else { return false }
            return c.enqueued - c.delivered > 100
        }, "replay did not keep producing while the broker was down")
        try broker.restart(topics: layout, pausing: replay.process)
        let second = try ContinuousConsumer(brokers: broker.brokers, topics: topics)
        replay.process.waitUntilExit()
        #expect(replay.process.terminationStatus == 0, "\(replay.output)")
        #expect(try await waitUntil(10) { second.count >= 100 })
        try await Task.sleep(for: .seconds(3))
        second.stop()
        let seen = consumer.all + second.all

        let referencePrefix = LocalServices.uniquePrefix("brokerkill-ref")
        let reference = try Binaries.run(try Binaries.url("ingest-replay"), [
            fixtureSession, "--max", "--from", from, "--to", to, "--tr-ids", "H0STCNT0,H0STASP0", "--topic-prefix", referencePrefix,
        ], environment: ["KAFKA_BROKERS": try LocalServices.kafkaBrokers])
        #expect(reference.status == 0, "\(reference.stderr)")
        let expected = try KafkaConsumer(brokers: try LocalServices.kafkaBrokers)
            .readAll([referencePrefix + "market.tick", referencePrefix + "market.orderbook"], idle: .seconds(3))
        // Replays are deterministic: values are compared byte for byte.
        let summary = checkExactlyOnce(seen, expected: expected, label: "ingest-replay")
        print("broker restart under ingest-replay: \(summary); \(before) consumed before the kill")
    }
}
