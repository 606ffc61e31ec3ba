import Foundation

/// What the socket reader hands to the processing thread.
public enum InboundItem: Sendable {
    case message(String, receivedAt: Int64)
    /// A new connection: AES keys from before it are void.
    case connected(at: Int64)
}

/// Processes items on the thread that pushes them, while the consumer thread has nothing to do (`FrameBuffer.push`).
public protocol InlineConsumer: AnyObject, Sendable {
    /// Whether an item may be processed on the pushing thread now; asked with the buffer locked, so it must be
    /// quick and must not touch the buffer.
    func acceptsInline() -> Bool
    func consumeInline(_ item: InboundItem)
}

/// The bounded hand-over between the socket reader and the processing thread: `push` never blocks; when full, data
/// frames are refused (the caller counts and logs them; the recorder already has them) while control messages and
/// connection events always get through.
public final class FrameBuffer: @unchecked Sendable {
    // @unchecked: guarded by `condition`.
    private let capacity: Int
    private let condition = NSCondition()
    private var items: [InboundItem] = []
    private var head = 0
    private var closed = false
    private var inline: (any InlineConsumer)?
    /// Someone (the inline consumer or the consumer thread) is processing an item.
    private var consuming = false

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Appends; returns `false` (and drops the item) when the buffer is full and the item is a data frame.
    ///
    /// With an inline consumer attached, an item that finds nothing queued and the consumer idle is processed right
    /// here, on the pushing thread, before `push` returns: no hand-over, no wake-up. Otherwise it is queued for the
    /// consumer thread. Order is kept either way: only one party consumes at a time, and an item is processed inline
    /// only when nothing older is waiting.
    @discardableResult
    public func push(_ item: InboundItem, force: Bool = false) -> Bool {
        condition.lock()
        if let inline, !consuming, head == items.count, !closed, inline.acceptsInline() {
            consuming = true
            condition.unlock()
            inline.consumeInline(item)
            condition.lock()
            consuming = false
            if head < items.count || closed { condition.signal() }
            condition.unlock()
            return true
        }
        defer { condition.unlock() }
        if !force && items.count - head >= capacity { return false }
        items.append(item)
        condition.signal()
        return true
    }

    /// Attaches the consumer that processes items on the pushing thread while it is idle; `nil` detaches it.
    public func setInlineConsumer(_ consumer: (any InlineConsumer)?) {
        condition.lock()
        inline = consumer
        condition.unlock()
    }

    /// Takes the next item, waiting for one; `nil` once closed and drained. (Without an inline consumer.)
    public func pop() -> InboundItem? {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count && !closed { condition.wait() }
        guard head < items.count else { return nil }
        return takeLocked()
    }

    private func takeLocked() -> InboundItem {
        let item = items[head]
        head += 1
        if head > 4096 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return item
    }

    /// What `claim(timeout:idle:)` found.
    public enum Claim {
        /// The next item; the caller is now the consumer and must call `release()` after processing it.
        case item(InboundItem)
        /// Nothing came within the timeout, nobody is consuming, and `idle` was asked for: the caller is the consumer
        /// until `release()` (to publish statistics, say).
        case idle
        /// Nothing came within the timeout (or the inline consumer is at work); the caller holds nothing.
        case nothing
        /// Closed and drained, nobody consuming.
        case closed
    }

    /// For the consumer thread: waits at most `timeout` for the next item while nobody consumes inline, and claims
    /// the consumer role for `.item` (and for `.idle` when `idle` is true) until `release()`.
    public func claim(timeout: Duration, idle: Bool = true) -> Claim {
        condition.lock()
        defer { condition.unlock() }
        if head == items.count || consuming {
            let deadline = Date(timeIntervalSinceNow: timeout.nanosecondsDouble / 1e9)
            while (head == items.count || consuming) && !(closed && head == items.count && !consuming) {
                if !condition.wait(until: deadline) { break }
            }
        }
        if consuming { return .nothing }
        if head == items.count && closed { return .closed }
        if head == items.count && !idle { return .nothing }
        consuming = true
        return head == items.count ? .idle : .item(takeLocked())
    }

    /// Ends a claim: the pushing thread may process inline again.
    public func release() {
        condition.lock()
        consuming = false
        condition.unlock()
    }

    /// No more items will come; `pop` returns what is left, then `nil`.
    public func close() {
        condition.lock()
        closed = true
        inline = nil
        condition.broadcast()
        condition.unlock()
    }

    public var isEmpty: Bool { count == 0 }

    public var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count - head
    }
}
