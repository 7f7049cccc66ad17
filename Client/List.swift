import ArgumentParser
import FieldbookKit
import FieldbookModel

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List persons or incidents.")

    enum What: String, ExpressibleByArgument, CaseIterable {
        case persons, incidents
    }

    @OptionGroup var replica: ReplicaOptions
    @Argument(help: "persons or incidents") var what: What
    @Option(help: "Only records owned by this region.") var region: String?
    @Option(help: "Only incidents of this kind.") var kind: String?
    @Option(help: "Only this person (or this person's incidents).") var person: String?
    @Option(help: "Only incidents on or after this EDTF date.") var from: String?
    @Option(help: "Only incidents on or before this EDTF date.") var to: String?
    @Flag(help: "Print a JSON array.") var json = false

    func run() throws {
        try FieldbookCLI.run {
            let store = try replica.open()
            var f = RecordFilter()
            f.region = region
            f.kind = kind
            f.personID = person
            if let from { f.from = try FuzzyDate(from, field: "--from") }
            if let to { f.to = try FuzzyDate(to, field: "--to") }
            switch what {
            case .persons:
                var persons = try store.persons(f)
                if kind != nil || from != nil || to != nil {
                    let ids = Set(try store.incidents(f).map(\.person_id))
                    persons = persons.filter { ids.contains($0.id) }
                }
                if json { return try printJSON(persons) }
                var t = Table(header: ["ID", "NAME", "ALIASES", "BORN", "REGION", "INCIDENTS"])
                for p in persons {
                    t.rows.append([p.id, cell(p.name, max: 30), cell(p.aliases.joined(separator: "; "), max: 40), p.born ?? "", p.region, String(p.incidents.count)])
                }
                print(t.render())
            case .incidents:
                let incidents = try store.incidents(f)
                if json { return try printJSON(incidents) }
                var t = Table(header: ["ID", "DATE", "KIND", "PERSON", "PLACE", "CHARGES", "REF"])
                for i in incidents {
                    t.rows.append([i.id, i.date, i.kind, cell(i.person_name, max: 24), cell(i.place_region, max: 20), i.charges.joined(separator: "; "), i.ref ?? ""])
                }
                print(t.render())
            }
        }
    }
}
