import ArgumentParser
import IngestCore

@main
struct IngestDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingestd",
        abstract: "The live daemon: KIS WebSocket → parser → market.tick / market.orderbook on Kafka, keyed by symbol.",
        discussion: "The live session arrives with issue 4; today this checks the environment (librdkafka ≥ 2.2)."
    )

    @Flag(help: "Check that the loaded librdkafka is usable and print its version.")
    var checkLibrdkafka = false

    func run() throws {
        ProgramSupport.requireSupportedLibrdkafka()
        if checkLibrdkafka {
            print("librdkafka \(RdKafkaVersion.loaded.text): ok (need ≥ \(RdKafkaVersion.describe(RdKafkaVersion.minimum)))")
            return
        }
        print(Self.helpMessage())
    }
}
