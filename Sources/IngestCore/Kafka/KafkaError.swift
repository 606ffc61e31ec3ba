internal import CRdKafka

/// An error from librdkafka or from the producer's own checks, with librdkafka's error name when there is one.
public struct KafkaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// librdkafka's error name (`_QUEUE_FULL`, `_MSG_TIMED_OUT`, …) or one of ours (`version`, `configuration`).
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    init(_ err: rd_kafka_resp_err_t, _ context: String) {
        self.code = String(cString: rd_kafka_err2name(err))
        self.message = "\(context): \(String(cString: rd_kafka_err2str(err)))"
    }

    /// The local producer queue is full (`queue.buffering.max.messages` or `…kbytes`): back off or count a drop.
    public var isQueueFull: Bool { code == "_QUEUE_FULL" }

    public var description: String { message }
}
