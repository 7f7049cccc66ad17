import FieldbookModel
import SyncCore
import Testing

/// Named merge scenarios on the reference replica.
@Suite struct MergeScenarioTests {
    let siteA = SiteID("00000000-0000-0000-0000-00000000000a")!
    let siteB = SiteID("00000000-0000-0000-0000-00000000000b")!

    func pair() -> (MemoryReplica, MemoryReplica) { (MemoryReplica(site: siteA), MemoryReplica(site: siteB)) }

    @Test func newerEditWins() throws {
        var (a, b) = pair()
        let create = try a.insert(table: "person", id: "p", fields: ["name": .text("Kairbek")], at: 1_000)
        _ = try b.apply(create, at: 1_000)
        let older = try a.update(table: "person", id: "p", fields: ["name": .text("Qaiyrbek")], at: 2_000)
        let newer = try b.update(table: "person", id: "p", fields: ["name": .text("Қайырбек")], at: 3_000)
        _ = try a.apply(newer, at: 3_000)
        _ = try b.apply(older, at: 3_000)
        #expect(a.state == b.state)
        #expect(a.state["person"]?["p"]?["name"] == .text("Қайырбек"))
    }

    @Test func equalClockBrokenBySiteID() throws {
        var (a, b) = pair()
        let create = try a.insert(table: "person", id: "p", fields: ["name": .text("x")], at: 1_000)
        _ = try b.apply(create, at: 1_000)
        // Force both edits to the same HLC: both clocks are at (1000, 0) / (1000, 1).
        var a2 = MemoryReplica(site: siteA, clock: HybridLogicalClock(last: HLC(millis: 5_000, counter: 0)))
        var b2 = MemoryReplica(site: siteB, clock: HybridLogicalClock(last: HLC(millis: 5_000, counter: 0)))
        _ = try a2.apply(create, at: 1_000)
        _ = try b2.apply(create, at: 1_000)
        let ea = try a2.update(table: "person", id: "p", fields: ["name": .text("from A")], at: 1_000)
        let eb = try b2.update(table: "person", id: "p", fields: ["name": .text("from B")], at: 1_000)
        #expect(ea.tables[0].rows[0].fields[0].hlc == eb.tables[0].rows[0].fields[0].hlc)
        _ = try a2.apply(eb, at: 1_000)
        _ = try b2.apply(ea, at: 1_000)
        #expect(a2.state == b2.state)
        #expect(a2.state["person"]?["p"]?["name"] == .text("from B"))  // siteB > siteA
        _ = (a, b)
    }

    @Test func deleteBeatsOlderEdit() throws {
        var (a, b) = pair()
        let create = try a.insert(table: "incident", id: "i", fields: ["kind": .text("detention")], at: 1_000)
        _ = try b.apply(create, at: 1_000)
        let edit = try b.update(table: "incident", id: "i", fields: ["kind": .text("search")], at: 2_000)
        let del = try a.delete(table: "incident", id: "i", at: 3_000)
        _ = try a.apply(edit, at: 3_000)
        _ = try b.apply(del, at: 3_000)
        #expect(a.state == b.state)
        #expect(a.state["incident"]?["i"] == nil)
    }

    @Test func deleteBeatsConcurrentNewerEdit() throws {
        // An edit made without knowledge of the delete belongs to the deleted incarnation.
        var (a, b) = pair()
        let create = try a.insert(table: "incident", id: "i", fields: ["kind": .text("detention")], at: 1_000)
        _ = try b.apply(create, at: 1_000)
        let del = try a.delete(table: "incident", id: "i", at: 2_000)
        let edit = try b.update(table: "incident", id: "i", fields: ["kind": .text("search")], at: 9_000)
        let r1 = try a.apply(edit, at: 9_000)
        _ = try b.apply(del, at: 9_000)
        #expect(r1 == ApplyReport(applied: 0, ignored: 1))
        #expect(a.state == b.state)
        #expect(b.state["incident"]?["i"] == nil)
    }

    @Test func recreateAfterDelete() throws {
        var (a, b) = pair()
        let create = try a.insert(table: "person", id: "p", fields: ["name": .text("one")], at: 1_000)
        let del = try a.delete(table: "person", id: "p", at: 2_000)
        let again = try a.insert(table: "person", id: "p", fields: ["name": .text("two")], at: 3_000)
        #expect(again.tables[0].rows[0].cl == 3)
        // Delivered backwards: the re-creation first, then the delete and the original insert.
        _ = try b.apply(again, at: 3_000)
        _ = try b.apply(del, at: 3_000)
        _ = try b.apply(create, at: 3_000)
        #expect(a.state == b.state)
        #expect(b.state["person"]?["p"]?["name"] == .text("two"))
    }

    @Test func concurrentDeletesConverge() throws {
        var (a, b) = pair()
        let create = try a.insert(table: "person", id: "p", fields: ["name": .text("x")], at: 1_000)
        _ = try b.apply(create, at: 1_000)
        let da = try a.delete(table: "person", id: "p", at: 2_000)
        let db = try b.delete(table: "person", id: "p", at: 2_500)
        _ = try a.apply(db, at: 3_000)
        _ = try b.apply(da, at: 3_000)
        #expect(a.rows["person"]?["p"]?.cl == 2 && b.rows["person"]?["p"]?.cl == 2)
        #expect(a.state == b.state)
    }

    @Test func duplicateDeliveryIsIgnored() throws {
        var (a, b) = pair()
        let create = try a.insert(table: "person", id: "p", fields: ["name": .text("x"), "born": .text("1976")], at: 1_000)
        #expect(try b.apply(create, at: 1_000) == ApplyReport(applied: 2, ignored: 0))
        #expect(try b.apply(create, at: 1_000) == ApplyReport(applied: 0, ignored: 2))
        #expect(a.state == b.state)
    }

    @Test func editsOfDifferentFieldsBothSurvive() throws {
        var (a, b) = pair()
        let create = try a.insert(table: "person", id: "p", fields: ["name": .text("x"), "born": .null], at: 1_000)
        _ = try b.apply(create, at: 1_000)
        let ea = try a.update(table: "person", id: "p", fields: ["name": .text("Asqar Qaiyrbek")], at: 2_000)
        let eb = try b.update(table: "person", id: "p", fields: ["born": .text("1976/1977")], at: 2_100)
        _ = try a.apply(eb, at: 3_000)
        _ = try b.apply(ea, at: 3_000)
        #expect(a.state == b.state)
        #expect(a.state["person"]?["p"] == ["name": .text("Asqar Qaiyrbek"), "born": .text("1976/1977")])
    }

    @Test func remoteClockTooFarAheadIsRefused() throws {
        var (a, b) = pair()
        let future = try a.insert(table: "person", id: "p", fields: ["name": .text("x")], at: 10_000_000)
        #expect(throws: SyncCoreError.self) { try b.apply(future, at: 1_000) }
    }
}
