import Foundation

/// What the socket reader hands to the processing thread.
public enum InboundItem: Sendable {
    case message(String, receivedAt: Int64)
    /// A new connection: AES keys from before it are void.
    case connected(at: Int64)
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

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Appends; returns `false` (and drops the item) when the buffer is full and the item is a data frame.
    @discardableResult
    public func push(_ item: InboundItem, force: Bool = false) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if !force && items.count - head >= capacity { return false }
        items.append(item)
        condition.signal()
        return true
    }

    /// Takes the next item, waiting for one; `nil` once closed and drained.
    public func pop() -> InboundItem? {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count && !closed { condition.wait() }
        guard head < items.count else { return nil }
        let item = items[head]
        head += 1
        if head > 4096 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return item
    }

    /// What `pop(timeout:)` found.
    public enum Next {
        case item(InboundItem)
        case timedOut
        case closed
    }

    /// Takes the next item, waiting at most `timeout` for one.
    public func pop(timeout: Duration) -> Next {
        condition.lock()
        defer { condition.unlock() }
        if head == items.count && !closed {
            let deadline = Date(timeIntervalSinceNow: timeout.nanosecondsDouble / 1e9)
            while head == items.count && !closed {
                if !condition.wait(until: deadline) { break }
            }
        }
        guard head < items.count else { return closed ? .closed : .timedOut }
        let item = items[head]
        head += 1
        if head > 4096 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return .item(item)
    }

    /// No more items will come; `pop` returns what is left, then `nil`.
    public func close() {
        condition.lock()
        closed = true
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
