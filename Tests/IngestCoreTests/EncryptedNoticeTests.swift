import Foundation
import Testing

@testable import IngestCore

@Suite struct EncryptedNoticeTests {
    static let key = "abcdefghijklmnopabcdefghijklmnop"
    static let iv = "0123456789abcdef"
    static let frame = "1|H0STCNI0|001|uhtkoQf3cAdabozH/ByCEL/DASyLyzdSq/BKhns2FpZpRS9GkLAip5KO0ONPcAwNRbU97P0zfK7Hz1H+nfZSXEyLBLJttMr35VKaQVZHxkTAWSxOiqhhyB2r8yBHmKhifFV1orv0wDfw3mpNTx+IZOyXTCGCeBF/DYhr33GdwliLqS93nS3tlfekPKFueJ+9"
    static let plaintext = "TESTUSER^0000000000^0000012345^^02^0^00^0^005930^0000000010^000071900^093354^0^2^2^00000^000000010^테스트^^1^N^^10^^삼성전자^000071900"
    static let ack = "{\"header\":{\"tr_id\":\"H0STCNI0\",\"tr_key\":\"TESTUSER\",\"encrypt\":\"Y\"},\"body\":{\"rt_cd\":\"0\",\"msg_cd\":\"OPSP0000\",\"msg1\":\"SUBSCRIBE SUCCESS\",\"output\":{\"iv\":\"\(iv)\",\"key\":\"\(key)\"}}}"

    /// The protocol reference's §11 vector decrypts exactly.
    @Test func protocolTestVector() throws {
        let aes = try AESKey(key: Self.key, iv: Self.iv)
        let payload = Array(Self.frame.dropFirst("1|H0STCNI0|001|".count).utf8)
        let plain = try payload.withUnsafeBufferPointer { try aes.decrypt(base64: $0) }
        #expect(plain.count == 141)
        #expect(String(decoding: plain, as: UTF8.self) == Self.plaintext)
        #expect(String(decoding: plain, as: UTF8.self).split(separator: "^", omittingEmptySubsequences: false).count == 26)
    }

    @Test func encryptThenDecryptRoundTrips() throws {
        let aes = try AESKey(key: "tvldhmfplvgcovaqrspclzhdotfzzequ", iv: "55ce3d099479ce11")
        for n in [0, 1, 15, 16, 17, 1000] {
            let text = Array(String(repeating: "가^", count: n).utf8)
            let b64 = Array(aes.encryptToBase64(text).utf8)
            #expect(try b64.withUnsafeBufferPointer { try aes.decrypt(base64: $0) } == text)
        }
    }

    @Test func noticeWithTopicConfigured() throws {
        let (outputs, stats) = run([Self.ack, Self.frame], topics: TopicConfiguration(notice: "market.notice"))
        let notice = try #require(outputs.compactMap { if case .market(let m) = $0, case .notice(let n) = m.event { n } else { nil } }.first)
        #expect(notice.symbol == "005930")
        #expect(notice.customerID == "TESTUSER")
        #expect(notice.orderNumber == "0000012345")
        #expect(notice.side == "02")
        #expect(notice.isFill)
        #expect(!notice.rejected)
        #expect(notice.quantity == 10)
        #expect(notice.price == 71900)
        #expect(notice.otherPrice == 71900)
        #expect(notice.orderQuantity == 10)
        #expect(notice.accountName == "테스트")
        #expect(notice.instrumentName == "삼성전자")
        #expect(notice.exchange == "1")
        #expect(notice.layoutWidth == 26)
        // 09:33:54 KST on the receive date (2025-07-30).
        #expect(notice.timestamp == 1_753_835_634_000_000_000)
        #expect(stats.keysLearned == 1)
        #expect(stats.messagesByTopic == ["market.notice": 1])
    }

    /// Notices are private account data: without a notice topic they are counted, not published or dead-lettered.
    @Test func noticeWithoutTopicIsNotPublished() {
        let (outputs, stats) = run([Self.ack, Self.frame])
        #expect(outputs.count == 1)  // the ack's control output only
        #expect(stats.noticesNotPublished == 1)
        #expect(stats.deadLetters == 0)
    }

    @Test func oldTwentyThreeFieldLayout() throws {
        let aes = try AESKey(key: Self.key, iv: Self.iv)
        // #0–17 as today, then CNTG_ISNM, CRDT_CLS, CRDT_LOAN_DATE, CNTG_ISNM40, ODER_PRC.
        let old = "TESTUSER^0000000000^0000012345^^01^0^00^0^000660^0000000005^000093000^101500^0^1^1^00000^000000005^테스트^SK하이닉스^10^^SK하이닉스^000093000"
        let frame = "1|H0STCNI9|001|" + aes.encryptToBase64(Array(old.utf8))
        let ack = Self.ack.replacingOccurrences(of: "H0STCNI0", with: "H0STCNI9")
        let (outputs, _) = run([ack, frame], topics: TopicConfiguration(notice: "n"))
        let n = try #require(outputs.compactMap { if case .market(let m) = $0, case .notice(let n) = m.event { n } else { nil } }.first)
        #expect(n.layoutWidth == 23)
        #expect(n.trID == "H0STCNI9")
        #expect(n.symbol == "000660")
        #expect(!n.isFill)
        #expect(n.instrumentName == "SK하이닉스")
        #expect(n.otherPrice == 93000)
        #expect(n.exchange == "")
    }

    @Test func encryptedFailures() throws {
        let wrongKeyAck = Self.ack.replacingOccurrences(of: Self.key, with: "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz")
        #expect(deadLetters(run([wrongKeyAck, Self.frame]).outputs).map(\.reason) == [.decryptFailed])
        #expect(deadLetters(run([Self.ack, "1|H0STCNI0|001|@@@not base64@@@"]).outputs).map(\.reason) == [.badBase64])
        #expect(deadLetters(run([Self.ack, "1|H0STCNI0|001|QUJD"]).outputs).map(\.reason) == [.decryptFailed])
        #expect(deadLetters(run([Self.frame]).outputs).map(\.reason) == [.missingKey])
        let shortKey = Self.ack.replacingOccurrences(of: Self.key, with: "short")
        #expect(deadLetters(run([shortKey]).outputs).map(\.reason) == [.badKey])
        let aes = try AESKey(key: Self.key, iv: Self.iv)
        let notUTF8 = "1|H0STCNI0|001|" + aes.encryptToBase64([0xFF, 0xFE, 0x5E, 0x41])
        #expect(deadLetters(run([Self.ack, notUTF8]).outputs).map(\.reason) == [.invalidUTF8])
    }

    /// Keys are per connection: after `resetKeys` an encrypted frame needs a new ack.
    @Test func keysResetOnNewConnection() {
        var pipeline = FramePipeline(topics: TopicConfiguration(notice: "n"))
        _ = pipeline.process(Self.ack, receivedAt: receiveTime)
        #expect(deadLetters(pipeline.process(Self.frame, receivedAt: receiveTime)).isEmpty)
        pipeline.resetKeys()
        #expect(deadLetters(pipeline.process(Self.frame, receivedAt: receiveTime)).map(\.reason) == [.missingKey])
    }
}
