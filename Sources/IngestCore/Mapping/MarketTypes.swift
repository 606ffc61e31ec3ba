/// Names for the generated Protobuf messages (proto package `kis.market.v1`).
public typealias TickData = Kis_Market_V1_TickData
public typealias OrderBook = Kis_Market_V1_OrderBook
public typealias BookLevel = Kis_Market_V1_Level
public typealias ExecutionNotice = Kis_Market_V1_ExecutionNotice

/// A market message produced from one record of a data frame.
public enum MarketEvent: Sendable, Equatable {
    case tick(TickData)
    case orderBook(OrderBook)
    case notice(ExecutionNotice)

    /// The event's own time in nanoseconds since the Unix epoch.
    public var timestamp: Int64 {
        switch self {
        case .tick(let t): t.timestamp
        case .orderBook(let b): b.timestamp
        case .notice(let n): n.timestamp
        }
    }

    /// The Kafka key: the instrument (notices: the account-side order's stock code).
    public var symbol: String {
        switch self {
        case .tick(let t): t.symbol
        case .orderBook(let b): b.symbol
        case .notice(let n): n.symbol
        }
    }
}
