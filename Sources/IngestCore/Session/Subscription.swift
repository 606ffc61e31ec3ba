import Foundation

/// One KIS registration: a tr_id and its key (stock code, HTS ID, `DNASAAPL`, …).
public struct Subscription: Sendable, Hashable, CustomStringConvertible {
    public var trID: String
    public var trKey: String

    public init(trID: String, trKey: String) {
        self.trID = trID
        self.trKey = trKey
    }

    public var description: String { "\(trID):\(trKey)" }

    /// KIS allows 41 registrations per session, all TRs together.
    public static let perSessionLimit = 41

    /// Parses `KIS_SUBSCRIPTIONS`: comma-separated `TR_ID:KEY` pairs, or `TR_ID:KEY1|KEY2|…` for several keys
    /// (`H0STCNT0:005930|000660,H0STASP0:005930`). Throws a message naming the bad entry.
    public static func parseList(_ text: String) throws(ConfigurationError) -> [Subscription] {
        var result: [Subscription] = []
        for entry in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw ConfigurationError("KIS_SUBSCRIPTIONS: \"\(entry)\" is not TR_ID:KEY (example: H0STCNT0:005930,H0STASP0:005930)")
            }
            let tr = parts[0]
            guard (4...16).contains(tr.count), tr.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) else {
                throw ConfigurationError("KIS_SUBSCRIPTIONS: \"\(tr)\" is not a KIS tr_id such as H0STCNT0")
            }
            for key in parts[1].split(separator: "|").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                guard !key.isEmpty, key.count <= 32, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
                    throw ConfigurationError("KIS_SUBSCRIPTIONS: key \"\(key)\" of \(tr) is not a code such as 005930")
                }
                let s = Subscription(trID: tr, trKey: key)
                if !result.contains(s) { result.append(s) }
            }
        }
        guard !result.isEmpty else {
            throw ConfigurationError("KIS_SUBSCRIPTIONS is empty: set it to TR_ID:KEY pairs, e.g. H0STCNT0:005930,H0STASP0:005930")
        }
        return result
    }

    /// The subscribe (`tr_type` 1) or unsubscribe (2) request, exactly as KIS expects it.
    public func request(approvalKey: String, custType: String = "P", subscribe: Bool = true) -> String {
        "{\"header\":{\"approval_key\":\(JSONText.quote(approvalKey)),\"custtype\":\(JSONText.quote(custType)),\"tr_type\":\"\(subscribe ? "1" : "2")\",\"content-type\":\"utf-8\"},\"body\":{\"input\":{\"tr_id\":\(JSONText.quote(trID)),\"tr_key\":\(JSONText.quote(trKey))}}}"
    }
}

/// A configuration value that is missing or wrong: one line naming the variable, the value and a good example.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
