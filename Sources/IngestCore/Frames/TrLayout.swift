import Foundation

/// What kis-ingest does with a realtime TR: its documented record width and the message it becomes.
public struct TrLayout: Sendable, Hashable {
    /// What a record of this TR is mapped to.
    public enum Mapping: String, Sendable, Hashable {
        case domesticTrade, domesticBook, overseasTrade, overseasBook, executionNotice
    }

    public let trID: String
    /// The documented number of fields per record. Wider records are accepted (extra trailing fields are kept and
    /// counted); narrower ones are malformed.
    public let documentedWidth: Int
    public let mapping: Mapping

    /// Position in `all` (for per-TR counters without hashing).
    public let ordinal: Int

    init(trID: String, documentedWidth: Int, mapping: Mapping, ordinal: Int = 0) {
        self.trID = trID
        self.documentedWidth = documentedWidth
        self.mapping = mapping
        self.ordinal = ordinal
    }

    /// The TRs the pipeline maps, in `ordinal` order.
    public static let all: [TrLayout] = {
        let list = [
            TrLayout(trID: "H0STCNT0", documentedWidth: 46, mapping: .domesticTrade),
            TrLayout(trID: "H0STASP0", documentedWidth: 59, mapping: .domesticBook),
            TrLayout(trID: "HDFSCNT0", documentedWidth: 26, mapping: .overseasTrade),
            TrLayout(trID: "HDFSASP0", documentedWidth: 71, mapping: .overseasBook),
            // Notices were 23 fields wide until about 2025-03 and 26 since; the width selects the layout.
            TrLayout(trID: "H0STCNI0", documentedWidth: 23, mapping: .executionNotice),
            TrLayout(trID: "H0STCNI9", documentedWidth: 23, mapping: .executionNotice),
        ]
        return list.enumerated().map { TrLayout(trID: $1.trID, documentedWidth: $1.documentedWidth, mapping: $1.mapping, ordinal: $0) }
    }()

    /// The TRs the pipeline maps (protocol reference §13, §14). Every other tr_id is dead-lettered as unmapped.
    public static let known: [String: TrLayout] = Dictionary(uniqueKeysWithValues: all.map { ($0.trID, $0) })

    private static let allBytes: [[UInt8]] = all.map { Array($0.trID.utf8) }

    /// The layout whose tr_id is exactly `bytes`, by comparing bytes (no String, no hashing: the hot path).
    @inline(__always)
    static func lookup(_ bytes: UnsafeBufferPointer<UInt8>) -> TrLayout? {
        for (i, candidate) in allBytes.enumerated() where candidate.count == bytes.count {
            if candidate.withUnsafeBufferPointer({ memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0 }) { return all[i] }
        }
        return nil
    }
}
