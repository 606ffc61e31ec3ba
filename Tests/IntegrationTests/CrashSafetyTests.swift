import Foundation
import IngestCore
import Testing

@Suite struct CrashSafetyTests {
    /// `kill -9` of a recorder under load: the file opens, passes the integrity check, its rows are a contiguous
    /// prefix of what was sent, and everything older than one batch interval survived.
    @Test func recorderKilledMidWrite() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let rec = dir.appendingPathComponent("crash.sqlite").path
        let p = Process()
        p.executableURL = try Binaries.url("ingest-record")
        p.arguments = ["import", "-", "--out", rec, "--batch-size", "100", "--batch-interval", "50ms",
                       "--start", "2025-07-30T09:00:00+09:00", "--rate", "1000"]
        let stdin = Pipe()
        p.standardInput = stdin
        p.standardError = FileHandle.nullDevice
        try p.run()
        var sent: [String] = []
        func send(_ n: Int) {
            var chunk = ""
            for _ in 0..<n {
                let line = "0|H0STCNT0|001|005930^093000^\(71900 + sent.count % 100)^2^100^0.14^\(sent.count)"
                sent.append(line)
                chunk += line + "\n"
            }
            stdin.fileHandleForWriting.write(Data(chunk.utf8))
        }
        func rows() -> Int64 { (try? RecordingReader(path: rec).extent().rows) ?? 0 }

        send(5000)
        var waited = 0
        while rows() < 5001 && waited < 400 {  // start marker + 5000
            Thread.sleep(forTimeInterval: 0.025)
            waited += 1
        }
        send(37)
        Thread.sleep(forTimeInterval: 0.4)  // well past the 50 ms batch interval
        let durable = sent.count
        send(3000)  // and kill it while it writes these
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal)

        let reader = try RecordingReader(path: rec)
        #expect(try reader.integrityProblems().isEmpty)
        let all = try reader.all()
        let data = all.filter { $0.kind == .data }
        print("crash: \(sent.count) lines sent, \(data.count) recorded, \(durable) were older than one batch interval at the kill")
        #expect(all.map(\.seq) == Array(1...Int64(all.count)), "contiguous sequence numbers")
        #expect(data.count >= durable, "nothing older than one batch interval was lost")
        #expect(data.map(\.body) == Array(sent.prefix(data.count)), "rows are exactly a prefix of what was sent")
        #expect(reader.sessions.first?.endedAt == nil, "a killed recorder leaves its session open")
    }
}
