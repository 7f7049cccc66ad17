import FieldbookModel
import Foundation
import SyncCore
import Testing

/// The binary form of the sync messages: it carries exactly what the JSON form carries, and
/// malformed bytes are refused with an error naming the part, never a crash.
@Suite struct BinaryWireTests {
    static let ids = ["inc-00001", "inc-00002", "inc-00010", "Қайырбек", "Қайырбек-2", "Qaiyrbek", "😀-1", "😀-2", "x",
                      "3f2b1c9e-1a2b-4c3d-8e9f-000000000001", "3f2b1c9e-1a2b-4c3d-8e9f-000000000002"]
    static let texts = ["", "Asqar", "ст. 405 ч. 1 УК РК", "line one\nline two", "\"quoted\", comma", "😀"]

    /// A random changeset in canonical form (rows of a table in id order, fields in column order).
    static func randomChangeset(_ rng: inout SplitMix64) -> Changeset {
        let siteCount = Int(rng.next() % 3) + 1
        let sites = (0..<siteCount).map { _ in SiteID.random() }
        var names: [String?] = []
        if rng.next() % 2 == 0 { names = sites.indices.map { i in rng.next() % 3 == 0 ? nil : "laptop \(i)" } }
        var tables: [TableChanges] = []
        for t in ["person", "incident"] where rng.next() % 4 != 0 {
            let fields = ["region", "name", "born", "fine_amount"]
            var rows: [RowChange] = []
            for id in ids.shuffled(using: &rng).prefix(Int(rng.next() % 8)).sorted() {
                let hlc = Int64(rng.next() % (1 << 60))
                let cl = Int64(rng.next() % 5) + 1
                var row = RowChange(id: id, cl: cl, hlc: hlc, site: Int(rng.next() % UInt64(siteCount)))
                if cl % 2 == 1 {
                    for f in fields.indices where rng.next() % 2 == 0 {
                        let value: Value
                        switch rng.next() % 4 {
                        case 0: value = .null
                        case 1: value = .integer(Int64(bitPattern: rng.next()))
                        case 2: value = .real(Double(Int64(rng.next() % 2_000_000)) / 100 - 10_000)
                        default: value = .text(texts[Int(rng.next() % UInt64(texts.count))])
                        }
                        row.fields.append(FieldChange(field: f, value: value, hlc: hlc &+ Int64(rng.next() % 5000) - 2500,
                                                      site: Int(rng.next() % UInt64(siteCount))))
                    }
                }
                rows.append(row)
            }
            tables.append(TableChanges(table: t, fields: fields, rows: rows))
        }
        return Changeset(sites: sites, tables: tables, siteNames: names)
    }

    /// The changeset as the wire gives it back: only the fields that carry a change are listed.
    static func normalized(_ cs: Changeset) throws -> Changeset {
        try WireChangeset(cs).changeset()
    }

    @Test func binaryAndJSONCarryTheSameChangesets() throws {
        let seed: UInt64 = 20_261_121
        var rng = SplitMix64(seed: seed)
        for round in 0..<500 {
            let cs = Self.randomChangeset(&rng)
            let wire = WireChangeset(cs)
            let viaBinary = try WireChangeset(binary: wire.binary()).changeset()
            let viaJSON = try JSONDecoder().decode(WireChangeset.self, from: JSONEncoder().encode(wire)).changeset()
            #expect(viaBinary == viaJSON, "seed \(seed), round \(round)")
            #expect(viaBinary.tables.map { $0.rows.map(\.id) } == cs.tables.map { $0.rows.map(\.id) }, "seed \(seed), round \(round)")
            #expect(viaBinary.changeCount == cs.changeCount, "seed \(seed), round \(round)")

            let push = PushRequest(site: cs.sites[0], from: Int64(round), to: Int64(round + 7), changes: wire)
            let back = try PushRequest(binary: push.binary())
            #expect(back.site == push.site && back.from == push.from && back.to == push.to)
            #expect(try back.changes.changeset() == viaJSON)

            let pull = PullResponse(changes: wire, cursor: "c1.\(round)", more: round % 2 == 0)
            let again = try PullResponse(binary: pull.binary())
            #expect(again.cursor == pull.cursor && again.more == pull.more)
            #expect(try again.changes.changeset() == viaJSON)
        }
    }

    @Test func everyTruncationIsRefusedWithAnError() throws {
        var rng = SplitMix64(seed: 7)
        var cs = Self.randomChangeset(&rng)
        while cs.changeCount < 5 { cs = Self.randomChangeset(&rng) }
        let bytes = PushRequest(site: cs.sites[0], from: 0, to: 1, changes: WireChangeset(cs)).binary()
        for n in 0..<bytes.count {
            #expect(throws: ModelError.self, "\(n) of \(bytes.count) bytes") { try PushRequest(binary: Array(bytes[0..<n])) }
        }
        #expect(throws: ModelError.self) { try PushRequest(binary: bytes + [0]) }
    }

    @Test func corruptedBytesNeverCrashTheDecoder() throws {
        let seed: UInt64 = 4242
        var rng = SplitMix64(seed: seed)
        for round in 0..<2_000 {
            let cs = Self.randomChangeset(&rng)
            var bytes = PushRequest(site: cs.sites[0], from: 0, to: 1, changes: WireChangeset(cs)).binary()
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = Int(rng.next() % UInt64(bytes.count))
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            // Either it decodes into a changeset that passes the wire checks and survives a round
            // trip unchanged, or it is refused with an error naming the part and the problem.
            do {
                let request = try PushRequest(binary: bytes)
                let decoded = try request.changes.changeset()
                var sound = true
                for t in decoded.tables {
                    for r in t.rows {
                        if r.site >= decoded.sites.count || r.cl < 1 || r.cl > WireLimits.maxCausalLength { sound = false }
                        for f in r.fields where f.field >= t.fields.count || f.site >= decoded.sites.count || f.hlc <= 0 { sound = false }
                    }
                }
                #expect(sound, "seed \(seed), round \(round): decoded a changeset that breaks the wire checks")
                let again = PushRequest(site: request.site, from: request.from, to: request.to, changes: WireChangeset(decoded)).binary()
                let back = try PushRequest(binary: again).changes.changeset()
                #expect(back == decoded, "seed \(seed), round \(round): round trip")
            } catch {
                // (Bound through `Any`: `catch let e as ModelError` here crashes Swift 6.3.1's SIL verifier.)
                let e = (error as Any) as? ModelError
                let named = e.map { !$0.field.isEmpty && !$0.reason.isEmpty } ?? false
                #expect(named, "seed \(seed), round \(round): \(error)")
            }
        }
    }

    @Test func oversizedBinaryPushIsRefusedBeforeDecoding() throws {
        let site = SiteID.random()
        let rows = (0..<9).map { i in
            RowChange(id: "p\(i)", cl: 1, hlc: 1, site: 0, fields: [FieldChange(field: 0, value: .text("x"), hlc: 1, site: 0)])
        }
        let bytes = PushRequest(site: site, from: 0, to: 1, changes: WireChangeset(Changeset(sites: [site], tables: [
            TableChanges(table: "person", fields: ["name"], rows: rows),
        ]))).binary()
        // The budget is twice the change limit, spent on sites, rows and field writes: 1 + 9 + 9 = 19.
        #expect(try PushRequest(binary: bytes, maxChanges: 10).changes.changeset().changeCount == 9)
        do {
            _ = try PushRequest(binary: bytes, maxChanges: 9)  // 1 site + 9 rows + 9 writes > 18
            Issue.record("accepted more than the limit")
        } catch {
            #expect(error.kind == .tooLarge)
            #expect(error.description.contains("smaller batches"))
        }
    }

    @Test func malformedBinaryNamesThePartAndTheOffset() {
        let site = SiteID.random()
        let good = PushRequest(site: site, from: 0, to: 1, changes: WireChangeset(Changeset(sites: [site], tables: [
            TableChanges(table: "person", fields: ["name"], rows: [
                RowChange(id: "p1", cl: 1, hlc: 1, site: 0, fields: [FieldChange(field: 0, value: .text("x"), hlc: 1, site: 0)]),
            ]),
        ]))).binary()
        do {
            _ = try PushRequest(binary: Array("FBP2".utf8) + good.dropFirst(4))
            Issue.record("accepted a wrong magic")
        } catch {
            #expect(error.field == "body.magic")
        }
        // The value tag of the one field value: find the text "x" (tag 3, length 1, 0x78) and break its tag.
        var badTag = good
        if let i = (0..<(good.count - 2)).last(where: { good[$0] == 3 && good[$0 + 1] == 1 && good[$0 + 2] == 0x78 }) { badTag[i] = 9 }
        do {
            _ = try PushRequest(binary: badTag)
            Issue.record("accepted value tag 9")
        } catch {
            #expect(error.field == "body.tables[0].columns[0].values")
            #expect(error.description.contains("tag 9"))
            #expect(error.description.contains("at byte"))
        }
        var badUTF8 = good
        if let i = (0..<(good.count - 2)).last(where: { good[$0] == 3 && good[$0 + 1] == 1 && good[$0 + 2] == 0x78 }) { badUTF8[i + 2] = 0xFF }
        #expect(throws: ModelError.self) { try PushRequest(binary: badUTF8) }
    }
}
