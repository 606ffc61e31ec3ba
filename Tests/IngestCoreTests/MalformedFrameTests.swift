import Foundation
import Testing

@testable import IngestCore

@Suite struct MalformedFrameTests {
    /// Counters keyed by what the server sends stay bounded: a feed of ever-new tr_ids and control codes cannot grow
    /// memory or the metrics' label sets, and nothing goes uncounted (or un-dead-lettered).
    @Test func countersKeyedByTheFeedStayBounded() {
        var pipeline = FramePipeline()
        let n = 1_000
        var deadLetters = 0
        for i in 0..<n {
            for output in pipeline.process("0|ZZ\(i)X|001|a^b", receivedAt: 1) {
                if case .deadLetter(let d) = output, d.reason == .unmappedTrID { deadLetters += 1 }
            }
            _ = pipeline.process(
                "{\"header\":{\"tr_id\":\"H0STCNT0\"},\"body\":{\"rt_cd\":\"1\",\"msg_cd\":\"X\(i)\",\"msg1\":\"x\"}}",
                receivedAt: 1)
        }
        let stats = pipeline.stats
        #expect(deadLetters == n)
        for counter in [stats.framesByTrID, stats.controlByCode] {
            #expect(counter.count == PipelineStats.keyLimit + 1)
            #expect(counter.values.reduce(0, +) == n)
            #expect(counter[PipelineStats.otherKey] == n - PipelineStats.keyLimit)
        }
        #expect(stats.framesByTrID["ZZ0X"] == 1)
    }

    /// Record widths are chosen by the server too: 1 000 frames of 1 000 widths (each record padded with extra
    /// fields, which are accepted) keep at most `keyLimit` widths plus the overflow bucket, and count every frame.
    @Test func recordWidthsKeptStayBounded() {
        var pipeline = FramePipeline()
        let n = 1_000
        var published = 0
        for i in 0..<n {
            let payload = Self.official + String(repeating: "^0", count: i)
            for output in pipeline.process("0|H0STCNT0|001|" + payload, receivedAt: 1) {
                if case .market = output { published += 1 }
            }
        }
        let widths = pipeline.stats.widthsByTrID["H0STCNT0"] ?? [:]
        #expect(published == n)
        // The first 64 widths, the overflow bucket, and the width being counted (the last frame's).
        #expect(widths.count == PipelineStats.keyLimit + 2)
        #expect(widths.values.reduce(0, +) == n)
        #expect(widths[PipelineStats.otherWidth] == n - PipelineStats.keyLimit - 1)
        #expect(widths[46] == 1 && widths[46 + PipelineStats.keyLimit - 1] == 1 && widths[46 + n - 1] == 1)
    }

    static let official = "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"

    static func replacing(_ index: Int, with value: String, in payload: String = official) -> String {
        var f = payload.split(separator: "^", omittingEmptySubsequences: false).map(String.init)
        f[index] = value
        return f.joined(separator: "^")
    }

    static let cases: [(String, DeadLetterReason)] = [
        ("", DeadLetterReason.emptyMessage),
        ("x", .unknownMessageType),
        ("2|H0STCNT0|001|" + official, .unknownMessageType),
        ("0", .unknownMessageType),
        ("0H0STCNT0|001|x", .unknownMessageType),
        ("0|", .malformedHeader),
        ("0|H0STCNT0", .malformedHeader),
        ("0|H0STCNT0|001", .malformedHeader),
        ("0||001|" + official, .malformedHeader),
        ("0|H0ST CNT0|001|" + official, .malformedHeader),
        ("0|H0STCNT0||" + official, .badRecordCount),
        ("0|H0STCNT0|abc|" + official, .badRecordCount),
        ("0|H0STCNT0|000|" + official, .badRecordCount),
        ("0|H0STCNT0|-01|" + official, .badRecordCount),
        ("0|H0STCNT0|003|" + official, .fieldCountMismatch),
        ("0|H0STCNT0|002|" + official, .recordTooShort),
        ("0|H0STCNT0|001|" + official.split(separator: "^", omittingEmptySubsequences: false).dropLast().joined(separator: "^"), .recordTooShort),
        ("0|H0STCNT0|001|", .recordTooShort),
        ("0|H9XXXXX0|001|a^b^c", .unmappedTrID),
        ("0|H0STCNT0|001|" + replacing(2, with: "abc"), .badField),
        ("0|H0STCNT0|001|" + replacing(2, with: ""), .badField),
        ("0|H0STCNT0|001|" + replacing(12, with: "1.5"), .badField),
        ("0|H0STCNT0|001|" + replacing(33, with: "20231332"), .badField),
        // Found by the fuzzer: a far-future date overflowed the Int64 nanosecond timestamp and trapped.
        ("0|H0STCNT0|001|" + replacing(33, with: "99991231"), .badField),
        ("0|H0STCNT0|001|" + replacing(33, with: "22620412"), .badField),
        ("0|H0STCNT0|001|" + replacing(1, with: "25:00:00"), .badField),
        ("0|H0STCNT0|001|" + replacing(0, with: ""), .badField),
        ("1|H0STCNI0|001|uhtkoQf3", .missingKey),
        ("{", .badControlMessage),
        ("{\"header\":\"x\"}", .badControlMessage),
        ("[1,2]", .unknownMessageType),
        ("{\"header\":{\"tr_id\":5}", .badControlMessage),
        ("{\"header\":{\"tr_id\":[1]},\"body\":{}}", .badControlMessage),
        ("{}", .badControlMessage),
    ]

    @Test(arguments: cases)
    func deadLettersWithReason(message: String, reason: DeadLetterReason) {
        let (outputs, stats) = run([message])
        let dead = deadLetters(outputs)
        #expect(dead.count == 1, "\(message.prefix(40))")
        #expect(dead.first?.reason == reason, "\(message.prefix(40)): \(dead.first?.detail ?? "")")
        #expect(dead.first?.raw == message)
        #expect(dead.first?.detail.isEmpty == false)
        #expect(ticks(outputs).isEmpty)
        #expect(stats.deadLettersByReason == [reason.name: 1])
    }

    /// Secrets in JSON that ends up in the dead-letter topic are masked; everything else is kept verbatim.
    @Test func deadLetteredJSONHasNoSecrets() throws {
        let token = "{\"access_token\":\"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.abc\",\"access_token_token_expired\":\"2023-12-22 08:16:59\",\"token_type\":\"Bearer\",\"expires_in\":86400}"
        let approval = "{ \"approval_key\": \"a2585daf-8c09-4587-9fce-8ab893123456\" }"
        let dead = deadLetters(run([token, approval]).outputs)
        #expect(dead.map(\.reason) == [.badControlMessage, .badControlMessage])
        #expect(!dead[0].raw.contains("eyJ0eXAi"))
        #expect(dead[0].raw.contains("\"access_token_token_expired\":\"2023-12-22 08:16:59\""))
        #expect(!dead[1].raw.contains("a2585daf"))
        #expect(dead[1].raw == "{ \"approval_key\": \"***\" }")
    }

    @Test func badFieldDetailNamesTheField() {
        let dead = deadLetters(run(["0|H0STCNT0|001|" + Self.replacing(2, with: "abc")]).outputs)
        #expect(dead.first?.detail == "#2 STCK_PRPR is not a number: \"abc\"")
        #expect(dead.first?.trID == "H0STCNT0")
    }

    /// One bad record in a multi-record frame: the good ones are published, the whole raw frame is dead-lettered.
    @Test func oneBadRecordOfThree() {
        let bad = Self.replacing(2, with: "(null)")
        let frame = "0|H0STCNT0|003|" + [Self.official, bad, Self.official].joined(separator: "^")
        let (outputs, stats) = run([frame])
        #expect(ticks(outputs).count == 2)
        let dead = deadLetters(outputs)
        #expect(dead.map(\.reason) == [.badField])
        #expect(dead.first?.detail.hasPrefix("record 2/3: #2 STCK_PRPR") == true)
        #expect(dead.first?.raw == frame)
        #expect(stats.messagesByTopic == ["market.tick": 2])
    }

    @Test func oddOptionalNumbersDefaultToZeroAndAreCounted() {
        let payload = Self.replacing(5, with: "nan", in: Self.replacing(4, with: "(null)"))
        let (outputs, stats) = run(["0|H0STCNT0|001|" + payload])
        let t = ticks(outputs).first
        #expect(t?.change == 0)
        #expect(t?.changeRate == 0)
        #expect(t?.price == 71900)
        #expect(stats.fieldDefaults == ["H0STCNT0.PRDY_VRSS": 1, "H0STCNT0.PRDY_CTRT": 1])
    }

    @Test func leadingPlusAndZeroPadding() {
        let payload = Self.replacing(2, with: "000071900", in: Self.replacing(5, with: "+0.14", in: Self.replacing(3, with: "2", in: Self.replacing(4, with: "+100"))))
        let t = ticks(run(["0|H0STCNT0|001|" + payload]).outputs).first
        #expect(t?.price == 71900)
        #expect(t?.change == 100)
        #expect(t?.changeRate == 0.14)
    }

    /// §12: a sign code that says down with a positive delta is negated and counted.
    @Test func signCodeGuard() {
        let payload = Self.replacing(4, with: "100", in: Self.replacing(5, with: "0.14"))
        let (outputs, stats) = run(["0|H0STCNT0|001|" + payload])
        #expect(ticks(outputs).first?.change == -100)
        #expect(ticks(outputs).first?.changeRate == -0.14)
        #expect(stats.signCorrections == 2)
    }

    @Test func payloadKeepsExtraBars() {
        // maxSplits 3: a '|' inside the payload stays in the payload (and then fails as a field, not as a header).
        let dead = deadLetters(run(["0|H0STCNT0|001|" + Self.replacing(2, with: "71|900")]).outputs)
        #expect(dead.first?.reason == .badField)
    }

    @Test func nothingCrashesOnArbitraryBytes() {
        var generator = SystemRandomNumberGenerator()
        var pipeline = FramePipeline()
        let alphabet = Array("0123456789|^{}\":,.-+ABCDHNST\n".utf8)
        for _ in 0..<3000 {
            let n = Int.random(in: 0..<200, using: &generator)
            let bytes = (0..<n).map { _ in alphabet.randomElement(using: &generator)! }
            let message = String(decoding: bytes, as: UTF8.self)
            let outputs = pipeline.process(message, receivedAt: receiveTime)
            #expect(!outputs.isEmpty)
        }
    }
}
