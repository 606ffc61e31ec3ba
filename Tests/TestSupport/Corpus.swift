import Foundation

/// The KIS message corpus in fixtures/kis-frames: items with their `# key: value` metadata and message lines.
public struct CorpusItem {
    public var file: String
    public var name: String
    public var metadata: [String: String]
    public var lines: [String]
}

public enum Corpus {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    public static let directory = root.appendingPathComponent("fixtures/kis-frames")

    public static func items(_ file: String) throws -> [CorpusItem] {
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        var items: [CorpusItem] = []
        var current: CorpusItem?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line == "# ---" {
                if let c = current { items.append(c) }
                current = CorpusItem(file: file, name: "", metadata: [:], lines: [])
            } else if line.hasPrefix("# ") {
                guard current != nil else { continue }
                let body = line.dropFirst(2)
                if let colon = body.firstIndex(of: ":") {
                    let key = String(body[..<colon])
                    let value = body[body.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    if !key.contains(" ") {
                        current!.metadata[key] = value
                        if key == "item" { current!.name = value }
                    }
                }
            } else if !line.isEmpty {
                current?.lines.append(line)
            }
        }
        if let c = current { items.append(c) }
        return items
    }

    public static func item(_ file: String, _ name: String) throws -> CorpusItem {
        guard let item = try items(file).first(where: { $0.name == name }) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "no item \(name) in \(file)"])
        }
        return item
    }

    public static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".txt") }.sorted()
    }
}
