import IngestCore
import Testing

@Suite struct ProgramSupportTests {
    /// The arena cap reaches glibc: `mallopt` is found and accepts the setting (it returns 0 for a refused one).
    @Test func mallocArenaCapIsApplied() {
        #expect(ProgramSupport.limitMallocArenas(to: 8, environment: [:]))
    }
}
