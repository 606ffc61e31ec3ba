import Testing

@testable import IngestCore

/// The hot path finds a trade or order book TR by constants (`TrLayout.Table.marketOrdinal(word:)`,
/// `marketShape(_:)`): they must say what `TrLayout.all` says, for every TR, and nothing for the others.
@Suite struct TrLayoutTests {
    @Test func marketConstantsMatchTheLayouts() {
        for layout in TrLayout.all {
            let word = Array(layout.trID.utf8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            let ordinal = TrLayout.Table.marketOrdinal(word: word)
            switch layout.mapping {
            case .domesticTrade, .domesticBook, .overseasTrade, .overseasBook:
                #expect(ordinal == layout.ordinal, "\(layout.trID)")
                let shape = TrLayout.Table.marketShape(ordinal)
                #expect(shape.ordinal == layout.ordinal && shape.mapping == layout.mapping
                    && shape.documentedWidth == layout.documentedWidth, "\(layout.trID)")
            case .executionNotice:
                #expect(ordinal == -1, "\(layout.trID) is not a market TR")
            }
        }
        for other in ["H0STCNT1", "h0stcnt0", "H0STASP1", "HDFSCNT9", "PINGPONG", "00000000"] {
            let word = Array(other.utf8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            #expect(TrLayout.Table.marketOrdinal(word: word) == -1, "\(other)")
        }
    }
}
