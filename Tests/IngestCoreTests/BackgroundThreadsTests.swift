import Foundation
import Logging
import Synchronization
import Testing

@testable import IngestCore

/// `KIS_BACKGROUND_THREADS`: the policy and the name reach the kernel, for our own threads and librdkafka's.
@Suite(.serialized) struct BackgroundThreadsTests {
    /// Runs `body` on a new thread (which starts under the default policy) and returns what it returned.
    private func onNewThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let value = body()
            result.withLock { $0 = value }
            done.signal()
        }
        thread.start()
        done.wait()
        return result.withLock { $0! }
    }

    private static func comm(_ tid: String) -> String? {
        (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// This process's threads whose name starts with `prefix` and that run under `SCHED_BATCH`, as the kernel says
    /// (`sched_getscheduler` of each thread id).
    private static func batchThreads(_ prefix: String) -> Int {
        let tids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tids.filter { tid in
            guard Self.comm(tid)?.hasPrefix(prefix) == true, let id = Int32(tid) else { return false }
            return sched_getscheduler(id) == BackgroundThreads.schedBatch
        }.count
    }

    @Test func batchMovesTheThreadAndNamesIt() {
        let (batch, name) = onNewThread { () -> (Bool, String) in
            BackgroundThreads.batch.enterCurrentThread(name: "kis-test-helper-too-long")
            let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
            return (BackgroundThreads.currentThreadIsBatch, name.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(batch)
        #expect(name == "kis-test-helper", "15 bytes are kept: \(name)")
        let normal = onNewThread { () -> Bool in
            BackgroundThreads.normal.enterCurrentThread(name: "kis-test-normal")
            return BackgroundThreads.currentThreadIsBatch
        }
        #expect(!normal)
        #expect(!BackgroundThreads.currentThreadIsBatch, "the calling thread is left alone")
    }

    /// librdkafka's threads are moved from their start by the producer's `on_thread_start` interceptor, and only
    /// when asked. (No broker is needed: the main and internal broker threads start with the client.)
    @Test func producerThreadsFollowThePolicy() async throws {
        let before = Self.batchThreads("rdk:")
        let configuration = KafkaConfiguration(brokers: "127.0.0.1:9")
        do {
            let normal = try KafkaProducer(configuration: configuration, pollsOnOwnThread: false, backgroundThreads: .normal)
            try await Task.sleep(for: .milliseconds(300))
            #expect(Self.batchThreads("rdk:") == before, "a normal producer moved librdkafka threads")
            _ = normal
        }
        let batch = try KafkaProducer(configuration: configuration, pollsOnOwnThread: false, backgroundThreads: .batch)
        var moved = 0
        for _ in 0..<50 where moved < 2 {
            try await Task.sleep(for: .milliseconds(20))
            moved = Self.batchThreads("rdk:") - before
        }
        #expect(moved >= 2, "rdk:main and the broker threads should run under SCHED_BATCH; \(moved) do")
        _ = batch
    }

    /// The recorder's writer and checkpoint threads, and the pipeline thread.
    @Test func recorderAndPipelineThreads() throws {
        let names = ["recorder-writer", "recorder-ckpt", "ingest-pipeline"]
        let before = names.map { Self.batchThreads($0) }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("threads-\(UUID().uuidString).sqlite").path
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let recorder = try SessionRecorder(configuration: RecorderConfiguration(path: path, backgroundThreads: .batch),
                                           session: SessionInfo(startedAt: 1, sourceURL: "test", subscriptions: []))
        let buffer = FrameBuffer(capacity: 10)
        let engine = IngestEngine(buffer: buffer, producer: nil, topics: TopicConfiguration(), backgroundThreads: .batch,
                                  logger: Logger(label: "test"))
        engine.start()
        var after = before
        for _ in 0..<100 where zip(after, before).contains(where: { $0 <= $1 }) {
            Thread.sleep(forTimeInterval: 0.01)
            after = names.map { Self.batchThreads($0) }
        }
        buffer.close()
        engine.waitDrained()
        _ = recorder.close(endedAt: 2, reason: "test")
        for (name, (a, b)) in zip(names, zip(after, before)) {
            #expect(a == b + 1, "\(name): \(a - b) threads under SCHED_BATCH")
        }
    }
}
