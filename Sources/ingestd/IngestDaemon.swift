import ArgumentParser
import Dispatch
import Foundation
import IngestCore
import Logging

@main
struct IngestDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingestd",
        abstract: "The live daemon: KIS WebSocket → parser → market.tick / market.orderbook on Kafka, keyed by symbol.",
        discussion: """
            Configuration comes from the environment: KIS_API_KEY, KIS_API_SECRET, KIS_SUBSCRIPTIONS (required), \
            KIS_WEBSOCKET_URL, KIS_API_URL, KIS_RECONNECT_RETRIES (0 = unlimited), KIS_RECONNECT_DELAY, \
            KIS_HEARTBEAT_INTERVAL (watchdog), KIS_MESSAGE_BUFFER_SIZE, KIS_PIPELINE_INLINE, KIS_BACKGROUND_THREADS, KIS_TOKEN_CACHE_TTL, KIS_TOKEN_REFRESH_BEFORE, \
            REDIS_HOST/PORT/PASSWORD/DB, KAFKA_BROKERS, KAFKA_TOPIC_*, KAFKA_PROPERTY_*, METRICS_ADDRESS (default 127.0.0.1:9464, off to disable), \
            LOG_LEVEL. See README.md. \
            Exit codes: 0 after a graceful shutdown (SIGINT/SIGTERM), 1 on a start-up failure, 2 for bad \
            configuration, 3 when KIS_RECONNECT_RETRIES attempts in a row failed.
            """
    )

    @Option(help: "Also record the session (both directions, markers) into this new SQLite file.")
    var record: String?

    @Option(name: .customLong("set"), help: "NAME=VALUE: set a variable, over the environment and .env (repeatable).")
    var overrides: [String] = []

    @Flag(help: "Print the effective configuration (secrets masked) and exit.")
    var printConfig = false

    @Flag(help: "Check that the loaded librdkafka is usable, print its version and exit.")
    var checkLibrdkafka = false

    func run() async throws {
        ProgramSupport.bootstrapLogging(environment: (try? EffectiveEnvironment.load(overrides: overrides)) ?? ProcessInfo.processInfo.environment)
        ProgramSupport.requireSupportedLibrdkafka()
        if checkLibrdkafka {
            print("librdkafka \(RdKafkaVersion.loaded.text): ok (need ≥ \(RdKafkaVersion.describe(RdKafkaVersion.minimum)))")
            return
        }
        let logger = Logger(label: "ingestd")
        let configuration = DaemonConfiguration.fromEnvironmentOrExit(overrides: overrides)
        if printConfig {
            print(configuration.printable(), terminator: "")
            return
        }
        // The pipeline threads serve the producer's delivery reports themselves (see KafkaProducer).
        let producer = try KafkaProducer(
            configuration: configuration.kafka, logger: Logger(label: "kis.kafka"), pollsOnOwnThread: false,
            backgroundThreads: configuration.backgroundThreads, topics: configuration.topics.allTopics)
        let live = try LiveSession(configuration: configuration, producer: producer, recordPath: record, logger: logger)
        var endpoints: HTTPEndpointServer?
        if let (host, port) = configuration.metricsAddress {
            do {
                endpoints = try await live.startEndpoints(host: host, port: port)
                logger.info("metrics and health on http://\(host):\(endpoints!.port)/metrics, /healthz, /readyz")
            } catch {
                FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
                throw ExitCode(1)
            }
        }
        let code = await live.runUntilSignalled()
        await endpoints?.stop()
        if code != 0 { throw ExitCode(code) }
    }
}
