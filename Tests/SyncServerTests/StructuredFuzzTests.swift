import FieldbookModel
import Foundation
import SyncCore
import SyncServer
import Testing

/// A seeded structure-aware fuzzer: it builds valid push and pull bodies, mutates one part of each
/// (integers to their extremes and ±1, counts and lengths, front-coding prefixes, ids, names,
/// UTF-8, value tags, field and table names), encodes them as binary or JSON, and runs them through
/// decoding and push planning and authorisation, in process. Nothing may trap; what decodes must
/// hold every wire invariant; every refusal is a 4xx. Reproduce a failure with `FB_FUZZ_SEED`.
@Suite struct StructuredFuzzTests {
    static let cases = 20_000
    static let integers: [Int64] = [.min, .min + 1, -(1 << 47), -65_536, -2, -1, 0, 1, 2, 65_535, 1 << 31, 1 << 47, 1 << 60, (1 << 60) + 1, .max - 1, .max]

    static func valid(_ rng: inout SplitMix64) -> Changeset {
        let sites = (0..<Int(rng.next() % 3 + 1)).map { _ in SiteID.random() }
        let now = Int64(1_790_000_000_000 + Int64(rng.next() % 1_000_000)) << 16
        var person = TableChanges(table: "person", fields: ["region", "name", "born"])
        var alias = TableChanges(table: "alias", fields: ["region", "person_id", "name"])
        for _ in 0..<Int(rng.next() % 4 + 1) {
            let id = UUID().uuidString.lowercased()
            let site = Int(rng.next() % UInt64(sites.count))
            let deleted = rng.next() % 5 == 0
            person.rows.append(RowChange(id: id, cl: deleted ? 2 : 1, hlc: now + Int64(rng.next() % 1000), site: site, fields: deleted ? [] : [
                FieldChange(field: 0, value: .text("almaty"), hlc: now, site: site),
                FieldChange(field: 1, value: .text(["Asqar Qaiyrbek", "Қайырбек", "Bokayev"][Int(rng.next() % 3)]), hlc: now + 7, site: site),
                FieldChange(field: 2, value: .text("1976/1977"), hlc: now + 9, site: 0),
            ]))
            if !deleted && rng.next() % 2 == 0 {
                alias.rows.append(RowChange(id: UUID().uuidString.lowercased(), cl: 1, hlc: now, site: site, fields: [
                    FieldChange(field: 0, value: .text("almaty"), hlc: now, site: site),
                    FieldChange(field: 1, value: .text(id), hlc: now, site: site),
                    FieldChange(field: 2, value: .text("Kairbek"), hlc: now, site: site),
                ]))
            }
        }
        person.rows.sort { $0.id < $1.id }
        alias.rows.sort { $0.id < $1.id }
        return Changeset(sites: sites, tables: alias.rows.isEmpty ? [person] : [person, alias],
                         siteNames: rng.next() % 2 == 0 ? sites.indices.map { "laptop-\($0)" } : [])
    }

    /// Changes one part of the message; returns what it changed, for the failure message.
    static func mutate(_ w: inout WireChangeset, _ rng: inout SplitMix64) -> String {
        func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }
        let v = rng.next() % 4 == 0 ? Int64(bitPattern: rng.next()) : pick(integers)
        let near = rng.next() % 2 == 0 ? v : v &+ (rng.next() % 2 == 0 ? 1 : -1)
        let t = Int(rng.next() % UInt64(w.tables.count))
        let n = w.tables[t].ids.count
        let i = Int(rng.next() % UInt64(max(n, 1)))
        let c = w.tables[t].columns.isEmpty ? nil : Int(rng.next() % UInt64(w.tables[t].columns.count))
        switch rng.next() % 17 {
        case 0: w.tables[t].hlc[i] = near; return "tables[\(t)].hlc[\(i)] = \(near)"
        case 1: w.tables[t].cl = (0..<n).map { $0 == i ? near : 1 }; return "tables[\(t)].cl[\(i)] = \(near)"
        case 2: w.tables[t].shared[i] = Int(truncatingIfNeeded: near); return "tables[\(t)].shared[\(i)] = \(near)"
        case 3: w.tables[t].site = (0..<n).map { $0 == i ? Int(truncatingIfNeeded: near) : 0 }; return "tables[\(t)].site[\(i)] = \(near)"
        case 4:
            guard let c, !w.tables[t].columns[c].rows.isEmpty else { return "nothing" }
            w.tables[t].columns[c].rows[0] = Int(truncatingIfNeeded: near); return "columns[\(c)].rows[0] = \(near)"
        case 5:
            guard let c, !w.tables[t].columns[c].hlc.isEmpty else { return "nothing" }
            let k = w.tables[t].columns[c].hlc.count - 1
            w.tables[t].columns[c].hlc[k] = near; return "columns[\(c)].hlc[\(k)] = \(near)"
        case 6:
            guard let c else { return "nothing" }
            let m = w.tables[t].columns[c].rows.count
            w.tables[t].columns[c].site = (0..<m).map { _ in Int(truncatingIfNeeded: near) }; return "columns[\(c)].site = \(near)"
        case 7: w.tables[t].ids[i] = String(repeating: pick(["a", "Қ", "😀"]), count: pick([0, 36, 129, 5_000])); return "ids[\(i)] long/empty"
        case 8: w.tables[t].ids[i] = pick(["\u{1B}[2J", "id\nwith break", "\u{0}", "\u{202E}x"]); return "ids[\(i)] control"
        case 9: w.names = w.sites.map { _ in pick(["\u{1B}]0;x\u{7}", String(repeating: "n", count: 201), "", "ok"]) }; return "names"
        case 10: w.sites.append(w.sites[0]); w.names = nil; return "duplicate site"
        case 11:
            guard let c, !w.tables[t].columns[c].values.isEmpty else { return "nothing" }
            w.tables[t].columns[c].values[0] = pick([.integer(near), .real(.greatestFiniteMagnitude), .null, .text(String(repeating: "x", count: 25_000))])
            return "columns[\(c)].values[0]"
        case 12: if let c { w.tables[t].columns[c].field = pick(["nope", "region", "name", ""]) }; return "field name"
        case 13: w.tables[t].table = pick(["persons", "_fb_log", "", "person\"; DROP TABLE person; --"]); return "table name"
        case 14:
            guard let c else { return "nothing" }
            w.tables[t].columns[c].rows.append(0); return "columns[\(c)].rows longer than values"
        case 15: w.tables[t].hlc.removeLast(); return "tables[\(t)].hlc shorter"
        default:
            guard let c, !w.tables[t].columns[c].rows.isEmpty else { return "nothing" }
            w.tables[t].columns[c].rows = w.tables[t].columns[c].rows.map { _ in Int(truncatingIfNeeded: near) }; return "columns[\(c)].rows all \(near)"
        }
    }

    /// What every decoded changeset must hold.
    static func invariants(_ cs: Changeset) -> String? {
        guard Set(cs.sites).count == cs.sites.count else { return "duplicate sites" }
        for t in cs.tables {
            for rc in t.rows {
                guard WireLimits.isClock(rc.hlc) else { return "row clock \(rc.hlc)" }
                guard (1...WireLimits.maxCausalLength).contains(rc.cl) else { return "cl \(rc.cl)" }
                guard (1...WireLimits.maxIDBytes).contains(rc.id.utf8.count) else { return "id of \(rc.id.utf8.count) bytes" }
                guard cs.sites.indices.contains(rc.site) else { return "row site \(rc.site)" }
                for f in rc.fields {
                    guard WireLimits.isClock(f.hlc), cs.sites.indices.contains(f.site), t.fields.indices.contains(f.field) else { return "field \(f)" }
                }
            }
        }
        return nil
    }

    @Test func twentyThousandMutatedBodiesNeverTrapAndKeepTheWireInvariants() throws {
        let seed = ProcessInfo.processInfo.environment["FB_FUZZ_SEED"].flatMap(UInt64.init) ?? 20_261_201
        var rng = SplitMix64(seed: seed)
        let token = TokenInfo(name: "fuzz", regions: ["almaty"], coordinator: false, createdAt: "")
        let serverSite = SiteID.random()
        var outcomes = [0, 0, 0]  // decoded and planned, refused while decoding, refused while planning
        for k in 0..<Self.cases {
            let cs = TestSealing.seal(Self.valid(&rng))
            var wire = WireChangeset(cs)
            let what = Self.mutate(&wire, &rng)
            let context = "seed \(seed) (FB_FUZZ_SEED), case \(k): \(what)"
            let site = cs.sites[0]
            let decoded: Changeset
            let request: PushRequest
            do {
                switch k % 3 {
                case 0:
                    request = try PushRequest(binary: PushRequest(site: site, from: 0, to: 1, changes: wire).binary(), maxChanges: 100_000)
                case 1:
                    let json = try JSONEncoder().encode(PushRequest(site: site, from: 0, to: 1, changes: wire))
                    request = try JSONDecoder().decode(PushRequest.self, from: json)
                default:
                    let pull = try PullResponse(binary: PullResponse(changes: wire, cursor: "c2.x", more: false).binary())
                    request = PushRequest(site: site, from: 0, to: 1, changes: pull.changes)
                }
                decoded = try request.changes.changeset()
            } catch {
                outcomes[1] += 1
                continue
            }
            if let broken = Self.invariants(decoded) {
                Issue.record("decoded a changeset that breaks the wire invariants (\(broken)); \(context)")
                continue
            }
            do {
                let batch = try PushPlanner.plan(request, now: 1_790_000_000_000, maxDriftMillis: 300_000, maxBatchChanges: 100_000)
                _ = try PushAuthorizer.authorize(batch, token: token, facts: PushFacts(epochs: Dictionary(uniqueKeysWithValues: TestSealing.regions.map { ($0, UInt32(1)) })), serverSite: serverSite)
                outcomes[0] += 1
            } catch {
                let e = ServerError.from(error)
                #expect((400..<500).contains(Int(e.status.code)), "\(e); \(context)")
                outcomes[2] += 1
            }
        }
        // The fuzzer aims: each outcome is reached often, so neither the decoder nor the planner is left untried.
        #expect(outcomes.allSatisfy { $0 > Self.cases / 50 }, "outcomes \(outcomes); seed \(seed)")
    }
}
