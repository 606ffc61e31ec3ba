import ArgumentParser
import IngestCore

@main
struct IngestRecord: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest-record",
        abstract: "Capture raw KIS traffic with nanosecond receive times into an SQLite recording.",
        discussion: "Recording, import, export and synthetic sessions arrive with issue 3."
    )

    func run() throws {
        ProgramSupport.requireSupportedLibrdkafka()
        print(Self.helpMessage())
    }
}
