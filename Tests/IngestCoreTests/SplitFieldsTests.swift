internal import CKISScan
import Testing

@testable import IngestCore

/// `splitFields` scans 64 and 16 bytes at a time (`kis_scan_separators`); these compare it with a plain
/// byte-by-byte split, for every length across the block sizes and with too little room at every point.
@Suite struct SplitFieldsTests {
    /// The reference: offsets of every field start, then one past the end (+1).
    func reference(_ bytes: [UInt8]) -> [Int32] {
        var out: [Int32] = [0]
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "^") { out.append(Int32(i + 1)) }
        out.append(Int32(bytes.count + 1))
        return out
    }

    func split(_ bytes: [UInt8], startingWith capacity: Int) -> [Int32] {
        var starts = [Int32](repeating: -7, count: capacity)
        let n = bytes.withUnsafeBufferPointer { splitFields($0, into: &starts) }
        return Array(starts.prefix(n))
    }

    @Test func matchesAByteByByteSplit() {
        var rng = SplitMix64(seed: 42)
        // Bytes near '^' (0x5E) in every bit pattern the word trick could confuse, UTF-8 lead bytes, NUL.
        let alphabet: [UInt8] = [0x5E, 0x5E, 0x5E, 0x5F, 0x5D, 0xDE, 0x1E, 0x7E, 0x5C, 0x00, 0xFF, 0x80, 0x30, 0x39, 0xEC, 0x41]
        for round in 0..<5_000 {
            let length = Int(rng.next() % 700)
            let dense = round % 3 == 0
            let bytes = (0..<length).map { _ -> UInt8 in
                dense ? alphabet[Int(rng.next() % UInt64(alphabet.count))] : UInt8(truncatingIfNeeded: rng.next())
            }
            let expected = reference(bytes)
            #expect(split(bytes, startingWith: 0) == expected, "round \(round), \(length) bytes")
            #expect(split(bytes, startingWith: 1024) == expected, "round \(round), \(length) bytes")
        }
    }

    /// `kis_find_quote_or_backslash` (the recording reader's JSON string scan, sixteen bytes per compare) against a
    /// byte-by-byte search, for every start and length across the block size, with quotes, backslashes and their
    /// neighbours anywhere or nowhere.
    @Test func quoteOrBackslashMatchesAByteByByteSearch() {
        var rng = SplitMix64(seed: 7)
        let alphabet: [UInt8] = [0x22, 0x5C, 0x21, 0x23, 0x5B, 0x5D, 0xA2, 0xDC, 0x00, 0xFF, 0x41, 0x30]
        for round in 0..<1_000 {
            let length = Int(rng.next() % 100)
            let sparse = round % 2 == 0
            let bytes = (0..<length).map { _ -> UInt8 in
                let b = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                return sparse && (b == 0x22 || b == 0x5C) && rng.next() % 8 != 0 ? 0x41 : b
            }
            bytes.withUnsafeBufferPointer { p in
                for from in 0...length {
                    let expected = (from..<length).first { bytes[$0] == 0x22 || bytes[$0] == 0x5C } ?? length
                    let got = kis_find_quote_or_backslash(p.baseAddress ?? UnsafePointer(bitPattern: 1)!, from, length)
                    #expect(got == expected, "round \(round), from \(from), \(length) bytes")
                }
            }
        }
    }

    @Test func growsPastItsCapacityForEveryAlignment() {
        // All separators: the most fields per byte, so every word needs eight slots.
        for length in [0, 1, 7, 8, 9, 15, 16, 17, 62, 63, 64, 65, 79, 80, 81, 127, 128, 129, 1000] {
            let bytes = [UInt8](repeating: UInt8(ascii: "^"), count: length)
            #expect(split(bytes, startingWith: 0) == reference(bytes), "\(length) separators")
        }
        let field = Array("005930^093001^71900".utf8)
        let long = Array((0..<500).map { _ in field }.joined(separator: [UInt8(ascii: "^")]))
        #expect(split(long, startingWith: 64) == reference(long))
    }

    /// The AVX-512 scan (where this CPU has it) and the SSE2 scan: the same offsets on every input, resuming after
    /// running out of room anywhere.
    @Test(arguments: [1, 2])
    func bothScansMatchTheReference(level: Int32) {
        var rng = SplitMix64(seed: 7 + UInt64(level))
        let alphabet: [UInt8] = [0x5E, 0x5E, 0x5F, 0x5D, 0xDE, 0x1E, 0x00, 0xFF, 0x30, 0x39]
        for round in 0..<4_000 {
            let length = Int(rng.next() % 400)
            let bytes = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            // Room for `room` offsets at a time: the scan stops and resumes until it has seen every byte.
            let room = 1 + Int(rng.next() % 100)
            var out: [Int32] = [0]
            var scratch = [Int32](repeating: -7, count: room + 64)
            var position = 0
            bytes.withUnsafeBufferPointer { b in
                while true {
                    let n = scratch.withUnsafeMutableBufferPointer { s in
                        kis_scan_separators_at(level, b.baseAddress ?? UnsafePointer(bitPattern: 1)!, b.count, &position, s.baseAddress!, 0, s.count - 1)
                    }
                    out += scratch.prefix(n)
                    if position == b.count { break }
                }
            }
            out.append(Int32(bytes.count + 1))
            #expect(out == reference(bytes), "level \(level), round \(round), \(length) bytes, room \(room)")
        }
    }
}
