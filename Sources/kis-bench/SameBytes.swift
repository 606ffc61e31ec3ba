import ArgumentParser
import CRdKafka
import Foundation
import IngestCore

/// The replay's ceiling for its own bytes: every trade and order book of a recording, encoded by the real pipeline
/// beforehand (not timed), then produced from memory by a bare librdkafka loop written as `rdkafka_performance`
/// writes its own (a header copy per message, `rd_kafka_poll(10)` on a full queue, `poll(0)` every 1 000), with
/// ingest-replay's producer settings. Where `ingest-replay --max` and `rdkafka_performance` differ in what they
/// send (real Protobuf against one repeated pattern), this sends exactly what ingest-replay sends, so:
/// ingest-replay ÷ this is what everything ingest-replay does besides producing costs (reading, parsing, encoding,
/// our producer wrapper, and what they do to librdkafka's own work), and this ÷ `rdkafka_performance` is what the
/// data costs librdkafka and the broker.
struct SameBytes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "same-bytes",
        abstract: "Produces a recording's Kafka messages, encoded beforehand, from memory with a bare librdkafka loop.")

    @Argument(help: "The recording (SQLite).") var recording: String
    @Option(help: "Topic prefix.") var topicPrefix = ""
    @Option(help: "Messages/s to hold the loop to (0: flat out). A diagnostic: does librdkafka's work per message grow when it is fed more slowly?")
    var rate = 0.0

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        var topics = TopicConfiguration(environment: environment)
        topics.prefix = topicPrefix
        let loaded = try Loaded(recording: recording, topics: topics)
        // ingest-replay's settings: its defaults, the environment, and its 10 000-message queue.
        var kafka = KafkaConfiguration(environment: environment)
        if environment["KAFKA_PROPERTY_QUEUE_BUFFERING_MAX_MESSAGES"] == nil {
            kafka.properties["queue.buffering.max.messages"] = "10000"
        }
        let cpu0 = Self.cpuSeconds()
        let start = ContinuousClock.now
        let delivered = try Self.produce(loaded, properties: kafka.librdkafkaProperties, rate: rate)
        let seconds = (ContinuousClock.now - start).nanosecondsDouble / 1e9
        let cpu = Self.cpuSeconds() - cpu0
        guard delivered.ok == loaded.count else {
            throw BenchFailure("\(delivered.ok) of \(loaded.count) messages delivered, \(delivered.failed) failed")
        }
        print("{\"bench\":\"same-bytes\",\"messages\":\(loaded.count),\"seconds\":\(seconds),\"messages_per_s\":\(Double(loaded.count) / seconds),\"cpu_s\":\(cpu),\"load_seconds\":\(loaded.seconds),\"metadata_seconds\":\(Self.metadataSeconds),\"key_value_bytes\":\(loaded.keyValueBytes),\"thread_cpu_s\":{\(Self.threads.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ","))}}")
    }

    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }

    /// Every message's parts, back to back in one buffer.
    struct Loaded {
        struct Message {
            var topic: Int32
            var key: Int32, keyCount: Int32
            var value: Int32, valueCount: Int32
            var trID: Int32, trIDCount: Int32
            var receivedAt: Int32, receivedAtCount: Int32
            var position: Int32, positionCount: Int32
            var timestampMs: Int64
        }

        var bytes: [UInt8] = []
        var messages: [Message] = []
        var topicNames: [String] = []
        var keyValueBytes = 0
        var seconds = 0.0
        var count: Int { messages.count }

        init(recording: String, topics: TopicConfiguration) throws {
            let start = ContinuousClock.now
            let reader = try RecordingReader(path: recording)
            var pipeline = FramePipeline(topics: topics)
            var topicIndex: [String: Int32] = [:]
            bytes.reserveCapacity(512 << 20)
            func append(_ p: UnsafeRawBufferPointer) -> (Int32, Int32) {
                let at = Int32(bytes.count)
                bytes.append(contentsOf: p)
                return (at, Int32(p.count))
            }
            try reader.forEachRow { row in
                // As ingest-replay: AES keys are per connection; only inbound rows go through the pipeline.
                if row.kind == .connect { pipeline.resetKeys() }
                guard row.kind.direction == .inbound else { return }
                pipeline.process(
                    bytes: row.body, receivedAt: row.receivedAt,
                    encoded: { r in
                        let name = r.topic
                        let t = topicIndex[name] ?? {
                            topicNames.append(name)
                            topicIndex[name] = Int32(topicNames.count - 1)
                            return Int32(topicNames.count - 1)
                        }()
                        let k = append(r.key), v = append(r.value), tr = append(r.trID)
                        let rt = append(r.receivedAt), p = append(r.position)
                        keyValueBytes += r.key.count + r.value.count
                        messages.append(Message(topic: t, key: k.0, keyCount: k.1, value: v.0, valueCount: v.1,
                                                trID: tr.0, trIDCount: tr.1, receivedAt: rt.0, receivedAtCount: rt.1,
                                                position: p.0, positionCount: p.1, timestampMs: r.timestampMs))
                    },
                    other: { _ in })  // dead letters and control messages: a handful, not sent here
            }
            guard bytes.count < Int32.max else { throw BenchFailure("recording too large for this benchmark") }
            seconds = (ContinuousClock.now - start).nanosecondsDouble / 1e9
        }
    }

    /// CPU seconds of each live thread of this process by name (librdkafka's threads are still running here).
    nonisolated(unsafe) static var threads: [String: Double] = [:]
    /// How long the wait for the topics' partitions took (part of the timed run, as in ingest-replay).
    nonisolated(unsafe) static var metadataSeconds = 0.0

    static func threadCPU() -> [String: Double] {
        var out: [String: Double] = [:]
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
            guard let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let name = String(stat[stat.index(after: stat.firstIndex(of: "(")!)..<close])
            // After the name: state is field 3, utime 14 and stime 15.
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            out[name, default: 0] += (user + system) / ticks
        }
        return out
    }

    final class Counts {
        var ok = 0
        var failed = 0
    }

    static func produce(_ loaded: Loaded, properties: [String: String], rate: Double) throws -> (ok: Int, failed: Int) {
        let conf = rd_kafka_conf_new()
        var errstr = [CChar](repeating: 0, count: 512)
        for (name, value) in properties.sorted(by: { $0.key < $1.key })
        where rd_kafka_conf_set(conf, name, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
            throw BenchFailure("librdkafka property \(name): \(text(errstr))")
        }
        let counts = Counts()
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(counts).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
            let counts = Unmanaged<Counts>.fromOpaque(opaque!).takeUnretainedValue()
            if message!.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR { counts.ok += 1 } else { counts.failed += 1 }
        }
        guard let rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errstr, errstr.count) else {
            throw BenchFailure("rd_kafka_new: \(text(errstr))")
        }
        defer { rd_kafka_destroy(rk) }
        let handles = loaded.topicNames.map { rd_kafka_topic_new(rk, $0, nil) }
        defer { for h in handles { rd_kafka_topic_destroy(h) } }
        let metadataStart = ContinuousClock.now
        // As ingest-replay (awaitTopicMetadata): know every topic's partitions before the first message, or a new
        // topic waits for librdkafka's once-a-second topic scan with the queue full.
        for (h, name) in zip(handles, loaded.topicNames) {
            let deadline = ContinuousClock.now + .seconds(10)
            var known = false
            while !known {
                guard ContinuousClock.now < deadline else {
                    throw BenchFailure("Kafka brokers \(properties["bootstrap.servers"] ?? "?") did not give the partitions of \(name) within 10 s (check KAFKA_BROKERS)")
                }
                var metadata: UnsafePointer<rd_kafka_metadata_t>?
                let err = rd_kafka_metadata(rk, 0, h, &metadata, 1000)
                known = err == RD_KAFKA_RESP_ERR_NO_ERROR && metadata.map {
                    $0.pointee.topic_cnt == 1 && $0.pointee.topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR
                        && $0.pointee.topics[0].partition_cnt > 0
                } == true
                if let metadata { rd_kafka_metadata_destroy(metadata) }
                if !known { usleep(20_000) }
            }
        }
        metadataSeconds = (ContinuousClock.now - metadataStart).nanosecondsDouble / 1e9
        // The header names as C strings once (a Swift String argument would be bridged on every call).
        let names: [(UnsafePointer<CChar>, Int)] = ([KafkaHeaderName.trID, KafkaHeaderName.receivedAt, KafkaHeaderName.record] as [String]).map {
            let c = strdup($0)!
            return (UnsafePointer(c), strlen(c))
        }
        defer { for n in names { free(UnsafeMutablePointer(mutating: n.0)) } }
        withExtendedLifetime(counts) {
            loaded.bytes.withUnsafeBufferPointer { all in
                let base = UnsafeMutableRawPointer(mutating: all.baseAddress!)
                var vu = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 6)
                vu.withUnsafeMutableBufferPointer { vu in
                    let paceStart = ContinuousClock.now
                    let nanosecondsPerMessage = rate > 0 ? 1e9 / rate : 0
                    for (i, m) in loaded.messages.enumerated() {
                        if rate > 0, i & 63 == 0 {
                            // Spin (no sleep: a sleep would idle the core the loop stands for) until this message's turn.
                            let due = paceStart + .nanoseconds(Int64(Double(i) * nanosecondsPerMessage))
                            while ContinuousClock.now < due { rd_kafka_poll(rk, 0) }
                        }
                        while true {
                            let headers = rd_kafka_headers_new(3)
                            rd_kafka_header_add(headers, names[0].0, names[0].1, base + Int(m.trID), Int(m.trIDCount))
                            rd_kafka_header_add(headers, names[1].0, names[1].1, base + Int(m.receivedAt), Int(m.receivedAtCount))
                            rd_kafka_header_add(headers, names[2].0, names[2].1, base + Int(m.position), Int(m.positionCount))
                            vu[0].vtype = RD_KAFKA_VTYPE_RKT
                            vu[0].u.rkt = handles[Int(m.topic)]
                            vu[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                            vu[1].u.i = RD_KAFKA_MSG_F_COPY
                            vu[2].vtype = RD_KAFKA_VTYPE_KEY
                            vu[2].u.mem.ptr = base + Int(m.key)
                            vu[2].u.mem.size = Int(m.keyCount)
                            vu[3].vtype = RD_KAFKA_VTYPE_VALUE
                            vu[3].u.mem.ptr = base + Int(m.value)
                            vu[3].u.mem.size = Int(m.valueCount)
                            vu[4].vtype = RD_KAFKA_VTYPE_TIMESTAMP
                            vu[4].u.i64 = m.timestampMs
                            vu[5].vtype = RD_KAFKA_VTYPE_HEADERS
                            vu[5].u.headers = headers
                            guard let error = rd_kafka_produceva(rk, vu.baseAddress, 6) else { break }
                            let code = rd_kafka_error_code(error)
                            rd_kafka_error_destroy(error)
                            rd_kafka_headers_destroy(headers)
                            guard code == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                                fatalError("produce: \(String(cString: rd_kafka_err2str(code)))")
                            }
                            rd_kafka_poll(rk, 10)
                        }
                        if i % 1000 == 0 { rd_kafka_poll(rk, 0) }
                    }
                }
            }
            while counts.ok + counts.failed < loaded.count { rd_kafka_poll(rk, 1000) }
        }
        threads = threadCPU()
        return (counts.ok, counts.failed)
    }
}

/// A benchmark that could not run: printed as `Error: <message>`, without the usage text.
struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
