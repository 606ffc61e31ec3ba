import ArgumentParser
import Foundation
import IngestCore
import Logging

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a recording into Kafka through the same parser, encoder and producer as ingestd.",
        discussion: """
            Times accept ISO 8601 with a zone or nanoseconds since the epoch. Two replays of the same recording with \
            the same options produce byte-identical Kafka messages (keys, values, headers, timestamps, partitions). \
            Use --topic-prefix to replay into a sandbox namespace. A progress bar is shown on a terminal; a summary \
            always goes to standard error.
            """
    )

    @Argument(help: "Recording (files chained by rotation are followed).")
    var recording: String

    @Option(help: "Playback speed: 1 = recorded pacing, 10 = ten times faster.")
    var speed: Double?

    @Flag(help: "As fast as the pipeline allows (the default when --speed is not given).")
    var max = false

    @Option(help: "Start of the receive-time window (inclusive).")
    var from: String?

    @Option(help: "End of the receive-time window (exclusive).")
    var to: String?

    @Option(help: "Comma-separated symbols to replay (dead letters are then left out).")
    var symbols: String?

    @Option(help: "Comma-separated tr_ids to replay (acks always pass).")
    var trIds: String?

    @Option(help: "Prefix for every topic, e.g. replay. (overrides KAFKA_TOPIC_PREFIX).")
    var topicPrefix: String?

    @Option(help: "Also write the summary as JSON to this file.")
    var summaryJson: String?

    @Flag(help: "Decode only, publish nothing (the summary still counts what would be published).")
    var dryRun = false

    @Option(help: "Serve /metrics, /healthz and /readyz on HOST:PORT while replaying (off unless given).")
    var metricsAddress: String?

    func validate() throws {
        if let speed, speed <= 0 || !speed.isFinite { throw ValidationError("--speed must be a positive number, got \(speed)") }
        if speed != nil && max { throw ValidationError("--speed and --max exclude each other") }
        if let metricsAddress, HTTPEndpointServer.parseAddress(metricsAddress) == nil {
            throw ValidationError("--metrics-address \"\(metricsAddress)\" is not HOST:PORT (example: 127.0.0.1:9466)")
        }
    }

    func run() throws {
        ProgramSupport.bootstrapLogging()
        ProgramSupport.requireSupportedLibrdkafka()
        let environment = ProcessInfo.processInfo.environment
        // Memory: replay flat out allocates on four threads (reader, pipeline, librdkafka's broker and main threads),
        // and glibc's default of one arena per thread keeps each one's freed memory. Two arenas measured 58–62 MB peak
        // RSS against 63–65 MB, at the same speed. MALLOC_ARENA_MAX, when set, wins.
        ProgramSupport.limitMallocArenas(to: 2, environment: environment)
        func time(_ name: String, _ text: String?) throws -> Int64? {
            guard let text else { return nil }
            guard let ns = TimeParsing.nanoseconds(text) else {
                throw ValidationError("--\(name) \"\(text)\" is neither ns since the epoch nor ISO 8601 with a zone (e.g. 2025-07-30T09:00:00+09:00)")
            }
            return ns
        }
        var topics = TopicConfiguration(environment: environment)
        if let topicPrefix { topics.prefix = topicPrefix }
        let list = { (s: String?) in s.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) } }
        let options = ReplayOptions(speed: speed, from: try time("from", from), to: try time("to", to),
                                    symbols: list(symbols), trIDs: list(trIds), topics: topics)
        let reader: RecordingReader
        do { reader = try RecordingReader(path: recording) } catch {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
        // Flat out, this thread serves the delivery reports itself (see KafkaProducer); paced, it sleeps between
        // frames, so a poll thread keeps the reports (and /metrics) current.
        // A batch tool needs no deep local queue: 10 000 messages (20 ms at 500 000 msg/s, four linger periods) keep
        // the broker busy while bounding memory (the daemon keeps librdkafka's 100 000 to ride out broker outages).
        // Measured, replaying 1.73 M frames flat out: peak RSS 64.7 MB with 20 000, 56.5 MB with 10 000, and no
        // slower. KAFKA_PROPERTY_QUEUE_BUFFERING_MAX_MESSAGES wins.
        var kafka = KafkaConfiguration(environment: environment)
        if environment["KAFKA_PROPERTY_QUEUE_BUFFERING_MAX_MESSAGES"] == nil {
            kafka.properties["queue.buffering.max.messages"] = "10000"
        }
        let producer = dryRun ? nil : try KafkaProducer(configuration: kafka,
                                                         logger: Logger(label: "kis.kafka"), pollsOnOwnThread: speed != nil,
                                                         topics: topics.allTopics)
        // Learn the topics' partitions before the first frame: otherwise librdkafka asks on its next topic scan, up to
        // a second later, and a full local queue waits for it (measured: about 1 s of a 4 s replay with both cores
        // idle). The brokers not answering is not fatal here: librdkafka keeps trying and the messages wait.
        if let producer, !producer.awaitTopicMetadata(timeout: .seconds(10)) {
            FileHandle.standardError.write(Data(("warning: Kafka brokers \(producer.configuration.brokers) did not give the partitions of \(topics.allTopics.joined(separator: ", ")) within 10 s"
                + (producer.lastError.map { " (\($0))" } ?? "")
                + "; replaying anyway, messages wait in the producer until the brokers answer (check KAFKA_BROKERS)\n").utf8))
        }
        let polling = producer.map { !$0.pollsOnOwnThread } ?? false
        var sent = 0
        let bar = ProgressBar(enabled: isatty(STDERR_FILENO) == 1)
        let metrics = ReplayMetrics(producer: producer, topics: topics)
        var endpoints: HTTPEndpointServer?
        if let address = metricsAddress.flatMap(HTTPEndpointServer.parseAddress) {
            do {
                endpoints = try HTTPEndpointServer.startBlocking(
                    host: address.host, port: address.port,
                    handler: OperationalEndpoints.handler(metrics: metrics.metricsText, readiness: metrics.readiness))
                FileHandle.standardError.write(Data("replay: metrics and health on http://\(address.host):\(endpoints!.port)/metrics\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
                throw ExitCode(1)
            }
        }
        var bytes = 0
        var payloadBytes = 0
        // Message sizes only for --summary-json (scripts/bench sizes rdkafka_performance's messages from them).
        let sizing = summaryJson != nil
        let summary = try Replayer(reader: reader, options: options).run(
            progress: { bar.update($0); metrics.update($0) },
            encoded: { record in
                if sizing {
                    payloadBytes += record.key.count + record.value.count
                    bytes += record.key.count + record.value.count + record.trID.count + record.receivedAt.count
                        + record.position.count + KafkaHeaderName.marketHeaderNameBytes
                }
                if let producer {
                    try producer.sendWaiting(record)
                    sent &+= 1
                    if polling && sent & 63 == 0 { producer.poll() }
                }
            },
            other: { output in
                guard let record = KafkaRecord(output) else { return }
                if sizing {
                    payloadBytes += record.key.count + record.value.count
                    bytes += record.key.count + record.value.count + record.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.count }
                }
                if let producer { try producer.sendWaiting(record) }
            })
        bar.finish()
        metrics.finish(summary)
        var undelivered = 0
        var lines: [String] = []
        if let producer {
            undelivered = producer.close(timeout: .seconds(60))
            let c = producer.counters
            lines.append("kafka: \(c.delivered) delivered to \(producer.configuration.brokers), \(c.failed) failed"
                + (c.failedByError.isEmpty ? "" : " (" + c.failedByError.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")")
                + (producer.lastError.map { "; last broker error: \($0)" } ?? ""))
            undelivered = Swift.max(undelivered, c.failed)
        }
        lines.insert(contentsOf: Self.describe(summary), at: 0)
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        if let summaryJson {
            var json = Self.json(summary, delivered: producer?.counters.delivered, failed: producer?.counters.failed)
            json.insert(contentsOf: ",\"message_bytes\":\(bytes),\"key_value_bytes\":\(payloadBytes)", at: json.index(json.endIndex, offsetBy: -2))
            FileManager.default.createFile(atPath: summaryJson, contents: Data(json.utf8))
        }
        endpoints?.stopBlocking()
        if undelivered > 0 { throw ExitCode(1) }
    }

    static func describe(_ s: ReplaySummary) -> [String] {
        var lines = ["replay: \(s.rowsReplayed) frames in \(String(format: "%.3f", s.wallSeconds)) s"
            + " (\(String(format: "%.0f", Double(s.rowsReplayed) / Swift.max(s.wallSeconds, 1e-9))) frames/s, "
            + "\(String(format: "%.0f", Double(s.messages) / Swift.max(s.wallSeconds, 1e-9))) messages/s)"]
        if let a = s.firstRecorded, let b = s.lastRecorded {
            lines.append("  recorded time \(TimeParsing.iso8601(nanoseconds: a)) → \(TimeParsing.iso8601(nanoseconds: b))")
        }
        for (topic, n) in s.messagesByTopic.sorted(by: { $0.key < $1.key }) { lines.append("  \(topic): \(n)") }
        if !s.deadLettersByReason.isEmpty {
            lines.append("  dead letters by reason: " + s.deadLettersByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if s.pipeline.noticesNotPublished > 0 { lines.append("  notices not published (no KAFKA_TOPIC_NOTICE): \(s.pipeline.noticesNotPublished)") }
        if s.messagesFilteredOut > 0 { lines.append("  left out by --symbols: \(s.messagesFilteredOut)") }
        if let p = s.pacing {
            lines.append(String(format: "  pacing error: p50 %.3f ms, p99 %.3f ms, max %.3f ms over %d frames",
                                Double(p.p50Nanoseconds) / 1e6, Double(p.p99Nanoseconds) / 1e6, Double(p.maxNanoseconds) / 1e6, p.samples))
        }
        return lines
    }

    static func json(_ s: ReplaySummary, delivered: Int?, failed: Int?) -> String {
        func dict(_ d: [String: Int]) -> String {
            "{" + d.sorted { $0.key < $1.key }.map { "\(JSONText.quote($0.key)):\($0.value)" }.joined(separator: ",") + "}"
        }
        var parts = [
            "\"frames\":\(s.rowsReplayed)", "\"messages\":\(s.messages)", "\"wall_seconds\":\(s.wallSeconds)",
            "\"messages_by_topic\":\(dict(s.messagesByTopic))", "\"dead_letters_by_reason\":\(dict(s.deadLettersByReason))",
            "\"filtered_out\":\(s.messagesFilteredOut)",
            "\"first_recorded_ns\":\(s.firstRecorded.map(String.init) ?? "null")",
            "\"last_recorded_ns\":\(s.lastRecorded.map(String.init) ?? "null")",
        ]
        if let p = s.pacing {
            parts.append("\"pacing\":{\"samples\":\(p.samples),\"p50_ns\":\(p.p50Nanoseconds),\"p99_ns\":\(p.p99Nanoseconds),\"max_ns\":\(p.maxNanoseconds)}")
        }
        if let delivered { parts.append("\"delivered\":\(delivered)") }
        if let failed { parts.append("\"failed\":\(failed)") }
        return "{" + parts.joined(separator: ",") + "}\n"
    }
}

/// A one-line progress display on a terminal; silent otherwise.
final class ProgressBar {
    let enabled: Bool
    private var shown = false

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ p: ReplayProgress) {
        guard enabled else { return }
        let fraction = p.totalRows > 0 ? Double(p.rows) / Double(p.totalRows) : 0
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let rate = p.elapsedSeconds > 0 ? Double(p.messages) / p.elapsedSeconds : 0
        let recorded = TimeParsing.iso8601(nanoseconds: p.recordedTime).prefix(19)
        let eta = p.etaSeconds.map { String(format: "ETA %.0fs", $0) } ?? ""
        let line = String(format: "\r%@ %3.0f%% %d msgs %.0f/s at %@ %@\u{1B}[K", bar, fraction * 100, p.messages, rate,
                          String(recorded), eta)
        FileHandle.standardError.write(Data(line.utf8))
        shown = true
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
