import ArgumentParser
import Foundation
import IngestCore
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a recording as a KIS-compatible endpoint (REST auth + WebSocket), for ingestd or any KIS client.",
        discussion: """
            REST: POST /oauth2/tokenP, /oauth2/Approval, /oauth2/revokeP (KIS's shapes; EGW00133 for a second token \
            within a minute). WebSocket on any path (e.g. /tryitout): subscribe/unsubscribe with KIS's JSON, acks with \
            key/iv, the recorded frames of the subscribed (tr_id, tr_key) pairs (notices re-encrypted with the key \
            handed out), PINGPONG every --pingpong-interval (clients that do not echo within --pingpong-timeout are \
            dropped), one session per app key (OPSP8996), 41 registrations (OPSP0008), unknown approval keys \
            (OPSP0011), duplicates (OPSP0002). Playback for a client starts once its subscribing has been quiet for \
            --start-delay and resumes where the app key's last session stopped. Admin: GET /admin/status; \
            POST /admin/fault {"action": "close" | "drop" | "silence" | "malformed" | "refuse-tokens" | \
            "forget-approval-keys" | "subscribe-errors" | "in-use", "seconds": N}. Binds to loopback unless told otherwise.
            """
    )

    @Argument(help: "Recording to serve.")
    var recording: String

    @Option(help: "Address to listen on (HOST:PORT; port 0 picks a free one).")
    var listen: String = "127.0.0.1:21000"

    @Option(help: "Playback speed (1 = recorded pacing); default: as fast as the client reads.")
    var speed: Double?

    @Option(help: "Constant frames per second, ignoring the recorded gaps (load tests); excludes --speed.")
    var rate: Double?

    @Option(help: "Serve only frames received at or after this time (ISO 8601 with zone, or ns).")
    var from: String?

    @Option(help: "Serve only frames received before this time.")
    var to: String?

    @Option(help: "PINGPONG period (Go duration).")
    var pingpongInterval: String = "100s"

    @Option(help: "How long a client may take to echo a PINGPONG (default: the period).")
    var pingpongTimeout: String?

    @Option(help: "Quiet time after a client's last subscribe before its playback starts.")
    var startDelay: String = "1s"

    @Option(help: "Tokens per app key: one per this interval (KIS: 1m).")
    var tokenInterval: String = "60s"

    @Option(help: "PEM certificate: serve wss:// and https://.")
    var tlsCert: String?

    @Option(help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Option(help: "Registrations per session before OPSP0008 MAX SUBSCRIBE OVER (KIS: 41).")
    var registrationLimit: Int = Subscription.perSessionLimit

    @Option(help: "Also serve /metrics, /healthz and /readyz on HOST:PORT (off unless given; /admin/status is always there).")
    var metricsAddress: String?

    @Option(help: "Write the bound port to this file once listening.")
    var portFile: String?

    func run() async throws {
        ProgramSupport.bootstrapLogging()
        func duration(_ name: String, _ text: String) throws -> Duration {
            guard let d = TimeParsing.duration(text), d > .zero else { throw ValidationError("--\(name) \"\(text)\" is not a positive duration such as 100s") }
            return d
        }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen \"\(listen)\" is not HOST:PORT (example: 127.0.0.1:21000)")
        }
        let host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if let speed, speed <= 0 || !speed.isFinite { throw ValidationError("--speed must be a positive number, got \(speed)") }
        if let rate, rate <= 0 || !rate.isFinite { throw ValidationError("--rate must be a positive number of frames per second, got \(rate)") }
        if speed != nil && rate != nil { throw ValidationError("--speed and --rate exclude each other") }
        guard registrationLimit >= 1 else { throw ValidationError("--registration-limit must be at least 1") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        func time(_ name: String, _ text: String?) throws -> Int64? {
            guard let text else { return nil }
            guard let ns = TimeParsing.nanoseconds(text) else { throw ValidationError("--\(name) \"\(text)\" is neither ns since the epoch nor ISO 8601 with a zone") }
            return ns
        }
        let options = ServeOptions(
            host: host, port: port, speed: speed, from: try time("from", from), to: try time("to", to), pingPongInterval: try duration("pingpong-interval", pingpongInterval),
            pingPongTimeout: try pingpongTimeout.map { try duration("pingpong-timeout", $0) },
            startDelay: try duration("start-delay", startDelay), registrationLimit: registrationLimit, tokenInterval: try duration("token-interval", tokenInterval),
            tlsCertificate: tlsCert, tlsKey: tlsKey, rate: rate)
        let server: KISServer
        do {
            server = try KISServer(recording: recording, options: options)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let bound = try await server.start()
        var endpoints: HTTPEndpointServer?
        if let metricsAddress {
            guard let address = HTTPEndpointServer.parseAddress(metricsAddress) else {
                throw ValidationError("--metrics-address \"\(metricsAddress)\" is not HOST:PORT (example: 127.0.0.1:9467)")
            }
            endpoints = try await HTTPEndpointServer.start(
                host: address.host, port: address.port,
                handler: OperationalEndpoints.handler(metrics: { server.status.metricsText() }, readiness: { (true, "ok") }))
        }
        if let portFile { try String(bound).write(toFile: portFile, atomically: true, encoding: .utf8) }
        let scheme = tlsCert == nil ? ("ws", "http") : ("wss", "https")
        FileHandle.standardError.write(Data("serve: \(server.status.totalFrames) frames of \(recording) on \(scheme.0)://\(host):\(bound)/tryitout and \(scheme.1)://\(host):\(bound)/oauth2/…\n".utf8))
        // Until SIGINT/SIGTERM.
        let stop = AsyncStream<Void>.makeStream()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { stop.continuation.finish() }
            source.resume()
            Self.keep.append(source)
        }
        for await _ in stop.stream {}
        await server.stop()
        await endpoints?.stop()
        let s = server.status
        FileHandle.standardError.write(Data("serve: stopped; \(s.framesSent) frames sent, \(s.connectionsTotal) connections, \(s.tokensIssued) tokens issued, \(s.tokensRefused) refused\n".utf8))
    }

    nonisolated(unsafe) static var keep: [any DispatchSourceSignal] = []
}
