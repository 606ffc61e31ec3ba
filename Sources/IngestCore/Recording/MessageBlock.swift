internal import CKISScan

/// Format 2's unit of storage: the messages of one committed batch in one row of `message_blocks`.
///
/// `frames` is a JSON array with one element per message, in sequence order (`seq = first_seq + index`):
/// `[recv_ns - min_ns, kind, tr_id or null, body]`. One row per batch instead of one per message is what lets the
/// recorder keep up with a million frames a second (SQLite's per-row cost was 2.2 µs); JSON keeps the file readable
/// with `sqlite3` alone, through the `message_rows` and `messages_readable` views.
package enum MessageBlock {
    /// At most this many messages per block (a huge `--batch-size` is split, so a row never nears SQLite's 1 GB limit).
    /// (Readers hold one block's text at a time: bigger blocks only add memory. The recorder's default batch is
    /// 1 000.)
    static let maxMessages = 1024
    /// A block is closed once its JSON passes this many bytes.
    static let maxBytes = 1 << 20

    /// Appends the JSON array of the longest prefix of `batch` that fits one block (sequence numbers contiguous, at
    /// most `maxMessages`, about `maxBytes`) to `out`; returns how many messages it took and their time range.
    package static func encode(
        _ batch: ArraySlice<RecordedMessage>, into out: inout [UInt8]
    ) -> (count: Int, minNs: Int64, maxNs: Int64) {
        guard let first = batch.first else { return (0, 0, 0) }
        var end = batch.startIndex + 1
        var minNs = first.receivedAt
        var maxNs = first.receivedAt
        while end < batch.endIndex, end - batch.startIndex < maxMessages, batch[end].seq == batch[end - 1].seq + 1 {
            minNs = min(minNs, batch[end].receivedAt)
            maxNs = max(maxNs, batch[end].receivedAt)
            end += 1
        }
        out.append(UInt8(ascii: "["))
        var taken = 0
        for m in batch[batch.startIndex..<end] {
            if taken > 0 {
                if out.count >= maxBytes { break }
                out.append(UInt8(ascii: ","))
            }
            out.append(UInt8(ascii: "["))
            appendInteger(m.receivedAt &- minNs, to: &out)
            out.append(UInt8(ascii: ","))
            appendInteger(Int64(m.kind.rawValue), to: &out)
            out.append(UInt8(ascii: ","))
            if var trID = m.trID {
                trID.withUTF8 { appendString($0, to: &out) }
            } else {
                out.append(contentsOf: [UInt8(ascii: "n"), UInt8(ascii: "u"), UInt8(ascii: "l"), UInt8(ascii: "l")])
            }
            out.append(UInt8(ascii: ","))
            var body = m.body
            body.withUTF8 { appendString($0, to: &out) }
            out.append(UInt8(ascii: "]"))
            taken += 1
        }
        out.append(UInt8(ascii: "]"))
        if taken < end - batch.startIndex {
            // Cut by size: the range covers only what was taken.
            let kept = batch[batch.startIndex..<(batch.startIndex + taken)]
            minNs = kept.lazy.map(\.receivedAt).min() ?? minNs
            maxNs = kept.lazy.map(\.receivedAt).max() ?? maxNs
        }
        return (taken, minNs, maxNs)
    }

    static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var n = 20
            repeat {
                n -= 1
                digits[n] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[n...]))
        }
    }

    /// Appends `bytes` as a JSON string: `"` and `\` and control characters escaped, everything else (UTF-8
    /// included) verbatim, in runs.
    static func appendString(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        guard let base = bytes.baseAddress else {
            out.append(UInt8(ascii: "\""))
            return
        }
        let raw = UnsafeRawPointer(base)
        var run = 0
        var i = 0
        while i < bytes.count {
            // Eight bytes at a time while none needs escaping.
            if i + 8 <= bytes.count {
                let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                if !needsEscape(w) {
                    i += 8
                    continue
                }
            }
            let b = base[i]
            if b >= 0x20 && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") {
                i += 1
                continue
            }
            if run < i { out.append(contentsOf: UnsafeBufferPointer(start: base + run, count: i - run)) }
            out.append(UInt8(ascii: "\\"))
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(b)
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "t"))
            default:
                func hex(_ d: UInt8) -> UInt8 { d < 10 ? UInt8(ascii: "0") + d : UInt8(ascii: "a") + d - 10 }
                out.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex(b >> 4), hex(b & 15)])
            }
            i += 1
            run = i
        }
        if run < bytes.count { out.append(contentsOf: UnsafeBufferPointer(start: base + run, count: bytes.count - run)) }
        out.append(UInt8(ascii: "\""))
    }

    /// `true` when one of the eight bytes is `"`, `\` or below 0x20 (bytes of 0x80 and above never are).
    @inline(__always)
    static func needsEscape(_ w: UInt64) -> Bool {
        SWAR.hasByte(w, 0x22) || SWAR.hasByte(w, 0x5C) || SWAR.hasByte(w, below: 0x20)
    }

    /// One message of a block, its strings borrowed for the call.
    package struct Frame {
        package let index: Int
        package let offsetNs: Int64
        package let kind: Int64
        package let trID: UnsafeBufferPointer<UInt8>?
        package let body: UnsafeBufferPointer<UInt8>
    }

    /// Why a block's JSON could not be read: what was expected, and at which byte.
    package struct Malformed: Error, Equatable {
        package let offset: Int
        package let expected: String
    }

    /// Calls `frame` for each message of a block's JSON, in order. Strings without escapes are borrowed from `text`;
    /// escaped ones are decoded into `scratch`. Any JSON whitespace between tokens is accepted (a hand edit), and so
    /// is every escape JSON has (`\uXXXX` and surrogate pairs included; a lone surrogate becomes U+FFFD, as SQLite
    /// reads it). Returns the number of messages.
    @discardableResult
    package static func decode(
        _ text: UnsafeBufferPointer<UInt8>, scratch: inout [UInt8], _ frame: (Frame) throws -> Void
    ) throws -> Int {
        var p = Parser(bytes: text)
        p.skipSpace()
        try p.expect(UInt8(ascii: "["), "[ opening the block")
        p.skipSpace()
        var index = 0
        if p.peek == UInt8(ascii: "]") {
            p.i += 1
        } else {
            while true {
                try p.expect(UInt8(ascii: "["), "[ opening message \(index)")
                let offset = try p.integer("message \(index)'s receive-time offset")
                try p.comma()
                let kind = try p.integer("message \(index)'s kind")
                try p.comma()
                scratch.removeAll(keepingCapacity: true)
                p.skipSpace()
                let trID: Parser.Text?
                if p.peek == UInt8(ascii: "n") {
                    try p.literal("null")
                    trID = nil
                } else {
                    trID = try p.string("message \(index)'s tr_id", scratch: &scratch)
                }
                try p.comma()
                p.skipSpace()
                let body = try p.string("message \(index)'s body", scratch: &scratch)
                p.skipSpace()
                try p.expect(UInt8(ascii: "]"), "] closing message \(index)")
                try scratch.withUnsafeBufferPointer { s in
                    try frame(
                        Frame(index: index, offsetNs: offset, kind: kind, trID: trID.map { $0.resolve(text, s) },
                              body: body.resolve(text, s)))
                }
                index += 1
                p.skipSpace()
                if p.peek == UInt8(ascii: ",") {
                    p.i += 1
                    p.skipSpace()
                    continue
                }
                try p.expect(UInt8(ascii: "]"), ", or ] after message \(index - 1)")
                break
            }
        }
        p.skipSpace()
        guard p.i == text.count else { throw Malformed(offset: p.i, expected: "the end of the block") }
        return index
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0

        /// A decoded string: a range of the block's text, or of `scratch`.
        enum Text {
            case borrowed(Int, Int)
            case decoded(Int, Int)

            func resolve(_ text: UnsafeBufferPointer<UInt8>, _ scratch: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
                switch self {
                case .borrowed(let start, let count): UnsafeBufferPointer(rebasing: text[start..<(start + count)])
                case .decoded(let start, let count): UnsafeBufferPointer(rebasing: scratch[start..<(start + count)])
                }
            }
        }

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        var peek: UInt8 { i < bytes.count ? bytes[i] : 0 }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func expect(_ byte: UInt8, _ what: @autoclosure () -> String) throws(Malformed) {
            guard peek == byte else { throw Malformed(offset: i, expected: what()) }
            i += 1
        }

        mutating func comma() throws(Malformed) {
            skipSpace()
            try expect(UInt8(ascii: ","), ",")
        }

        mutating func literal(_ word: StaticString) throws(Malformed) {
            let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
            guard i + w.count <= bytes.count, bytes[i..<(i + w.count)].elementsEqual(w) else {
                throw Malformed(offset: i, expected: "\(word)")
            }
            i += w.count
        }

        mutating func integer(_ what: @autoclosure () -> String) throws(Malformed) -> Int64 {
            skipSpace()
            let start = i
            let negative = peek == UInt8(ascii: "-")
            if negative { i += 1 }
            var value: Int64 = 0
            var digits = 0
            while i < bytes.count, bytes[i] &- UInt8(ascii: "0") < 10 {
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(bytes[i] &- UInt8(ascii: "0")))
                guard !o1, !o2 else { throw Malformed(offset: start, expected: "\(what()) (an integer that fits 64 bits)") }
                value = a
                digits += 1
                i += 1
            }
            guard digits > 0 else { throw Malformed(offset: start, expected: "\(what()) (an integer)") }
            return negative ? -value : value
        }

        mutating func string(_ what: @autoclosure () -> String, scratch: inout [UInt8]) throws(Malformed) -> Text {
            guard peek == UInt8(ascii: "\"") else { throw Malformed(offset: i, expected: "\(what()) (a string)") }
            i += 1
            let start = i
            // Fast path: no escape before the closing quote, sixteen bytes per compare (the replay's reader spent a
            // third of its time here with eight-byte words).
            i = kis_find_quote_or_backslash(bytes.baseAddress!, i, bytes.count)
            if i < bytes.count, bytes[i] == UInt8(ascii: "\"") {
                i += 1
                return .borrowed(start, i - 1 - start)
            }
            guard i < bytes.count else { throw Malformed(offset: start - 1, expected: "\(what()) (a string closed by \")") }
            // Escapes: decode into scratch.
            let from = scratch.count
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i]))
            while true {
                guard i < bytes.count else { throw Malformed(offset: start - 1, expected: "\(what()) (a string closed by \")") }
                let b = bytes[i]
                if b == UInt8(ascii: "\"") {
                    i += 1
                    return .decoded(from, scratch.count - from)
                }
                if b != UInt8(ascii: "\\") {
                    scratch.append(b)
                    i += 1
                    continue
                }
                let escapeAt = i
                i += 1
                switch peek {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(peek)
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"):
                    i += 1
                    var scalar = try hex4(escapeAt)
                    if (0xD800..<0xDC00).contains(scalar), i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"),
                        bytes[i + 1] == UInt8(ascii: "u")
                    {
                        let save = i
                        i += 2
                        let low = try hex4(save)
                        if (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            i = save
                        }
                    }
                    let s = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    scratch.append(contentsOf: UTF8.encode(s)!)
                    continue
                default: throw Malformed(offset: escapeAt, expected: "a JSON escape in \(what())")
                }
                i += 1
            }
        }

        private mutating func hex4(_ escapeAt: Int) throws(Malformed) -> UInt32 {
            guard i + 4 <= bytes.count else { throw Malformed(offset: escapeAt, expected: "\\u and four hex digits") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let b = bytes[i]
                let d: UInt8
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
                default: throw Malformed(offset: escapeAt, expected: "\\u and four hex digits")
                }
                v = v << 4 | UInt32(d)
                i += 1
            }
            return v
        }
    }
}
