import ArgumentParser
import Foundation
import IngestCore
import Logging

struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode KIS messages, one per line, into the Kafka messages they become.",
        discussion: """
            Input: one KIS message per line exactly as received (data frame or JSON control message); lines starting \
            with '#' and blank lines are ignored. A line may start with its receive time and a tab \
            (`<ns or ISO 8601>\\t<message>`). Output: one JSON line per Kafka message on standard output, \
            {"topic","key","message"} with the Protobuf JSON mapping, or {"topic","key","reason","detail","raw"} \
            for dead letters. Control messages (acks, PINGPONG) produce none; AES keys in acks are learned for the \
            encrypted frames that follow. A summary goes to standard error.
            """
    )

    @Argument(help: "File of KIS messages, a recording (.sqlite), or - for standard input.")
    var input: String = "-"

    @Option(name: .customLong("recv-time"),
            help: "Receive time for lines without one (ns since the epoch or ISO 8601 with zone); dates order books. Default: now.")
    var receiveTime: String?

    @Flag(help: "Also publish the messages to Kafka (KAFKA_BROKERS) and wait for delivery.")
    var publish = false

    @Flag(help: "Print only the summary, not every message.")
    var quiet = false

    func run() throws {
        ProgramSupport.bootstrapLogging()
        ProgramSupport.requireSupportedLibrdkafka()
        let environment = ProcessInfo.processInfo.environment
        let defaultReceiveTime: Int64
        if let receiveTime {
            guard let ns = TimeParsing.nanoseconds(receiveTime) else {
                throw ValidationError("--recv-time \"\(receiveTime)\" is neither nanoseconds since the epoch nor ISO 8601 with a zone (e.g. 2025-07-30T09:47:51+09:00)")
            }
            defaultReceiveTime = ns
        } else {
            defaultReceiveTime = Int64(Date().timeIntervalSince1970 * 1e9)
        }
        var pipeline = FramePipeline(topics: TopicConfiguration(environment: environment))
        let producer = publish ? try KafkaProducer(configuration: KafkaConfiguration(environment: environment),
                                                   logger: Logger(label: "kis.kafka")) : nil
        var out = ""
        func emit(_ output: PipelineOutput) throws {
            if !quiet, let json = output.jsonLine() {
                out += json
                out += "\n"
                if out.utf8.count > 1 << 16 {
                    FileHandle.standardOutput.write(Data(out.utf8))
                    out = ""
                }
            }
            if let producer, let record = KafkaRecord(output) { try producer.sendWaiting(record) }
        }
        if input != "-" && RecordingReader.isRecording(path: input) {
            // A recording: its inbound messages with their recorded receive times, through the replayer.
            let reader = try RecordingReader(path: input)
            let summary = try Replayer(reader: reader, options: ReplayOptions(topics: pipeline.topics)).run(into: emit)
            FileHandle.standardOutput.write(Data(out.utf8))
            try finish(summary.pipeline, producer)
            return
        }
        let text: String
        do {
            if input == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                text = try String(contentsOfFile: input, encoding: .utf8)
            }
        } catch {
            throw ValidationError("cannot read \(input): \(error.localizedDescription)")
        }
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || line.hasPrefix("#") { continue }
            var receivedAt = defaultReceiveTime
            if let tab = line.firstIndex(of: "\t") {
                guard let ns = TimeParsing.nanoseconds(String(line[..<tab])) else {
                    throw ValidationError("\(input):\(lineNumber): the text before the tab is not a receive time (ns or ISO 8601)")
                }
                receivedAt = ns
                line = line[line.index(after: tab)...]
            }
            try pipeline.process(String(line), receivedAt: receivedAt, emit: emit)
        }
        FileHandle.standardOutput.write(Data(out.utf8))
        try finish(pipeline.stats, producer)
    }

    private func finish(_ stats: PipelineStats, _ producer: KafkaProducer?) throws {
        var summary = "decode: \(stats.messages) messages → "
        summary += stats.messagesByTopic.sorted(by: { $0.key < $1.key }).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        summary += "; dead letters \(stats.deadLetters)"
        if !stats.deadLettersByReason.isEmpty {
            summary += " (" + stats.deadLettersByReason.sorted(by: { $0.key < $1.key }).map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
        }
        summary += "; control \(stats.controlByCode.values.reduce(0, +))"
        if stats.noticesNotPublished > 0 { summary += "; notices not published (no KAFKA_TOPIC_NOTICE) \(stats.noticesNotPublished)" }
        FileHandle.standardError.write(Data((summary + "\n").utf8))
        if let producer {
            let left = producer.close(timeout: .seconds(30))
            let c = producer.counters
            var line = "publish: \(c.delivered) delivered to \(producer.configuration.brokers)"
            if c.failed > 0 || left > 0 {
                line += ", \(c.failed) failed (\(c.failedByError.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))"
                if let last = producer.lastError { line += "; last broker error: \(last)" }
                FileHandle.standardError.write(Data((line + "\n").utf8))
                throw ExitCode(1)
            }
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }
}
