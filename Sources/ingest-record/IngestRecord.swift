import ArgumentParser
import Foundation
import IngestCore
import Logging

@main
struct IngestRecord: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest-record",
        abstract: "Capture raw KIS traffic with nanosecond receive times into SQLite recordings.",
        subcommands: [Live.self, Import.self, Export.self, Synth.self, Info.self]
    )
}

/// Options shared by the commands that write a recording.
struct WriteOptions: ParsableArguments {
    @Option(name: .long, help: "Output recording (must not exist).")
    var out: String

    @Option(help: "Rows per transaction.")
    var batchSize: Int = 1000

    @Option(help: "Commit a partial batch once it is this old (Go duration, e.g. 200ms).")
    var batchInterval: String = "200ms"

    @Option(help: "Start a new chained file once the current one reaches this many megabytes.")
    var rotateMB: Int?

    @Option(help: "Start a new chained file once the current one spans this much recorded time (Go duration).")
    var rotateEvery: String?

    func configuration(countOnly: Bool = false) throws -> RecorderConfiguration {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard let interval = TimeParsing.duration(batchInterval), interval > .zero else {
            throw ValidationError("--batch-interval \"\(batchInterval)\" is not a positive duration such as 200ms")
        }
        var rotateInterval: Duration?
        if let rotateEvery {
            guard let d = TimeParsing.duration(rotateEvery), d > .zero else {
                throw ValidationError("--rotate-every \"\(rotateEvery)\" is not a positive duration such as 1h")
            }
            rotateInterval = d
        }
        if let rotateMB, rotateMB <= 0 { throw ValidationError("--rotate-mb must be positive, got \(rotateMB)") }
        return RecorderConfiguration(
            path: out, batchSize: batchSize, batchInterval: countOnly ? nil : interval,
            rotateBytes: rotateMB.map { Int64($0) << 20 }, rotateInterval: rotateInterval,
            maxPendingBeforeWaiting: 4 * batchSize)
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    exit(1)
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn a text file of KIS messages into a recording.",
        discussion: """
            Input: the `ingest-replay decode` format: one inbound KIS message per line, '#' lines and blank lines \
            skipped, optionally `<receive time>\\t<message>` (ns since the epoch or ISO 8601). Lines without a time \
            are spaced 1/--rate seconds apart from --start (or after the previous timed line).
            """
    )

    @Argument(help: "Text file of KIS messages, or - for standard input.")
    var file: String

    @OptionGroup var write: WriteOptions

    @Option(help: "Receive time of the first untimed line (ISO 8601 with zone or ns). Default: now.")
    var start: String?

    @Option(help: "Messages per second for untimed lines.")
    var rate: Double = 1000

    func run() throws {
        guard rate > 0 else { throw ValidationError("--rate must be positive, got \(rate)") }
        var next: Int64
        if let start {
            guard let ns = TimeParsing.nanoseconds(start) else {
                throw ValidationError("--start \"\(start)\" is neither ns since the epoch nor ISO 8601 with a zone")
            }
            next = ns
        } else {
            next = Int64(Date().timeIntervalSince1970 * 1e9)
        }
        let step = Int64(1e9 / rate)
        let input: FileHandle
        if file == "-" {
            input = .standardInput
        } else {
            guard let h = FileHandle(forReadingAtPath: file) else { fail("cannot read \(file): no such file or not readable") }
            input = h
        }
        let recorder: SessionRecorder
        do {
            recorder = try SessionRecorder(
                configuration: try write.configuration(),
                session: SessionInfo(startedAt: next, sourceURL: "import:\(file)", subscriptions: []))
        } catch let e as RecordingError { fail(e.message) }
        var lineNumber = 0
        var imported = 0
        var last = next
        var buffer = Data()
        func handle(_ raw: Substring) {
            lineNumber += 1
            var line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.isEmpty || line.hasPrefix("#") { return }
            var at = next
            if let tab = line.firstIndex(of: "\t") {
                guard let ns = TimeParsing.nanoseconds(String(line[..<tab])) else {
                    fail("\(file):\(lineNumber): the text before the tab is not a receive time (ns or ISO 8601)")
                }
                at = ns
                line = line[line.index(after: tab)...]
            }
            let body = String(line)
            let (kind, trID) = RecordedKind.inbound(body)
            recorder.record(RecordedMessage(receivedAt: at, kind: kind, trID: trID, body: body))
            imported += 1
            last = at
            next = at + step
        }
        // Streamed line by line so a pipe can feed it for as long as it likes.
        while true {
            let chunk = input.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                handle(Substring(String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)))
                buffer.removeSubrange(buffer.startIndex...nl)
            }
        }
        if !buffer.isEmpty { handle(Substring(String(decoding: buffer, as: UTF8.self))) }
        let summary = recorder.close(endedAt: last, reason: "end of input")
        FileHandle.standardError.write(Data("import: \(imported) messages → \(summary.rows) rows in \(summary.files.joined(separator: ", "))\n".utf8))
        if summary.writeErrors > 0 { fail("\(summary.writeErrors) batches failed to write: \(recorder.lastError ?? "")") }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a recording as JSON lines: seq, receive time, direction, kind, tr_id, message.")

    @Argument(help: "Recording (chained files are followed).")
    var recording: String

    func run() throws {
        let reader: RecordingReader
        do { reader = try RecordingReader(path: recording) } catch { fail(error.message) }
        var out = ""
        try reader.forEach { m in
            out += "{\"seq\":\(m.seq),\"recv_ns\":\(m.receivedAt),\"recv_time\":\"\(TimeParsing.iso8601(nanoseconds: m.receivedAt))\","
            out += "\"direction\":\"\(m.kind.direction.rawValue)\",\"kind\":\"\(m.kind.name)\","
            out += "\"tr_id\":\(m.trID.map(JSONText.quote) ?? "null"),\"message\":\(JSONText.quote(m.body))}\n"
            if out.utf8.count > 1 << 16 {
                FileHandle.standardOutput.write(Data(out.utf8))
                out = ""
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a realistic KRX session, deterministically from a seed.",
        discussion: """
            The same arguments always produce a byte-identical file. The window's first and last minute play the \
            open and the close (4× the rate, multi-record frames).
            """
    )

    @Option(help: "Seed of the generator.")
    var seed: UInt64 = 1

    @Option(help: "Comma-separated KRX stock codes.")
    var symbols: String = "005930,000660,035720"

    @Option(help: "Start of the window (ISO 8601 with zone, or ns).")
    var from: String = "2025-07-30T09:00:00+09:00"

    @Option(help: "End of the window (ISO 8601 with zone, or ns).")
    var to: String = "2025-07-30T09:05:00+09:00"

    @Option(help: "Mean trades per second per symbol outside the bursts.")
    var tradesPerSecond: Double = 1.5

    @Option(help: "Mean order-book updates per second per symbol.")
    var booksPerSecond: Double = 2

    @Option(name: .long, help: "Output recording (must not exist).")
    var out: String

    @Option(help: "Rows per transaction.")
    var batchSize: Int = 1000

    func run() throws {
        guard let start = TimeParsing.nanoseconds(from) else { throw ValidationError("--from \"\(from)\" is not ISO 8601 with a zone or ns") }
        guard let end = TimeParsing.nanoseconds(to) else { throw ValidationError("--to \"\(to)\" is not ISO 8601 with a zone or ns") }
        guard end > start else { throw ValidationError("--to must be after --from") }
        let codes = symbols.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !codes.isEmpty else { throw ValidationError("--symbols needs at least one code") }
        for c in codes where c.count > 12 || !c.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) {
            throw ValidationError("--symbols: \"\(c)\" is not a KRX code such as 005930")
        }
        guard tradesPerSecond > 0, booksPerSecond > 0 else { throw ValidationError("rates must be positive") }
        let options = SynthOptions(seed: seed, symbols: codes, from: start, to: end, tradesPerSecond: tradesPerSecond,
                                   booksPerSecond: booksPerSecond)
        let recorder: SessionRecorder
        do {
            recorder = try SessionRecorder(
                configuration: RecorderConfiguration(path: out, batchSize: batchSize, batchInterval: nil, maxPendingBeforeWaiting: 4 * max(1, batchSize)),
                session: SessionInfo(startedAt: start, sourceURL: "synth:seed=\(seed)", subscriptions: options.subscriptions,
                                     toolVersion: "kis-ingest synth v1", host: "synth", appKeyFingerprint: Secrets.fingerprint("synthetic-app-key-\(seed)")))
        } catch { fail(error.message) }
        let summary = SessionSynthesizer(options: options).generate { recorder.record($0) }
        let written = recorder.close(endedAt: end, reason: "end of window")
        let frames = summary.framesByTrID.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        let records = summary.recordsByTrID.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        FileHandle.standardError.write(Data("""
            synth: \(written.rows) rows → \(written.files.joined(separator: ", "))
              frames: \(frames); records: \(records)
              multi-record frames \(summary.multiRecordFrames), PINGPONG \(summary.pingPongs), disconnects \(summary.disconnects), malformed \(summary.malformed)

            """.utf8))
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Describe a recording: sessions, rows, time range, integrity.")

    @Argument(help: "Recording (chained files are followed).")
    var recording: String

    func run() throws {
        let reader: RecordingReader
        do { reader = try RecordingReader(path: recording) } catch { fail(error.message) }
        let extent = try reader.extent()
        print("files: \(reader.paths.joined(separator: " → "))")
        for s in reader.sessions {
            print("session \(s.id): \(TimeParsing.iso8601(nanoseconds: s.startedAt)) → \(s.endedAt.map { TimeParsing.iso8601(nanoseconds: $0) } ?? "not closed (recorder stopped abruptly)") \(s.endReason ?? "")")
            print("  source \(s.sourceURL), tool \(s.toolVersion), host \(s.host), app key \(s.appKeyFingerprint ?? "-")")
            print("  subscriptions \(s.subscriptions)")
        }
        print("rows: \(extent.rows), from \(extent.first.map { TimeParsing.iso8601(nanoseconds: $0) } ?? "-") to \(extent.last.map { TimeParsing.iso8601(nanoseconds: $0) } ?? "-")")
        var kinds: [String: Int] = [:]
        var markers: [String] = []
        try reader.forEach { m in
            kinds["\(m.kind.direction.rawValue)/\(m.kind.name)", default: 0] += 1
            if [.connect, .disconnect, .reconnect, .gap].contains(m.kind) {
                markers.append("  \(TimeParsing.iso8601(nanoseconds: m.receivedAt)) (\(m.receivedAt)) \(m.kind.name) \(m.body)")
            }
        }
        print("kinds: " + kinds.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        if !markers.isEmpty { print("connection markers:\n" + markers.joined(separator: "\n")) }
        let problems = try reader.integrityProblems()
        print("integrity: " + (problems.isEmpty ? "ok" : problems.joined(separator: "; ")))
        if !problems.isEmpty { throw ExitCode(1) }
    }
}

struct Live: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture a live KIS session into a recording (no Kafka): both directions, with markers.",
        discussion: "Configured like ingestd (KIS_*, REDIS_*; Kafka is not used). SIGINT/SIGTERM closes the recording cleanly."
    )

    @Option(name: .long, help: "Output recording (must not exist).")
    var out: String

    @Option(help: "Serve /metrics, /healthz and /readyz on HOST:PORT (off unless given).")
    var metricsAddress: String?

    func validate() throws {
        if let metricsAddress, HTTPEndpointServer.parseAddress(metricsAddress) == nil {
            throw ValidationError("--metrics-address \"\(metricsAddress)\" is not HOST:PORT (example: 127.0.0.1:9465)")
        }
    }

    func run() async throws {
        ProgramSupport.bootstrapLogging()
        let configuration = DaemonConfiguration.fromEnvironmentOrExit()
        let logger = Logger(label: "ingest-record")
        let live = try LiveSession(configuration: configuration, producer: nil, recordPath: out, logger: logger)
        var endpoints: HTTPEndpointServer?
        if let address = metricsAddress.flatMap(HTTPEndpointServer.parseAddress) {
            do {
                endpoints = try await live.startEndpoints(host: address.host, port: address.port)
                logger.info("metrics and health on http://\(address.host):\(endpoints!.port)/metrics, /healthz, /readyz")
            } catch {
                FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
                throw ExitCode(1)
            }
        }
        let code = await live.runUntilSignalled()
        await endpoints?.stop()
        if code != 0 { throw ExitCode(code) }
    }
}
