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

    /// What the hot path needs of a layout, without its tr_id `String` (copying a `TrLayout` retains it).
    struct Shape {
        let ordinal: Int
        let mapping: Mapping
        let documentedWidth: Int
    }

    var shape: Shape { Shape(ordinal: ordinal, mapping: mapping, documentedWidth: documentedWidth) }

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

    /// Finds the layout of a frame's tr_id bytes, for the hot path: held by its user (the pipeline), so a lookup
    /// touches no global and retains nothing; an 8-byte tr_id (all the known ones) is one word compare per layout.
    struct Table: Sendable {
        private let layouts = TrLayout.all
        private let wordKeys: [(key: UInt64, ordinal: Int)] = TrLayout.all.compactMap { layout in
            let bytes = Array(layout.trID.utf8)
            guard bytes.count == 8 else { return nil }
            return (bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }, layout.ordinal)
        }

        /// The layout whose tr_id is exactly `bytes`.
        @inline(__always)
        func layout(_ bytes: UnsafeBufferPointer<UInt8>) -> TrLayout? {
            if bytes.count == 8, let base = bytes.baseAddress {
                let key = UnsafeRawPointer(base).loadUnaligned(as: UInt64.self)
                for entry in wordKeys where entry.key == key { return layouts[entry.ordinal] }
                return nil
            }
            return layouts.first { $0.trID.utf8.elementsEqual(bytes) }
        }

        /// The ordinal of the trade or order book TR whose 8-byte tr_id is `word` (little-endian), or -1: one
        /// compare per TR, constants only (`TrLayoutTests` checks them against `TrLayout.all`).
        @inline(__always)
        static func marketOrdinal(word: UInt64) -> Int {
            switch word {
            case 0x3054_4E43_5453_3048: 0  // H0STCNT0
            case 0x3050_5341_5453_3048: 1  // H0STASP0
            case 0x3054_4E43_5346_4448: 2  // HDFSCNT0
            case 0x3050_5341_5346_4448: 3  // HDFSASP0
            default: -1
            }
        }

        /// The shape of a market TR by the ordinal `marketOrdinal(word:)` gave (constants, as `TrLayout.all` has them).
        @inline(__always)
        static func marketShape(_ ordinal: Int) -> Shape {
            switch ordinal {
            case 0: Shape(ordinal: 0, mapping: .domesticTrade, documentedWidth: 46)
            case 1: Shape(ordinal: 1, mapping: .domesticBook, documentedWidth: 59)
            case 2: Shape(ordinal: 2, mapping: .overseasTrade, documentedWidth: 26)
            default: Shape(ordinal: 3, mapping: .overseasBook, documentedWidth: 71)
            }
        }

        /// The layout at `ordinal` (`TrLayout.all[ordinal]`).
        subscript(ordinal: Int) -> TrLayout { layouts[ordinal] }
    }
}
