import FieldbookModel
import ArgumentParser
import FieldbookKit

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a person (aliases, incidents, charges, sources) or one incident.")

    @OptionGroup var replica: ReplicaOptions
    @Argument(help: "A person or incident id.") var id: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try FieldbookCLI.run {
            switch try replica.open().show(id: id) {
            case .person(let p):
                if json { return try printJSON(p) }
                print(Terminal.safe("person \(p.id)  (region \(p.region))"))
                if p.id != id.lowercased() {
                    print(Terminal.safe("(\(id) is merged into this person; `fieldbook persons unmerge` undoes a merge)"))
                }
                line("name", p.name)
                for (a, aid) in zip(p.aliases, p.alias_ids) { line("alias", "\(a)  [\(aid)]") }
                line("born", p.born)
                line("sex", p.sex)
                line("occupation", p.occupation)
                line("affiliation", p.affiliation)
                line("notes", p.notes)
                for m in p.merged { line("merged", "\(m)  (`fieldbook persons unmerge \(m)` undoes it)") }
                for i in p.incidents {
                    print("")
                    printIncident(i, indent: "  ")
                }
            case .incident(let i):
                if json { return try printJSON(i) }
                printIncident(i, indent: "")
            }
        }
    }

    func line(_ k: String, _ v: String?, indent: String = "") {
        guard let v, !v.isEmpty else { return }
        let pad = String(repeating: " ", count: max(0, 14 - k.count))
        print("\(indent)\(k):\(pad)\(Terminal.safe(v, keepLineBreaks: true).replacingOccurrences(of: "\n", with: "\n\(indent)               "))")
    }

    func printIncident(_ i: IncidentView, indent: String) {
        print(Terminal.safe("\(indent)incident \(i.id)  (region \(i.region))"))
        line("person", "\(i.person_name ?? "")  [\(i.person_id)]", indent: indent)
        line("kind", i.kind, indent: indent)
        line("date", i.date, indent: indent)
        line("date_text", i.date_text, indent: indent)
        line("place_region", i.place_region, indent: indent)
        line("settlement", i.settlement, indent: indent)
        line("facility", i.facility, indent: indent)
        line("authority", i.authority, indent: indent)
        for (c, cid) in zip(i.charges, i.charge_ids) { line("charge", "\(c)  [\(cid)]", indent: indent) }
        line("sentence", [i.sentence_kind, i.sentence_term].compactMap { $0 }.joined(separator: " "), indent: indent)
        if let a = i.fine_amount { line("fine", "\(a) \(i.fine_unit ?? "")", indent: indent) }
        line("description", i.description, indent: indent)
        line("verification", i.verification, indent: indent)
        line("ref", i.ref, indent: indent)
        for s in i.sources {
            let text = [s.outlet, s.published, s.reliability, s.url].compactMap { $0 }.joined(separator: ", ")
            line("source", "\(text)  [\(s.id)]", indent: indent)
        }
    }
}
