import FieldbookModel
import Foundation
import ReplicaStore
import SyncCore
import Testing

/// What a hostile or buggy peer (a server, or a device through it) can send a replica.
@Suite struct ReplicaHostileTests {
    /// Issue 7, item 9: two replicas delete the same row concurrently (equal causal length); every
    /// replica, SQLite and reference alike, names the same deleter whatever the delivery order.
    @Test func concurrentDeletesNameTheSameDeleterEverywhere() throws {
        let t = try TestReplicas()
        let sites = [SiteID.random(), SiteID.random(), SiteID.random(), SiteID.random()]
        let (a, b, c, d) = (try t.make("a", tables: [plainTable], site: sites[0]), try t.make("b", tables: [plainTable], site: sites[1]),
                            try t.make("c", tables: [plainTable], site: sites[2]), try t.make("d", tables: [plainTable], site: sites[3]))
        try a.write { w in try w.insert("note", id: "r", values: ["a": .text("x")]) }
        let created = try a.changes(since: 0).changeset
        for r in [b, c, d] { _ = try r.apply(created) }
        let start = try b.lastSequence(), startC = try c.lastSequence()
        try b.write { w in try w.delete("note", id: "r") }
        t.now.advance(5)
        try c.write { w in try w.delete("note", id: "r") }
        let fromB = try b.changes(since: start, excludingOrigin: 0).changeset
        let fromC = try c.changes(since: startC).changeset
        _ = try a.apply(fromB); _ = try a.apply(fromC)   // a: B's delete first
        _ = try d.apply(fromC); _ = try d.apply(fromB)   // d: C's delete first
        _ = try b.apply(fromC); _ = try c.apply(fromB)

        func deleter(_ r: Replica) throws -> (Int64, SiteID) {
            let cs = try r.changes(since: 0).changeset
            let row = cs.tables.flatMap(\.rows).first { $0.id == "r" }!
            #expect(row.cl == 2)
            return (row.hlc, cs.sites[row.site])
        }
        let expected = try deleter(c)  // the later delete
        #expect(expected.1 == sites[2])
        for r in [a, b, d] {
            let got = try deleter(r)
            #expect(got.0 == expected.0 && got.1 == expected.1, "\(r.info.device ?? "")")
        }
        // The reference replica decides the same.
        var m = MemoryReplica(site: .random())
        _ = try m.apply(created, at: t.now.millis)
        _ = try m.apply(fromB, at: t.now.millis)
        _ = try m.apply(fromC, at: t.now.millis)
        let existence = m.rows["note"]!["r"]!.existence
        #expect(existence.hlc.rawValue == expected.0 && existence.site == expected.1)
    }

    /// Issue 7, item 2 on the device: a re-creation (new incarnation) cannot move a record to
    /// another region or another parent, whether the row is alive or only its tombstone is left.
    @Test func aReCreationCannotMoveARecordToAnotherRegionOrParent() throws {
        let t = try TestReplicas()
        let r = try t.make("r")
        let (p, q, al) = (UUID().uuidString.lowercased(), UUID().uuidString.lowercased(), UUID().uuidString.lowercased())
        try r.write { w in
            try w.insert("person", id: p, values: ["region": .text("almaty"), "name": .text("Asqar")])
            try w.insert("person", id: q, values: ["region": .text("almaty"), "name": .text("Other")])
            try w.insert("alias", id: al, values: ["region": .text("almaty"), "person_id": .text(p), "name": .text("Askar")])
        }
        let site = SiteID.random()
        let hlc = (t.now.millis + 1000) << 16
        func recreate(_ table: String, _ id: String, cl: Int64, _ fields: [(String, String)]) -> Changeset {
            Changeset(sites: [site], tables: [TableChanges(table: table, fields: fields.map(\.0), rows: [
                RowChange(id: id, cl: cl, hlc: hlc, site: 0, fields: fields.enumerated().map { FieldChange(field: $0, value: .text($1.1), hlc: hlc, site: 0) }),
            ])])
        }
        let before = try r.state("person")
        // Alive: a new incarnation that names another region.
        #expect(throws: ReplicaError.self) { try r.apply(recreate("person", p, cl: 3, [("region", "atyrau"), ("name", "Moved")])) }
        // Deleted: the tombstone remembers the region and the parent.
        try r.write { w in try w.delete("alias", id: al) }
        try r.write { w in try w.delete("person", id: p) }
        #expect(throws: ReplicaError.self) { try r.apply(recreate("person", p, cl: 3, [("region", "atyrau"), ("name", "Moved")])) }
        #expect(throws: ReplicaError.self) {
            try r.apply(recreate("alias", al, cl: 3, [("region", "almaty"), ("person_id", q), ("name", "Askar")]))
        }
        // A re-creation that keeps them is accepted.
        _ = try r.apply(recreate("person", p, cl: 3, [("region", "almaty"), ("name", "Asqar (restored)")]))
        #expect(try r.state("person")[p]?["name"] == .text("Asqar (restored)"))
        #expect(try r.state("person")[q] == before[q])
        // Ids that are not record ids are refused before anything is written.
        #expect(throws: ReplicaError.self) { try r.apply(recreate("person", "not-a-uuid", cl: 1, [("region", "almaty"), ("name", "X")])) }
    }

    /// Issue 7, item 11 on the device: a site listed by a changeset but used by none of its changes
    /// is not registered.
    @Test func unusedListedSitesLeaveNoTrace() throws {
        let t = try TestReplicas()
        let r = try t.make("r", tables: [plainTable])
        let used = SiteID.random()
        let cs = Changeset(sites: [used] + (0..<50).map { _ in SiteID.random() }, tables: [TableChanges(table: "note", fields: ["a"], rows: [
            RowChange(id: "n", cl: 1, hlc: t.now.millis << 16, site: 0, fields: [FieldChange(field: 0, value: .text("x"), hlc: t.now.millis << 16, site: 0)]),
        ])])
        _ = try r.apply(cs)
        #expect(try r.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM _fb_site") } == 2)  // itself and the one used
    }
}
