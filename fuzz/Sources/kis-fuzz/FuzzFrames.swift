import Foundation
import FrameCore

/// One fuzz input = one inbound WebSocket text message (bytes decoded as UTF-8 with replacement, as the socket
/// would). Invariants checked on every input, any violation aborts and libFuzzer keeps the input:
/// - the pipeline never crashes or hangs (libFuzzer's `-timeout`);
/// - every input produces at least one output: a market message, a control message, or a dead letter with a
///   reason and a detail (nothing is silently dropped);
/// - every market message encodes to a Kafka record with a key and a Protobuf value that decodes back;
/// - the control-message parser and the AES decryptor either succeed or throw a `FrameError` with a reason;
/// - the hot path (wire mapping) gives byte-for-byte the Kafka messages and the counters of the general path;
/// - read as a recording block (format 2), the input decodes or is refused with `MessageBlock.Malformed`, and as a
///   message body (and tr_id) it survives a block's encoding and decoding byte for byte.
nonisolated(unsafe) var pipeline = FuzzState.freshPipeline()
nonisolated(unsafe) var fastPipeline = FuzzState.freshPipeline()
nonisolated(unsafe) var inputs = 0

enum FuzzState {
    static let ack = #"{"header":{"tr_id":"H0STCNI0","tr_key":"TESTUSER","encrypt":"Y"},"body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS","output":{"iv":"0123456789abcdef","key":"abcdefghijklmnopabcdefghijklmnop"}}}"#
    static let key = try! AESKey(key: "abcdefghijklmnopabcdefghijklmnop", iv: "0123456789abcdef")

    /// A pipeline that knows the notice key (so encrypted frames reach the decryptor) and publishes notices.
    static func freshPipeline() -> FramePipeline {
        var p = FramePipeline(topics: TopicConfiguration(notice: "market.notice"))
        _ = p.process(ack, receivedAt: 0)
        return p
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    inputs += 1
    // Counters keyed by what the input says (control codes, …) would grow without bound over millions of inputs.
    if inputs % 10_000 == 0 {
        pipeline = FuzzState.freshPipeline()
        fastPipeline = FuzzState.freshPipeline()
    }
    var outputs = 0
    var general: [KafkaRecord] = []
    pipeline.process(text, receivedAt: 1_753_836_471_000_000_000) { output in
        outputs += 1
        if let record = KafkaRecord(output) { general.append(record) }
        switch output {
        case .market(let m):
            guard let record = KafkaRecord(output) else { fatalError("market message without a Kafka record: \(m)") }
            if record.key.isEmpty && !m.key.isEmpty { fatalError("Kafka key lost for \(m.key)") }
            guard !record.value.isEmpty || m.trID.isEmpty == false else { fatalError("empty value") }
        case .deadLetter(let d):
            if d.reason.name.isEmpty || d.detail.isEmpty { fatalError("dead letter without a reason or detail") }
            if KafkaRecord(output) == nil { fatalError("dead letter without a Kafka record") }
        case .control:
            break
        }
    }
    if outputs == 0 { fatalError("silent drop: \(size) bytes produced no output") }
    var fast: [KafkaRecord] = []
    fastPipeline.process(
        text, receivedAt: 1_753_836_471_000_000_000, encoded: { fast.append($0.record) },
        other: { if let record = KafkaRecord($0) { fast.append(record) } })
    if fast != general { fatalError("hot path differs from the general path: \(fast) vs \(general)") }
    if inputs % 256 == 0 && fastPipeline.stats != pipeline.stats { fatalError("hot path counters differ") }
    checkBlocks(UnsafeBufferPointer(start: data, count: size), text)
    do { _ = try ControlMessage.parse(text) } catch { if error.reason.name.isEmpty { fatalError("control error without reason") } }
    do { _ = try FuzzState.key.decrypt(base64: text) } catch { if error.reason.name.isEmpty { fatalError("decrypt error without reason") } }
    return 0
}

func checkBlocks(_ raw: UnsafeBufferPointer<UInt8>, _ text: String) {
    var scratch: [UInt8] = []
    do {
        try MessageBlock.decode(raw, scratch: &scratch) { frame in
            if frame.body.count > raw.count { fatalError("a decoded body longer than its block (every escape shrinks)") }
        }
    } catch is MessageBlock.Malformed {
    } catch {
        fatalError("block decoding threw something else: \(error)")
    }
    let trID: String? = text.utf8.count % 3 == 0 ? nil : String(text.prefix(16))
    let messages = [
        RecordedMessage(seq: 7, receivedAt: 1_000 + Int64(text.utf8.count), kind: .data, trID: trID, body: text),
        RecordedMessage(seq: 8, receivedAt: 999, kind: .control, trID: "H0STCNT0", body: String(text.reversed())),
    ]
    var block: [UInt8] = []
    let (count, minNs, maxNs) = MessageBlock.encode(messages[...], into: &block)
    if count != 2 || minNs != 999 || maxNs != 1_000 + Int64(text.utf8.count) { fatalError("block range wrong") }
    var decoded: [(Int64, Int64, String?, String)] = []
    do {
        try block.withUnsafeBufferPointer { bytes in
            try MessageBlock.decode(bytes, scratch: &scratch) { f in
                decoded.append((f.offsetNs + minNs, f.kind, f.trID.map { String(decoding: $0, as: UTF8.self) },
                                String(decoding: f.body, as: UTF8.self)))
            }
        }
    } catch {
        fatalError("a block we wrote does not decode: \(error)")
    }
    let expected = messages.map { (Int64($0.receivedAt), Int64($0.kind.rawValue), $0.trID, $0.body) }
    guard decoded.count == 2, zip(decoded, expected).allSatisfy({ $0.0 == $1.0 && $0.1 == $1.1 && $0.2 == $1.2 && Array($0.3.utf8) == Array($1.3.utf8) })
    else { fatalError("block round trip changed a message: \(decoded) vs \(expected)") }
}

// SwiftPM links executables with `main` defined as `<module>_main`; libFuzzer's own `main` then stays out of the
// link, so this entry point hands over to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

@_cdecl("kis_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzOneInput(data, size) }
}
