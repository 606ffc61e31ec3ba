/// The KRX price grid (tick sizes for stocks since 2023-01-25, KOSPI and KOSDAQ alike).
enum KRXTickSize {
    /// The tick size at a price.
    static func tick(at price: Int) -> Int {
        switch price {
        case ..<2000: 1
        case ..<5000: 5
        case ..<20000: 10
        case ..<50000: 50
        case ..<200_000: 100
        case ..<500_000: 500
        default: 1000
        }
    }

    /// The next price up on the grid.
    static func up(_ price: Int) -> Int { price + tick(at: price) }

    /// The next price down on the grid (the tick below a boundary is the smaller one).
    static func down(_ price: Int) -> Int {
        let candidate = price - tick(at: price - 1)
        return max(1, candidate)
    }

    /// Rounds down onto the grid.
    static func floor(_ price: Int) -> Int {
        let t = tick(at: price)
        return price / t * t
    }

    /// Daily price limits: ±30 % of the previous close, on the grid (upper rounded down, lower rounded up).
    static func limits(previousClose: Int) -> (lower: Int, upper: Int) {
        let upper = floor(previousClose * 13 / 10)
        var lower = previousClose * 7 / 10
        let t = tick(at: lower)
        if lower % t != 0 { lower = (lower / t + 1) * t }
        return (lower, upper)
    }
}
