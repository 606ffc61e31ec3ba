import TestSupport
import Testing

@testable import IngestCore

@Suite struct ControlMessageTests {
    static func control(_ item: String) throws -> ControlMessage {
        let line = try Corpus.item("control.txt", item).lines[0]
        let (outputs, _) = run([line])
        guard case .control(let c) = try #require(outputs.first) else { throw FrameError(.badControlMessage, "not control") }
        return c
    }

    @Test func officialAck() throws {
        let c = try Self.control("ack-template-official")
        #expect(c.kind == .subscribed)
        #expect(c.trID == "H0STCNT0")
        #expect(c.trKey == "005930")
        #expect(c.resultCode == "0")
        #expect(c.messageCode == "OPSP0000")
        #expect(c.aesKey == "abcdefghijklmnopabcdefghijklmnop")
        #expect(c.aesIV == "0123456789abcdef")
    }

    @Test func liveAcksCarryKeys() throws {
        let c = try Self.control("ack-H0STASP0-005930")
        #expect(c.aesKey == "iuheqrmvfxoceaxeyqgjwesozgizmmgx")
        #expect(c.aesIV == "d59d91fcf9fd0044")
        let (_, stats) = run([try Corpus.item("control.txt", "ack-H0STCNT0-005930").lines[0]])
        #expect(stats.keysLearned == 1)
    }

    @Test func pingPong() throws {
        let c = try Self.control("pingpong")
        #expect(c.kind == .pingPong)
        #expect(c.code == "PINGPONG")
        #expect(c.datetime == "20230502221924")
    }

    @Test func alreadyInUse() throws {
        let c = try Self.control("already-in-use-appkey")
        #expect(c.kind == .other)
        #expect(c.code == "OPSP8996")
        #expect(c.resultCode == "9")
        #expect(c.trID == "(null)")
    }

    @Test func alreadyInSubscribeIsBenign() throws {
        let c = try Self.control("already-in-subscribe")
        #expect(c.kind == .subscribed)
        #expect(c.encrypt == nil)
        #expect(c.aesKey == nil)
    }

    @Test func maxSubscribeOverWithSpaces() throws {
        let c = try Self.control("max-subscribe-over")
        #expect(c.kind == .other)
        #expect(c.code == "OPSP0008")
        #expect(c.trID == "H0UNCNT0")
    }

    @Test func controlMessagesProduceNoMarketMessage() throws {
        let lines = try Corpus.items("control.txt").flatMap(\.lines)
        let (outputs, stats) = run(lines)
        #expect(outputs.count == lines.count)
        #expect(outputs.allSatisfy { if case .control = $0 { true } else { false } })
        #expect(stats.controlByCode == ["OPSP0000": 3, "PINGPONG": 1, "OPSP8996": 1, "OPSP0002": 1, "OPSP0008": 1])
    }

    @Test func numericFieldsAndUnknownCodes() {
        let (outputs, _) = run(["{\"header\":{\"tr_id\":\"H0STCNT0\"},\"body\":{\"rt_cd\":1,\"msg_cd\":\"OPSP7777\",\"msg1\":\"NEW THING\"}}"])
        guard case .control(let c) = outputs.first else { Issue.record("expected control"); return }
        #expect(c.resultCode == "1")
        #expect(c.code == "OPSP7777")
        #expect(c.kind == .other)
    }
}
