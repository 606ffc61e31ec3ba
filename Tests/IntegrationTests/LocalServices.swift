import Foundation
import Testing

/// The real local services the integration tests use, started by scripts/test (scripts/services).
enum LocalServices {
    static var kafkaBrokers: String {
        get throws {
            try #require(
                ProcessInfo.processInfo.environment["KIS_TEST_KAFKA_BROKERS"],
                "KIS_TEST_KAFKA_BROKERS is not set: run the tests through scripts/test, which starts the broker")
        }
    }

    static var redisPort: Int {
        get throws {
            let text = try #require(
                ProcessInfo.processInfo.environment["KIS_TEST_REDIS_PORT"],
                "KIS_TEST_REDIS_PORT is not set: run the tests through scripts/test, which starts redis-server")
            return try #require(Int(text))
        }
    }

    /// A topic prefix no other test or run uses.
    static func uniquePrefix(_ name: String) -> String {
        "test-\(name)-\(UUID().uuidString.prefix(8).lowercased())."
    }
}

/// The Java client's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), written here independently of
/// librdkafka so the test can check that librdkafka's `murmur2_random` partitioner agrees with Java.
func javaMurmur2(_ data: [UInt8]) -> Int32 {
    let length = data.count
    let m: UInt32 = 0x5bd1_e995
    var h: UInt32 = 0x9747_b28c ^ UInt32(length)
    for i in 0..<(length / 4) {
        let j = i * 4
        var k = UInt32(data[j]) | UInt32(data[j + 1]) << 8 | UInt32(data[j + 2]) << 16 | UInt32(data[j + 3]) << 24
        k = k &* m
        k ^= k >> 24
        k = k &* m
        h = h &* m
        h ^= k
    }
    let tail = length & ~3
    switch length % 4 {
    case 3:
        h ^= UInt32(data[tail + 2]) << 16
        h ^= UInt32(data[tail + 1]) << 8
        h ^= UInt32(data[tail])
        h = h &* m
    case 2:
        h ^= UInt32(data[tail + 1]) << 8
        h ^= UInt32(data[tail])
        h = h &* m
    case 1:
        h ^= UInt32(data[tail])
        h = h &* m
    default: break
    }
    h ^= h >> 13
    h = h &* m
    h ^= h >> 15
    return Int32(bitPattern: h)
}

func javaPartition(_ key: String, partitions: Int) -> Int32 {
    Int32(Int(UInt32(bitPattern: javaMurmur2(Array(key.utf8))) & 0x7fff_ffff) % partitions)
}
