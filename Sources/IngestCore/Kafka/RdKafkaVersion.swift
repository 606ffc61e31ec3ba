internal import CRdKafka

/// The librdkafka version check every program runs at start.
///
/// librdkafka before 2.2 (Debian bookworm ships 2.0.2) mis-skips the tagged fields of the ApiVersions v3 response and
/// cannot talk to current brokers (`Protocol read buffer underflow for ApiVersion v3`; fixed upstream in 2.2).
public enum RdKafkaVersion {
    /// 2.2.0, in librdkafka's `0xMMmmrrpp` layout (`pp` = 0xFF for a release).
    public static let minimum: Int32 = 0x0202_00FF

    /// The version of the librdkafka actually loaded (which may differ from the one built against).
    public static var loaded: (number: Int32, text: String) {
        (rd_kafka_version(), String(cString: rd_kafka_version_str()))
    }

    /// `major.minor.revision` of a version number.
    public static func describe(_ version: Int32) -> String {
        "\((version >> 24) & 0xFF).\((version >> 16) & 0xFF).\((version >> 8) & 0xFF)"
    }

    /// Throws a `KafkaError` with code `version` that names the found and the needed version and what to do, when
    /// `version` is older than 2.2.0.
    public static func check(version: Int32, text: String) throws(KafkaError) {
        guard version < minimum else { return }
        throw KafkaError(
            code: "version",
            message: """
                librdkafka \(text) is loaded, but kis-ingest needs librdkafka \(describe(minimum)) or newer: versions \
                before 2.2 cannot talk to current Kafka brokers (ApiVersions v3 tagged fields are mis-read). Run \
                scripts/setup, which builds librdkafka 2.8.0 into .deps/librdkafka, and run the programs through \
                scripts/ or with LD_LIBRARY_PATH=.deps/librdkafka/lib so that copy is the one loaded.
                """)
    }

    /// Checks the loaded librdkafka.
    public static func checkLoaded() throws(KafkaError) {
        let (number, text) = loaded
        try check(version: number, text: text)
    }
}
