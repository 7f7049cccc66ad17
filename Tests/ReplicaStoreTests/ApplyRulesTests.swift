import FieldbookModel
import Foundation
import ReplicaStore
import SyncCore
import Testing

/// Issue 7, item 8: a remote change runs the model's rules where the whole row is known, as a
/// local write does; a row merged from concurrent edits is taken as it is.
@Suite struct ApplyRulesTests {
    let person = UUID().uuidString.lowercased()

    /// A changeset of one new incident of `person`, every field stamped by one write unless
    /// `merged`, with `values` over the required ones.
    func incident(_ t: TestReplicas, site: SiteID, values: [String: Value], drop: Set<String> = [], merged: Bool = false) -> Changeset {
        let schema = FieldbookSchema.incident
        let hlc = t.now.millis << 16
        var base: [String: Value] = ["region": .text("almaty"), "person_id": .text(person), "kind": .text("detention"), "date": .text("2022-01")]
        base.merge(values) { _, b in b }
        var fields: [FieldChange] = []
        for (i, c) in schema.columns.enumerated() where !drop.contains(c.name) {
            fields.append(FieldChange(field: fields.count, value: base[c.name] ?? .null, hlc: merged && c.name == "fine_unit" ? hlc - 5 : hlc, site: 0))
            _ = i
        }
        let names = schema.columns.map(\.name).filter { !drop.contains($0) }
        return Changeset(sites: [site], tables: [
            TableChanges(table: "person", fields: ["region", "name"], rows: [
                RowChange(id: person, cl: 1, hlc: hlc, site: 0, fields: [
                    FieldChange(field: 0, value: .text("almaty"), hlc: hlc, site: 0),
                    FieldChange(field: 1, value: .text("Asqar Qaiyrbek"), hlc: hlc, site: 0)]),
            ]),
            TableChanges(table: "incident", fields: names, rows: [RowChange(id: UUID().uuidString.lowercased(), cl: 1, hlc: hlc, site: 0, fields: fields)]),
        ])
    }

    func refused(_ r: Replica, _ cs: Changeset, naming field: String) {
        do {
            _ = try r.apply(cs)
            Issue.record("applied a change that breaks the model (\(field))")
        } catch let e as ReplicaError {
            #expect(e.kind == .invalid && e.message.contains(field), "\(e.message)")
        } catch { Issue.record("\(error)") }
    }

    @Test func wholeRowFromOneWriteMustKeepTheRulesAcrossFields() throws {
        let t = try TestReplicas()
        let r = try t.make("r")
        let site = SiteID.random()
        refused(r, incident(t, site: site, values: ["fine_amount": .text("50000")]), naming: "incident.fine_unit")
        refused(r, incident(t, site: site, values: ["fine_unit": .text("KZT")]), naming: "incident.fine_amount")
        refused(r, incident(t, site: site, values: [:], drop: ["date"]), naming: "incident.date")
        refused(r, incident(t, site: site, values: [:], drop: ["kind", "fine_unit"]), naming: "incident.kind")
        let src = Changeset(sites: [site], tables: [TableChanges(table: "source", fields: ["region", "incident_id", "published"], rows: [
            RowChange(id: UUID().uuidString.lowercased(), cl: 1, hlc: t.now.millis << 16, site: 0, fields: [
                FieldChange(field: 0, value: .text("almaty"), hlc: t.now.millis << 16, site: 0),
                FieldChange(field: 1, value: .text(UUID().uuidString.lowercased()), hlc: t.now.millis << 16, site: 0),
                FieldChange(field: 2, value: .text("2022-01"), hlc: t.now.millis << 16, site: 0)]),
        ])])
        refused(r, src, naming: "source.outlet")
        #expect(try r.state("incident").isEmpty && r.state("person").isEmpty && r.state("source").isEmpty, "nothing half-written")

        // The same inconsistency as the merge of concurrent edits (the unit cleared by one
        // device, the amount set by another) is taken as it is: no one could have prevented it.
        _ = try r.apply(incident(t, site: site, values: ["fine_amount": .text("50000")], merged: true))
        #expect(try r.state("incident").count == 1)
        _ = try r.apply(incident(t, site: site, values: ["fine_amount": .text("50000"), "fine_unit": .text("KZT")]))
        #expect(try r.state("incident").count == 2)
    }
}
