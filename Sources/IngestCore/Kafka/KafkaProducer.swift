internal import CRdKafka
import Foundation
public import Logging
import Synchronization

/// What the producer has done so far, from librdkafka's delivery reports.
public struct DeliveryCounters: Sendable, Equatable {
    /// Messages handed to librdkafka.
    public var enqueued = 0
    /// Messages the broker acknowledged.
    public var delivered = 0
    /// Messages librdkafka gave up on, by error name.
    public var failedByError: [String: Int] = [:]
    /// Messages refused at enqueue because the local queue was full.
    public var queueFull = 0

    public var failed: Int { failedByError.values.reduce(0, +) }
}

/// The Kafka producer: a thin, thread-safe wrapper around a librdkafka producer handle.
///
/// `send` never blocks. Delivery reports, errors and logs are served by a dedicated poll thread, or, with
/// `pollsOnOwnThread: false`, by whoever calls `poll` (the thread that produces: then the messages librdkafka
/// allocates in `send` are freed on the same thread, which keeps `malloc` on its per-thread fast path — measured: the
/// cross-thread frees cost about 40 % of the live pipeline thread at 50 000 frames/s). Call `close` to flush with a
/// timeout and release the handle.
public final class KafkaProducer: Sendable {
    private let handle: RdKafkaHandle
    private let sink: ProducerSink
    private let pollThreadDone = DispatchSemaphore(value: 0)
    public let configuration: KafkaConfiguration
    /// `false`: the owner must call `poll` regularly (at least every 100 ms, and often while messages are outstanding).
    public let pollsOnOwnThread: Bool
    /// `queue.buffering.max.messages` as librdkafka took it: how many messages may wait in the local queue.
    public let queueCapacity: Int
    /// Topic handles made in `init` for the topics named there, for the producer's life: a send to one of them skips
    /// librdkafka's lookup by name (a write lock on the client, a scan of its topics and a reference taken and
    /// dropped, per message), and they let `awaitTopicMetadata` learn their partitions before the first send.
    private let preparedTopics: [PreparedTopic]

    /// Creates the producer; throws a `KafkaError` for an old librdkafka or an invalid property (naming it).
    /// `backgroundThreads` applies to librdkafka's own threads (from their start, through an `on_thread_start`
    /// interceptor) and to the poll thread. `topics`: the topics this producer will mostly send to (a handle is made
    /// for each; sends to other topics work too, looked up by name).
    public init(
        configuration: KafkaConfiguration, logger: Logger = Logger(label: "kis.kafka"), pollsOnOwnThread: Bool = true,
        backgroundThreads: BackgroundThreads = .normal, topics: [String] = []
    ) throws(KafkaError) {
        try RdKafkaVersion.checkLoaded()
        self.configuration = configuration
        let conf = rd_kafka_conf_new()!
        var errorBuffer = [CChar](repeating: 0, count: 512)
        for (name, value) in configuration.librdkafkaProperties.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_conf_set(conf, name, value, &errorBuffer, errorBuffer.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let reason = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                let shown = KafkaConfiguration.isSecret(name) ? "***" : value
                throw KafkaError(
                    code: "configuration",
                    message: "Kafka property \(name)=\(shown) is invalid: \(reason). Fix KAFKA_PROPERTY_\(name.uppercased().replacingOccurrences(of: "_", with: "__").replacingOccurrences(of: ".", with: "_")) or KAFKA_BROKERS.")
            }
        }
        // Logs go to the poll thread's queue instead of librdkafka's internal threads.
        rd_kafka_conf_set(conf, "log.queue", "true", &errorBuffer, errorBuffer.count)
        if backgroundThreads == .batch {
            // Interceptors on the configuration are added to the client by an on_new interceptor (whose error, if
            // any, librdkafka logs).
            let added = rd_kafka_conf_interceptor_add_on_new(conf, "kis.threads", { rk, _, _, _, _ in
                rd_kafka_interceptor_add_on_thread_start(rk, "kis.threads", { _, _, _, _ in
                    BackgroundThreads.batch.enterCurrentThread(name: nil)  // librdkafka names its threads itself
                    return RD_KAFKA_RESP_ERR_NO_ERROR
                }, nil)
            }, nil)
            if added != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.warning(
                    "librdkafka's threads keep the default scheduling policy: \(String(cString: rd_kafka_err2str(added)))",
                    metadata: ["setting": "KIS_BACKGROUND_THREADS=batch"])
            }
        }
        let sink = ProducerSink(logger: logger)
        let opaque = Unmanaged.passRetained(sink).toOpaque()
        rd_kafka_conf_set_opaque(conf, opaque)
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
            guard let message, let opaque else { return }
            // The producer holds the sink for the client's life: no reference counting per message.
            Unmanaged<ProducerSink>.fromOpaque(opaque)._withUnsafeGuaranteedRef { $0.delivered(message) }
        }
        rd_kafka_conf_set_error_cb(conf) { rk, err, reason, opaque in
            guard let opaque else { return }
            let code = rd_kafka_resp_err_t(rawValue: err)
            let fatal = code == RD_KAFKA_RESP_ERR__FATAL
            Unmanaged<ProducerSink>.fromOpaque(opaque).takeUnretainedValue()
                .error(code, reason.map { String(cString: $0) } ?? "", fatal: fatal)
        }
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, message in
            guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
            Unmanaged<ProducerSink>.fromOpaque(opaque).takeUnretainedValue()
                .log(level: level, facility: facility.map { String(cString: $0) } ?? "",
                     message: message.map { String(cString: $0) } ?? "")
        }
        guard let rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errorBuffer, errorBuffer.count) else {
            rd_kafka_conf_destroy(conf)
            Unmanaged<ProducerSink>.fromOpaque(opaque).release()
            let reason = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw KafkaError(code: "create", message: "could not create the Kafka producer: \(reason)")
        }
        rd_kafka_set_log_queue(rk, nil)
        var prepared: [PreparedTopic] = []
        for name in Set(topics).sorted() {
            guard let rkt = rd_kafka_topic_new(rk, name, nil) else {
                let reason = String(cString: rd_kafka_err2str(rd_kafka_last_error()))
                for t in prepared { t.destroy() }
                rd_kafka_destroy(rk)
                Unmanaged<ProducerSink>.fromOpaque(opaque).release()
                throw KafkaError(
                    code: "topic", message: "Kafka topic \"\(name)\" cannot be used: \(reason). Fix the KAFKA_TOPIC_* settings.")
            }
            prepared.append(PreparedTopic(name: name, handle: rkt))
        }
        preparedTopics = prepared
        var capacityText = [CChar](repeating: 0, count: 32)
        var capacitySize = capacityText.count
        let capacity: Int? =
            rd_kafka_conf_get(rd_kafka_conf(rk), "queue.buffering.max.messages", &capacityText, &capacitySize)
                == RD_KAFKA_CONF_OK
            ? capacityText.withUnsafeBufferPointer { Int(String(cString: $0.baseAddress!)) } : nil
        if let capacity {
            queueCapacity = capacity
        } else {
            // librdkafka's documented default; only the inline-processing threshold depends on it.
            queueCapacity = 100_000
            logger.warning(
                "could not read queue.buffering.max.messages back from librdkafka; assuming its default, 100000",
                metadata: ["effect": "inline processing stops at 50000 outstanding messages"])
        }
        self.handle = RdKafkaHandle(pointer: rk, opaque: opaque)
        self.sink = sink
        self.pollsOnOwnThread = pollsOnOwnThread
        guard pollsOnOwnThread else {
            sink.polling.store(false, ordering: .relaxed)
            return
        }
        let thread = Thread { [handle, sink, pollThreadDone] in
            backgroundThreads.enterCurrentThread(name: "rdkafka-poll")
            while sink.polling.load(ordering: .relaxed) { rd_kafka_poll(handle.pointer, 100) }
            pollThreadDone.signal()
        }
        thread.start()
    }

    deinit {
        if sink.polling.exchange(false, ordering: .relaxed) { pollThreadDone.wait() }
        for t in preparedTopics { t.destroy() }
        rd_kafka_destroy(handle.pointer)
        Unmanaged<ProducerSink>.fromOpaque(handle.opaque).release()
    }

    /// Enqueues one message without blocking. Throws a `KafkaError` (`isQueueFull` when the local queue is full).
    public func send(_ record: KafkaRecord) throws(KafkaError) {
        let headers = rd_kafka_headers_new(record.headers.count)
        for h in record.headers {
            _ = h.value.withUnsafeBytes { rd_kafka_header_add(headers, h.name, -1, $0.baseAddress, $0.count) }
        }
        let error = record.key.withUnsafeBytes { k in
            record.value.withUnsafeBytes { v in
                produce(topic: record.topic, key: k, value: v, timestampMs: record.timestampMs, headers: headers)
            }
        }
        guard let error else {
            sink.enqueued.add(1, ordering: .relaxed)
            return
        }
        try fail(error, headers: headers, topic: record.topic)
    }

    /// Enqueues one hot-path record (copied by librdkafka) without blocking. Throws a `KafkaError` (`isQueueFull`
    /// when the local queue is full).
    public func send(_ record: EncodedRecord) throws(KafkaError) {
        let headers = rd_kafka_headers_new(3)
        rd_kafka_header_add(headers, "tr_id", 5, record.trID.baseAddress, record.trID.count)
        rd_kafka_header_add(headers, "recv_time_ns", 12, record.receivedAt.baseAddress, record.receivedAt.count)
        rd_kafka_header_add(headers, "record", 6, record.position.baseAddress, record.position.count)
        let error = produce(
            topicName: record.topicName, key: record.key, value: record.value, timestampMs: record.timestampMs,
            headers: headers)
        guard let error else {
            sink.enqueued.add(1, ordering: .relaxed)
            return
        }
        try fail(error, headers: headers, topic: record.topic)
    }

    /// `rd_kafka_produceva` with the value/key copied; the headers are owned by librdkafka on success.
    @inline(__always)
    private func produce(
        topic: String, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, timestampMs: Int64,
        headers: OpaquePointer?
    ) -> OpaquePointer? {
        topic.withCString { topicName in
            produce(topicName: topicName, key: key, value: value, timestampMs: timestampMs, headers: headers)
        }
    }

    @inline(__always)
    private func produce(
        topicName: UnsafePointer<CChar>, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
        timestampMs: Int64, headers: OpaquePointer?
    ) -> OpaquePointer? {
        withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 6) { vu in
            // A trivial C type: each entry's type and the union member it names are set below, and librdkafka reads
            // nothing else (zeroing the six 72-byte entries first measured 2.7 % of the replay's producing thread).
            if let rkt = preparedTopic(topicName) {
                vu[0].vtype = RD_KAFKA_VTYPE_RKT
                vu[0].u.rkt = rkt
            } else {
                vu[0].vtype = RD_KAFKA_VTYPE_TOPIC
                vu[0].u.cstr = topicName
            }
            vu[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS
            vu[1].u.i = RD_KAFKA_MSG_F_COPY
            vu[2].vtype = RD_KAFKA_VTYPE_KEY
            vu[2].u.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress)
            vu[2].u.mem.size = key.count
            vu[3].vtype = RD_KAFKA_VTYPE_VALUE
            vu[3].u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
            vu[3].u.mem.size = value.count
            vu[4].vtype = RD_KAFKA_VTYPE_TIMESTAMP
            vu[4].u.i64 = timestampMs
            vu[5].vtype = RD_KAFKA_VTYPE_HEADERS
            vu[5].u.headers = headers
            return rd_kafka_produceva(handle.pointer, vu.baseAddress, 6)
        }
    }

    /// The handle made in `init` for `name`, if any: a byte compare of at most a few short names.
    @inline(__always)
    private func preparedTopic(_ name: UnsafePointer<CChar>) -> OpaquePointer? {
        for t in preparedTopics where strcmp(t.cName, name) == 0 { return t.handle }
        return nil
    }

    /// Asks the brokers for the partitions of the topics named in `init` (creating them where the broker
    /// auto-creates topics), waiting at most `timeout`; `true` when every one of them has its partitions.
    ///
    /// Without it, librdkafka learns a new topic's partitions on its next topic scan, up to a second after the first
    /// send, and holds the messages meanwhile: a batch tool that fills its local queue at once would start by waiting.
    @discardableResult
    public func awaitTopicMetadata(timeout: Duration) -> Bool {
        guard !preparedTopics.isEmpty else { return true }
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return false }
            var metadata: UnsafePointer<rd_kafka_metadata>?
            // all_topics 0 and no topic handle: the topics this client knows, i.e. at least the prepared ones.
            let err = rd_kafka_metadata(handle.pointer, 0, nil, &metadata, max(1, left.milliseconds32))
            if let metadata {
                var ready = Set<String>()
                let topics = UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
                for t in topics where t.err == RD_KAFKA_RESP_ERR_NO_ERROR && t.partition_cnt > 0 {
                    ready.insert(String(cString: t.topic))
                }
                rd_kafka_metadata_destroy(metadata)
                if preparedTopics.allSatisfy({ ready.contains($0.name) }) { return true }
            } else if err == RD_KAFKA_RESP_ERR__TIMED_OUT {
                return false
            }
            // A topic being created, or no broker up yet: ask again shortly.
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    private func fail(_ error: OpaquePointer, headers: OpaquePointer?, topic: String) throws(KafkaError) -> Never {
        rd_kafka_headers_destroy(headers)
        let code = rd_kafka_error_code(error)
        rd_kafka_error_destroy(error)
        if code == RD_KAFKA_RESP_ERR__QUEUE_FULL { sink.queueFull.add(1, ordering: .relaxed) }
        throw KafkaError(code, "could not enqueue a message for \(topic)")
    }

    /// Enqueues one message, waiting while the local queue is full (for replay and batch tools, never the live
    /// socket path). Throws for any other error.
    public func sendWaiting(_ record: KafkaRecord) throws(KafkaError) {
        try waitingForRoom { () throws(KafkaError) in try send(record) }
    }

    /// `sendWaiting` for a hot-path record.
    public func sendWaiting(_ record: EncodedRecord) throws(KafkaError) {
        try waitingForRoom { () throws(KafkaError) in try send(record) }
    }

    private func waitingForRoom(_ attempt: () throws(KafkaError) -> Void) throws(KafkaError) {
        while true {
            do {
                try attempt()
                return
            } catch {
                guard error.isQueueFull else { throw error }
                waitForRoom()
            }
        }
    }

    /// The local queue is full: serve delivery reports (they free room), waiting at most 1 ms for one.
    private func waitForRoom() { rd_kafka_poll(handle.pointer, 1) }

    /// Serves waiting delivery reports, errors and logs on the calling thread, waiting at most `timeoutMs` for the
    /// first one; returns how many were served. Needed when `pollsOnOwnThread` is `false`; harmless otherwise.
    @discardableResult
    public func poll(timeoutMs: Int32 = 0) -> Int { Int(rd_kafka_poll(handle.pointer, timeoutMs)) }

    /// Waits until every enqueued message is delivered or failed, at most `timeout`; returns how many are still
    /// outstanding (0 when all were settled). Blocks the calling thread.
    @discardableResult
    public func flush(timeout: Duration) -> Int {
        let ms = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        rd_kafka_flush(handle.pointer, ms)
        return Int(rd_kafka_outq_len(handle.pointer))
    }

    /// Messages enqueued but not yet delivered or failed.
    public var outstanding: Int { Int(rd_kafka_outq_len(handle.pointer)) }

    /// Delivery counters so far.
    public var counters: DeliveryCounters { sink.counters() }

    /// Time from enqueue to the broker's acknowledgement, for one delivered message in 16 (the first, the 17th, …).
    public var deliveryLatency: LatencyHistogram { sink.latency.withLock { $0 } }

    /// The most recent error librdkafka reported (broker down, authentication, …), if any.
    public var lastError: String? { sink.lastErrorText() }

    /// A fatal error (e.g. the idempotent producer lost its guarantees); the producer must be recreated.
    public var fatalError: String? {
        var buffer = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(handle.pointer, &buffer, buffer.count)
        guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// The value librdkafka actually uses for a property (after defaults and idempotence adjustments).
    public func effectiveProperty(_ name: String) -> String? {
        guard let conf = rd_kafka_conf(handle.pointer) else { return nil }
        var size = 0
        guard rd_kafka_conf_get(conf, name, nil, &size) == RD_KAFKA_CONF_OK, size > 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: size)
        guard rd_kafka_conf_get(conf, name, &buffer, &size) == RD_KAFKA_CONF_OK else { return nil }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// `true` when a broker answers a metadata request within `timeout` (blocks the caller).
    public func brokersReachable(timeout: Duration) -> Bool {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(handle.pointer, 0, nil, &metadata, timeout.milliseconds32)
        if let metadata { rd_kafka_metadata_destroy(metadata) }
        return err == RD_KAFKA_RESP_ERR_NO_ERROR
    }

    /// Creates topics (ignoring ones that exist) with the given partition counts; waits at most `timeout`.
    public func createTopics(_ topics: [(name: String, partitions: Int)], timeout: Duration = .seconds(10))
        throws(KafkaError)
    {
        try KafkaAdmin.createTopics(handle.pointer, topics, timeout: timeout)
    }

    /// Flushes for at most `timeout`, then purges what is left and stops the poll thread. Returns the number of
    /// messages that were not delivered (also counted as failed with `_PURGE_QUEUE`/`_PURGE_INFLIGHT`).
    @discardableResult
    public func close(timeout: Duration) -> Int {
        let left = flush(timeout: timeout)
        if left > 0 {
            rd_kafka_purge(handle.pointer, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
            rd_kafka_poll(handle.pointer, 0)
        }
        if sink.polling.exchange(false, ordering: .relaxed) { pollThreadDone.wait() }
        rd_kafka_poll(handle.pointer, 0)
        return left
    }
}

/// A topic handle made by `KafkaProducer.init`, with its name as a C string (`TopicName`, as the pipeline holds
/// it) for the per-message match. The handle lives as long as the producer, which destroys it before its client.
struct PreparedTopic: @unchecked Sendable {
    let topic: TopicName
    let handle: OpaquePointer

    var name: String { topic.string }
    var cName: UnsafePointer<CChar> { UnsafePointer(topic.cString) }

    init(name: String, handle: OpaquePointer) {
        topic = TopicName(name)
        self.handle = handle
    }

    func destroy() { rd_kafka_topic_destroy(handle) }
}

/// A librdkafka handle: thread-safe by librdkafka's contract, so it may cross threads.
struct RdKafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    let opaque: UnsafeMutableRawPointer
}

/// Receives librdkafka's callbacks (on the poll thread) and keeps the counters.
final class ProducerSink: Sendable {
    let polling = Atomic<Bool>(true)
    let enqueued = Atomic<Int>(0)
    let delivered = Atomic<Int>(0)
    let queueFull = Atomic<Int>(0)
    private let failures = Mutex<[String: Int]>([:])
    private let lastError = Mutex<String?>(nil)
    let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// Delivery latency of one delivered message in `latencySampling` (the first, then every 16th).
    let latency = Mutex(LatencyHistogram())
    static let latencySampling = 16

    /// One delivery report. The latency is sampled: librdkafka reads the clock for each `rd_kafka_message_latency`,
    /// and that read, the lock and the histogram update measured 8–9 % of the replay's producing thread when done
    /// for every message; one in 16 gives the same distribution.
    @inline(__always)
    func delivered(_ message: UnsafePointer<rd_kafka_message_t>) {
        let err = message.pointee.err
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            let n = delivered.add(1, ordering: .relaxed).newValue
            if n % Self.latencySampling == 1 {
                let microseconds = rd_kafka_message_latency(message)
                if microseconds >= 0 { latency.withLock { $0.record(nanoseconds: microseconds &* 1000) } }
            }
        } else {
            let name = String(cString: rd_kafka_err2name(err))
            failures.withLock { $0[name, default: 0] += 1 }
        }
    }

    func error(_ err: rd_kafka_resp_err_t, _ reason: String, fatal: Bool) {
        lastError.withLock { $0 = reason }
        if fatal {
            logger.critical("Kafka producer fatal error", metadata: ["reason": "\(reason)"])
        } else {
            logger.warning("Kafka error", metadata: ["code": "\(String(cString: rd_kafka_err2name(err)))", "reason": "\(reason)"])
        }
    }

    func log(level: Int32, facility: String, message: String) {
        let swiftLevel: Logger.Level = level <= 3 ? .error : level == 4 ? .warning : level <= 6 ? .info : .debug
        logger.log(level: swiftLevel, "librdkafka: \(message)", metadata: ["facility": "\(facility)"])
    }

    func counters() -> DeliveryCounters {
        DeliveryCounters(
            enqueued: enqueued.load(ordering: .relaxed), delivered: delivered.load(ordering: .relaxed),
            failedByError: failures.withLock { $0 }, queueFull: queueFull.load(ordering: .relaxed))
    }

    func lastErrorText() -> String? { lastError.withLock { $0 } }
}
