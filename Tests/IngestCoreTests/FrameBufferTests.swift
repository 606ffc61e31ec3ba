import Foundation
import Synchronization
import Testing

@testable import IngestCore

/// An inline consumer that records what it processed, where, and whether two parties ever processed at once.
final class RecordingConsumer: InlineConsumer, @unchecked Sendable {
    let accepts = Atomic<Bool>(true)
    let inside = Atomic<Int>(0)
    let overlaps = Atomic<Int>(0)
    let inlineCount = Atomic<Int>(0)
    let seen = Mutex<[Int64]>([])

    func acceptsInline() -> Bool { accepts.load(ordering: .relaxed) }

    func consumeInline(_ item: InboundItem) {
        inlineCount.add(1, ordering: .relaxed)
        consume(item)
    }

    /// The work of either party: must never run twice at the same time.
    func consume(_ item: InboundItem) {
        if inside.add(1, ordering: .sequentiallyConsistent).newValue != 1 { overlaps.add(1, ordering: .relaxed) }
        if case .message(_, let at) = item { seen.withLock { $0.append(at) } }
        inside.subtract(1, ordering: .sequentiallyConsistent)
    }
}

@Suite struct FrameBufferTests {
    func message(_ i: Int64) -> InboundItem { .message("0|H0STCNT0|001|\(i)", receivedAt: i) }

    @Test func idleBufferProcessesOnThePushingThread() {
        let buffer = FrameBuffer(capacity: 4)
        let consumer = RecordingConsumer()
        buffer.setInlineConsumer(consumer)
        #expect(buffer.push(message(1)))
        // Processed before push returned, nothing queued.
        #expect(consumer.seen.withLock { $0 } == [1])
        #expect(buffer.count == 0)
        #expect(consumer.inlineCount.load(ordering: .relaxed) == 1)
    }

    @Test func queuesWhileTheConsumerThreadHoldsTheClaimAndKeepsOrder() {
        let buffer = FrameBuffer(capacity: 4)
        let consumer = RecordingConsumer()
        buffer.setInlineConsumer(consumer)
        guard case .idle = buffer.claim(timeout: .milliseconds(1)) else {
            Issue.record("an empty, idle buffer must be claimable")
            return
        }
        #expect(buffer.push(message(1)))
        #expect(buffer.push(message(2)))
        #expect(consumer.seen.withLock { $0 }.isEmpty)
        #expect(buffer.count == 2)
        buffer.release()
        // Something older is still queued: a new item must queue behind it, not overtake it inline.
        #expect(buffer.push(message(3)))
        #expect(consumer.seen.withLock { $0 }.isEmpty)
        for expected in [Int64(1), 2, 3] {
            guard case .item(let item) = buffer.claim(timeout: .milliseconds(1)) else {
                Issue.record("item \(expected) was not handed to the consumer thread")
                return
            }
            consumer.consume(item)
            buffer.release()
        }
        #expect(consumer.seen.withLock { $0 } == [1, 2, 3])
        // Drained and idle again: inline resumes.
        #expect(buffer.push(message(4)))
        #expect(consumer.seen.withLock { $0 } == [1, 2, 3, 4])
        #expect(consumer.inlineCount.load(ordering: .relaxed) == 1)
    }

    @Test func refusesInlineWhenTheConsumerDeclinesOrTheBufferIsClosed() {
        let buffer = FrameBuffer(capacity: 1)
        let consumer = RecordingConsumer()
        buffer.setInlineConsumer(consumer)
        consumer.accepts.store(false, ordering: .relaxed)
        #expect(buffer.push(message(1)))
        #expect(buffer.count == 1)
        // Full, declined: a data frame is refused, a control message is forced in.
        #expect(!buffer.push(message(2)))
        #expect(buffer.push(message(3), force: true))
        consumer.accepts.store(true, ordering: .relaxed)
        buffer.close()
        var drained: [Int64] = []
        while case .item(let item) = buffer.claim(timeout: .milliseconds(1)) {
            if case .message(_, let at) = item { drained.append(at) }
            buffer.release()
        }
        #expect(drained == [1, 3])
        #expect(consumer.inlineCount.load(ordering: .relaxed) == 0)
        guard case .closed = buffer.claim(timeout: .milliseconds(1)) else {
            Issue.record("a closed, drained buffer must say so")
            return
        }
    }

    /// A reader pushing 200 000 items while the consumer thread claims: every item is processed exactly once, in
    /// order, never by two parties at once, and both paths are used.
    @Test func concurrentReaderAndConsumerKeepOrder() {
        let total: Int64 = 200_000
        let buffer = FrameBuffer(capacity: 1_000_000)
        let consumer = RecordingConsumer()
        buffer.setInlineConsumer(consumer)
        let threadDone = DispatchSemaphore(value: 0)
        let thread = Thread {
            var rng = SplitMix64(seed: 7)
            loop: while true {
                switch buffer.claim(timeout: .microseconds(50)) {
                case .item(let item):
                    consumer.consume(item)
                    // Now and then, hold the claim for a while so that the reader has to queue.
                    if rng.next() % 64 == 0 { for _ in 0..<Int(rng.next() % 2000) { _ = rng.next() } }
                    buffer.release()
                case .idle:
                    if rng.next() % 4 == 0 { usleep(20) }
                    buffer.release()
                case .nothing:
                    continue loop
                case .closed:
                    break loop
                }
            }
            threadDone.signal()
        }
        thread.start()
        for i in 0..<total {
            #expect(buffer.push(message(i)))
        }
        buffer.close()
        threadDone.wait()
        let seen = consumer.seen.withLock { $0 }
        #expect(seen.count == Int(total))
        #expect(seen == Array(0..<total))
        #expect(consumer.overlaps.load(ordering: .relaxed) == 0)
        let inline = consumer.inlineCount.load(ordering: .relaxed)
        #expect(inline > 0 && inline < Int(total), "inline \(inline) of \(total)")
    }
}
