import Foundation

/// Builds the Prometheus text exposition format (version 0.0.4).
public struct PrometheusText {
    private var lines: [String] = []
    private var declared: Set<String> = []

    public init() {}

    private static func escape(_ v: String) -> String {
        v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Adds one sample, declaring the metric (HELP, TYPE) the first time it appears.
    public mutating func add(_ name: String, _ type: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []) {
        sample(name, type, help, suffix: "", value, labels)
    }

    mutating func addHistogramLine(_ name: String, _ help: String, suffix: String, _ value: Double, _ labels: [(String, String)]) {
        sample(name, "histogram", help, suffix: suffix, value, labels)
    }

    private mutating func sample(_ name: String, _ type: String, _ help: String, suffix: String, _ value: Double, _ labels: [(String, String)]) {
        if declared.insert(name).inserted {
            lines.append("# HELP \(name) \(help)")
            lines.append("# TYPE \(name) \(type)")
        }
        let labelText = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        let v = value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        lines.append("\(name)\(suffix)\(labelText) \(v)")
    }

    public var text: String { lines.joined(separator: "\n") + "\n" }
}
