import Foundation
import Testing
import TestSupport

@testable import IngestCore

/// Serve mode reads the recording while serving, from checkpoints (issue 6, memory): a client resuming at any frame
/// must get exactly the frames, attributions and decrypted notices that reading from the start gives.
@Suite struct ServePlaybackTests {
    static let fixture = Corpus.root.appendingPathComponent("fixtures/session-small.sqlite").path
    static let fixtureV1 = Corpus.root.appendingPathComponent("fixtures/session-small.v1.sqlite").path

    static func frames(_ playback: ServePlayback, from first: Int) throws -> [(Int, PlaybackFrame)] {
        var seen: [(Int, PlaybackFrame)] = []
        try playback.forEach(from: first) { seen.append(($0, $1)) }
        return seen
    }

    /// `nil` when equal, else where the two first differ (a failure prints that, not two arrays of 4 000 frames).
    static func difference(_ a: [PlaybackFrame], _ b: ArraySlice<PlaybackFrame>) -> String? {
        if let i = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            return "first difference at offset \(i): \(a[i]) vs \(b[b.startIndex + i])"
        }
        return a.count == b.count ? nil : "\(a.count) frames instead of \(b.count)"
    }

    @Test(arguments: [fixture, fixtureV1])
    func resumingAtAnyFrameGivesWhatReadingFromTheStartGives(path: String) throws {
        // One checkpoint only: every frame comes from one reading from the start.
        let whole = try ServePlayback(path: path, from: nil, to: nil, checkpointInterval: .max)
        let reference = try Self.frames(whole, from: 0).map(\.1)
        #expect(reference.count == whole.count)
        let rows = try RecordingReader(path: path).all()
        let inbound = rows.filter { [.data, .encrypted, .unknown].contains($0.kind) }
        #expect(reference.count == inbound.count)
        #expect(reference.map(\.body).elementsEqual(inbound.map(\.body)))
        #expect(reference.map(\.receivedAt).elementsEqual(inbound.map(\.receivedAt)))
        // Every encrypted notice was decrypted with the key of its connection's ack.
        let encrypted = reference.indices.filter { reference[$0].plaintext != nil }
        #expect(encrypted.count == inbound.filter { $0.kind == .encrypted }.count)
        #expect(encrypted.count > 0)
        #expect(whole.pairs == Set(reference.compactMap { f -> Subscription? in
            guard let tr = f.trID, let key = f.trKey else { return nil }
            return Subscription(trID: tr, trKey: key)
        }))

        // A checkpoint every 97 frames: resuming anywhere (checkpoints, around them, each notice, the last frame,
        // the end) gives the same suffix with the same indices.
        let stepped = try ServePlayback(path: path, from: nil, to: nil, checkpointInterval: 97)
        #expect(stepped.count == whole.count)
        #expect(stepped.pairs == whole.pairs)
        let starts = [0, 1, 96, 97, 98, 193, 194, 2_000, reference.count - 1, reference.count] + encrypted
        for first in starts {
            let resumed = try Self.frames(stepped, from: first)
            #expect(resumed.map(\.0) == Array(first..<reference.count), "indices resuming at \(first)")
            let difference = Self.difference(resumed.map(\.1), reference[first...])
            #expect(difference == nil, "frames resuming at \(first)")
        }
        #expect(try Self.frames(stepped, from: reference.count + 5).isEmpty)
    }

    @Test func aTimeWindowAndAnEarlyStop() throws {
        let whole = try Self.frames(try ServePlayback(path: Self.fixture, from: nil, to: nil), from: 0).map(\.1)
        let from = whole[1_000].receivedAt
        let to = whole[3_000].receivedAt
        let window = try ServePlayback(path: Self.fixture, from: from, to: to, checkpointInterval: 50)
        let expected = whole.filter { $0.receivedAt >= from && $0.receivedAt < to }
        #expect(window.count == expected.count)
        #expect(Self.difference(try Self.frames(window, from: 0).map(\.1), expected[...]) == nil)
        #expect(Self.difference(try Self.frames(window, from: 120).map(\.1), expected[120...]) == nil)
        // A body that throws `Stop` ends the reading without an error.
        var seen = 0
        try window.forEach(from: 10) { _, _ in
            seen += 1
            if seen == 3 { throw ServePlayback.Stop() }
        }
        #expect(seen == 3)
    }
}
