internal import CRdKafka

/// Topic administration through an existing librdkafka handle.
enum KafkaAdmin {
    static func createTopics(_ rk: OpaquePointer, _ topics: [(name: String, partitions: Int)], timeout: Duration)
        throws(KafkaError)
    {
        guard !topics.isEmpty else { return }
        let ms = Int32(clamping: timeout.components.seconds * 1000)
        var errorBuffer = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { for t in newTopics { rd_kafka_NewTopic_destroy(t) } }
        for topic in topics {
            guard let t = rd_kafka_NewTopic_new(topic.name, Int32(topic.partitions), -1, &errorBuffer, errorBuffer.count)
            else {
                let reason = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                throw KafkaError(code: "admin", message: "topic \(topic.name): \(reason)")
            }
            newTopics.append(t)
        }
        let queue = rd_kafka_queue_new(rk)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        rd_kafka_AdminOptions_set_operation_timeout(options, ms, &errorBuffer, errorBuffer.count)
        newTopics.withUnsafeMutableBufferPointer { rd_kafka_CreateTopics(rk, $0.baseAddress, $0.count, options, queue) }
        guard let event = rd_kafka_queue_poll(queue, ms + 1000) else {
            throw KafkaError(code: "_TIMED_OUT", message: "creating topics timed out")
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(err, "creating topics failed")
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else { return }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return }
        for i in 0..<count {
            let r = results[i]
            let code = rd_kafka_topic_result_error(r)
            if code != RD_KAFKA_RESP_ERR_NO_ERROR && code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
                let name = String(cString: rd_kafka_topic_result_name(r))
                throw KafkaError(code, "creating topic \(name) failed")
            }
        }
    }
}
