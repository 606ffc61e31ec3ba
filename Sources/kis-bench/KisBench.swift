import ArgumentParser
import Foundation
import IngestCore

/// Micro-benchmarks of single stages, run by scripts/bench (which also runs the end-to-end ones). Each prints one
/// JSON object per run on standard output.
@main
struct KisBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kis-bench",
        abstract: "Stage benchmarks for scripts/bench: parse + encode, the session store, the replay's bytes from memory.",
        subcommands: [Parse.self, Recorder.self, SameBytes.self])
}

/// Real KIS records (the protocol reference's official trade and a corpus order book) as frames of 1 or N records.
enum BenchFrames {
    static let trade46 = "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"
    static let book62 = "005930^093730^0^71900^72000^72100^72200^72300^72400^72500^72600^72700^72800^71800^71700^71600^71500^71400^71300^71200^71100^71000^70900^91918^117942^92999^101236^161232^91145^113891^102023^83071^43022^117138^179002^98917^119104^178107^178921^47101^73288^123876^77010^1097355^1205652^0^0^0^0^490226^-71900^5^-100^-0.14^3052507^0^0^0^0^0^0"

    /// `kind`: tick46, tick47 (a 47th field, as KIS added in 2025), book62.
    static func record(_ kind: String, variant: Int) -> (tr: String, payload: String) {
        func bump(_ fields: [String], _ i: Int, by: Int) -> [String] {
            var f = fields
            if let v = Int(f[i]) { f[i] = String(v + by) }
            return f
        }
        switch kind {
        case "tick46", "tick47":
            var f = trade46.split(separator: "^", omittingEmptySubsequences: false).map(String.init)
            f = bump(f, 2, by: (variant % 20) * 100)  // price moves on the tick grid
            f = bump(f, 12, by: variant % 7)  // trade size
            if kind == "tick47" { f.append("0") }
            return ("H0STCNT0", f.joined(separator: "^"))
        default:
            var f = book62.split(separator: "^", omittingEmptySubsequences: false).map(String.init)
            f = bump(f, 23, by: variant % 50)
            return ("H0STASP0", f.joined(separator: "^"))
        }
    }

    static func frames(_ kind: String, perFrame: Int, count: Int) -> [String] {
        (0..<count).map { i in
            let records = (0..<perFrame).map { record(kind, variant: i * perFrame + $0) }
            return "0|\(records[0].tr)|\(String(perFrame).leftPadded(to: 3))|" + records.map(\.payload).joined(separator: "^")
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

struct Parse: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Records/s through FramePipeline's hot path (parse, map, Protobuf encode), one thread, no Kafka.")

    @Option(help: "tick46, tick47 or book62.") var kind = "tick46"
    @Option(help: "Records per frame.") var perFrame = 1
    @Option(help: "Distinct frames (cycled).") var frames = 10_000
    @Option(help: "Records to process.") var records = 3_000_000
    @Option(help: "Also write the distinct frames to this file (one per line) for the reference parser.") var writeFrames: String?
    @Option(help: "string: frames as String (ingestd's path, from the socket reader); bytes: as UTF-8 bytes in memory (ingest-replay's path, from the recording).")
    var input = "string"

    func run() throws {
        let input = BenchFrames.frames(kind, perFrame: perFrame, count: frames)
        if let writeFrames { try (input.joined(separator: "\n") + "\n").write(toFile: writeFrames, atomically: true, encoding: .utf8) }
        var pipeline = FramePipeline()
        var bytes = 0
        var produced = 0
        // Warm-up, and a check that every record maps.
        for frame in input.prefix(100) {
            pipeline.process(frame, receivedAt: 1) { output in
                guard case .market = output else { fatalError("benchmark frame did not map: \(output)") }
            }
        }
        let rounds = max(1, records / (perFrame * frames))
        guard self.input == "string" || self.input == "bytes" else {
            throw ValidationError("--input is string or bytes, not \(self.input)")
        }
        let asBytes = self.input == "bytes"
        // All frames back to back in one buffer, as a block of a recording is after decoding.
        let flat = input.flatMap { Array($0.utf8) }
        var ranges: [Range<Int>] = []
        var offset = 0
        for frame in input {
            ranges.append(offset..<(offset + frame.utf8.count))
            offset += frame.utf8.count
        }
        // Receive times advance 50 µs per frame (20 000 frames/s, the live-latency rate), as on a real feed: the
        // receive-time header is written for every frame.
        var receivedAt: Int64 = 1_753_836_471_000_000_000
        let start = ContinuousClock.now
        if asBytes {
            flat.withUnsafeBufferPointer { all in
                for _ in 0..<rounds {
                    for range in ranges {
                        // ingest-replay's path: the frame's bytes as read from the recording.
                        receivedAt &+= 50_000
                        pipeline.process(
                            bytes: UnsafeBufferPointer(rebasing: all[range]), receivedAt: receivedAt,
                            encoded: { record in
                                bytes &+= record.value.count
                                produced &+= 1
                            },
                            other: { output in fatalError("benchmark frame did not map: \(output)") })
                    }
                }
            }
        } else {
            for _ in 0..<rounds {
                for frame in input {
                    // ingestd's path: records come out as Protobuf value, key and header values, ready for
                    // rd_kafka_produceva.
                    receivedAt &+= 50_000
                    pipeline.process(
                        frame, receivedAt: receivedAt,
                        encoded: { record in
                            bytes &+= record.value.count
                            produced &+= 1
                        },
                        other: { output in fatalError("benchmark frame did not map: \(output)") })
                }
            }
        }
        let seconds = (ContinuousClock.now - start).nanosecondsDouble / 1e9
        let n = rounds * frames * perFrame
        guard produced == n else { fatalError("\(produced) records encoded, \(n) expected") }
        print("{\"bench\":\"parse\",\"input\":\"\(self.input)\",\"kind\":\"\(kind)\",\"per_frame\":\(perFrame),\"records\":\(n),\"seconds\":\(seconds),\"records_per_s\":\(Double(n) / seconds),\"value_bytes\":\(Double(bytes) / Double(n))}")
    }
}

struct Recorder: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Frames/s written by the session store (WAL, batched), and bytes on disk per frame vs raw.")

    @Option(help: "Frames to record.") var frames = 1_000_000
    @Option(help: "Rows per transaction.") var batchSize = 1000
    @Option(help: "Directory for the recording.") var dir = NSTemporaryDirectory()

    func run() throws {
        let input = BenchFrames.frames("tick47", perFrame: 1, count: 5000) + BenchFrames.frames("book62", perFrame: 1, count: 5000)
        let path = (dir as NSString).appendingPathComponent("bench-recorder-\(UUID().uuidString).sqlite")
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let recorder = try SessionRecorder(
            configuration: RecorderConfiguration(path: path, batchSize: batchSize, maxPendingBeforeWaiting: 200_000),
            session: SessionInfo(startedAt: 1, sourceURL: "bench", subscriptions: []))
        var raw = 0
        let start = ContinuousClock.now
        var t: Int64 = 1_753_836_471_000_000_000
        for i in 0..<frames {
            let body = input[i % input.count]
            raw += body.utf8.count
            t += 1000
            recorder.record(RecordedMessage(receivedAt: t, kind: .data, trID: i % input.count < 5000 ? "H0STCNT0" : "H0STASP0", body: body))
        }
        let summary = recorder.close(endedAt: t + 1, reason: "bench")
        let seconds = (ContinuousClock.now - start).nanosecondsDouble / 1e9
        let size = summary.files.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
        print("{\"bench\":\"recorder\",\"frames\":\(frames),\"seconds\":\(seconds),\"frames_per_s\":\(Double(frames) / seconds),\"raw_bytes_per_frame\":\(Double(raw) / Double(frames)),\"disk_bytes_per_frame\":\(Double(size) / Double(frames)),\"rows\":\(summary.rows)}")
    }
}
