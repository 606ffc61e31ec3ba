import Testing

@testable import IngestCore

@Suite struct LenientNumberTests {
    static func double(_ s: String) -> Double? {
        Array(s.utf8).withUnsafeBufferPointer { LenientNumber.double($0) }
    }

    static func int(_ s: String) -> Int64? {
        Array(s.utf8).withUnsafeBufferPointer { LenientNumber.int64($0) }
    }

    static let numbers: [(String, Double)] = [
        ("71900", 71900.0), ("-0.14", -0.14), ("+1.91", 1.91), ("000071900", 71900.0), ("72023.83", 72023.83),
        ("259.0200", 259.02), ("-100.00", -100.0), ("0", 0.0), ("0.00", 0.0), ("-72000", -72000.0), (".5", 0.5),
        ("12345678901234567890", 12345678901234567890.0), ("3.14159265358979323846", 3.14159265358979323846),
    ]

    @Test(arguments: numbers)
    func parsesNumbers(text: String, expected: Double) {
        #expect(Self.double(text) == expected)
        // Equal to the standard library's correctly rounded conversion.
        #expect(Self.double(text) == Double(text.hasPrefix("+") ? String(text.dropFirst()) : text))
    }

    @Test(arguments: ["", "(null)", "nan", "-nan", "inf", "-", "+", "1.2.3", "12a", " 1", "1,000", "."])
    func rejectsNonNumbers(text: String) {
        #expect(Self.double(text) == nil)
    }

    /// Random digit strings (leading zeros, a point anywhere, signs, up to 24 characters, a stray character now and
    /// then) against the standard library, which converts with correct rounding: the same value, or both reject.
    @Test func agreesWithTheStandardLibraryOnRandomText() {
        var rng = SplitMix64(seed: 7)
        let alphabet = Array("0000123456789.".utf8)
        for round in 0..<20_000 {
            var bytes: [UInt8] = []
            switch rng.next() % 4 {
            case 0: bytes.append(UInt8(ascii: "-"))
            case 1: bytes.append(UInt8(ascii: "+"))
            default: break
            }
            let length = Int(rng.next() % 25)
            for _ in 0..<length { bytes.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
            if round % 50 == 0, !bytes.isEmpty { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(ascii: "x") }
            let text = String(decoding: bytes, as: UTF8.self)
            let body = text.hasPrefix("+") || text.hasPrefix("-") ? text.dropFirst() : Substring(text)
            let points = body.filter { $0 == "." }.count
            let digits = body.filter { $0.isASCII && $0.isNumber }.count
            let wellFormed = points <= 1 && digits > 0 && digits + points == body.count
            let expected = wellFormed ? Double(text.hasPrefix("+") ? String(text.dropFirst()) : text) : nil
            #expect(Self.double(text) == expected, "\(text)")
        }
    }

    @Test func integers() {
        #expect(Self.int("000003190") == 3190)
        #expect(Self.int("-19") == -19)
        #expect(Self.int("+7") == 7)
        #expect(Self.int("") == nil)
        #expect(Self.int("(null)") == nil)
        #expect(Self.int("1.5") == nil)
        #expect(Self.int("9223372036854775807") == Int64.max)
        #expect(Self.int("9223372036854775808") == nil)
    }

    /// The word-at-a-time variants read eight bytes ending at the field's end, so the bytes before a short field are
    /// in the word: with every kind of byte there (digits, points, signs, the separator), for every field of up to
    /// ten bytes drawn from the characters numbers are made of, they must give what the byte loops give.
    @Test func wordAtATimeAgreesWithTheByteLoops() {
        var rng = SplitMix64(seed: 0xF1E1D)
        let alphabet = Array("0123456789000.-+^x".utf8)
        let before = Array("0123456789.-+^|xÿ".utf8)
        var checked = 0
        for _ in 0..<200_000 {
            let length = Int(rng.next() % 11)
            let field = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            let prefix = (0..<8).map { _ in before[Int(rng.next() % UInt64(before.count))] }
            let buffer = prefix + field
            buffer.withUnsafeBufferPointer { all in
                let bytes = UnsafeBufferPointer(rebasing: all[8...])
                let expectedDouble = LenientNumber.double(bytes)
                let expectedInt = LenientNumber.int64(bytes)
                let gotDouble = LenientNumber.double(bytes, readableFrom: all.baseAddress!)
                let gotInt = LenientNumber.int64(bytes, readableFrom: all.baseAddress!)
                let text = String(decoding: field, as: UTF8.self)
                #expect(gotDouble?.bitPattern == expectedDouble?.bitPattern, "double \"\(text)\"")
                #expect(gotInt == expectedInt, "int64 \"\(text)\"")
                // Without readable bytes before it, the field takes the byte loop: the same again.
                #expect(LenientNumber.double(bytes, readableFrom: bytes.baseAddress ?? all.baseAddress!)?.bitPattern
                    == expectedDouble?.bitPattern)
            }
            checked += 1
        }
        #expect(checked == 200_000)
    }

    @Test(arguments: ["5.", ".5", "-.5", "+.5", "-5.", "0.", "-0", "-0.00", "00000000", "99999999", "9999999.", ".9999999",
                      "+9999999", "-1234567", "1.234567", "12345678"])
    func wordAtATimeEdgeCases(text: String) {
        let buffer = Array("00000000".utf8) + Array(text.utf8)
        buffer.withUnsafeBufferPointer { all in
            let bytes = UnsafeBufferPointer(rebasing: all[8...])
            #expect(LenientNumber.double(bytes, readableFrom: all.baseAddress!)?.bitPattern == LenientNumber.double(bytes)?.bitPattern)
            #expect(LenientNumber.int64(bytes, readableFrom: all.baseAddress!) == LenientNumber.int64(bytes))
            #expect(LenientNumber.double(bytes) != nil, "\(text) is a number")
        }
    }
}
