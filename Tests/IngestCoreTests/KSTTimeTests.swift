import Testing

@testable import IngestCore

@Suite struct KSTTimeTests {
    static func ns(_ date: String, _ time: String) -> Int64? {
        let d = Array(date.utf8).withUnsafeBufferPointer { KSTTime.day(yyyymmdd: $0) }
        let t = Array(time.utf8).withUnsafeBufferPointer { KSTTime.secondOfDay(hhmmss: $0) }
        guard let d, let t else { return nil }
        return KSTTime.nanoseconds(kstDay: d, secondOfDay: t)
    }

    @Test func protocolReferenceExample() {
        // §14.1: 20230612 093354 KST → 1686530034000000000.
        #expect(Self.ns("20230612", "093354") == 1_686_530_034_000_000_000)
        #expect(Self.ns("20250730", "094751") == 1_753_836_471_000_000_000)
    }

    @Test func midnightKSTIsPreviousDayUTC() {
        // 2024-01-01 00:00:00 KST = 2023-12-31T15:00:00Z = 1704034800.
        #expect(Self.ns("20240101", "000000") == 1_704_034_800_000_000_000)
    }

    @Test(arguments: ["20231332", "20230229", "2023061", "2023O612", "19691231", ""])
    func rejectsBadDates(date: String) {
        #expect(Self.ns(date, "120000") == nil)
    }

    @Test(arguments: ["240000", "126000", "120060", "12345", "1200000", "12:00:"])
    func rejectsBadTimes(time: String) {
        #expect(Self.ns("20230612", time) == nil)
    }

    @Test func leapDay() {
        #expect(Self.ns("20240229", "090000") != nil)
    }

    @Test func kstDayOfReceiveTime() {
        // 2025-07-29T15:00:00Z is 2025-07-30 00:00 KST; one nanosecond earlier is still the 29th.
        let start: Int64 = 1_753_801_200_000_000_000
        #expect(KSTTime.kstDateString(ofNanoseconds: start) == "20250730")
        #expect(KSTTime.kstDateString(ofNanoseconds: start - 1) == "20250729")
        #expect(KSTTime.kstDateString(ofNanoseconds: 0) == "19700101")
    }

    @Test func civilRoundTrip() {
        for day in stride(from: Int64(-1000), through: 30000, by: 37) {
            let (y, m, d) = KSTTime.civilFromDays(day)
            #expect(KSTTime.daysFromCivil(year: y, month: m, day: d) == day)
        }
    }
}
