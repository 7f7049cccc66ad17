import ArgumentParser
import FieldbookKit

struct IncidentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "incident", abstract: "Add incidents.", subcommands: [Add.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an incident to a person; prints the new id.")
        @OptionGroup var replica: ReplicaOptions
        @Option(help: "The person's id.") var person: String
        @Option(help: "What happened (detention, verdict, release, …).") var kind: String
        @Option(help: "When, EDTF: 2020-06-22, 2020-06, 2020-06~, 2017?, 2018-07/2020-06.") var date: String
        @Option(help: "The source's own wording of the date.") var dateText: String?
        @Option(help: "Where: region or city.") var placeRegion: String?
        @Option var settlement: String?
        @Option var facility: String?
        @Option(help: "police, KNB, prosecutor, court, prison administration, local executive, unknown.") var authority: String?
        @Option(help: "A charge, e.g. \"CC 405.1\" (repeatable).") var article: [String] = []
        @Option var sentenceKind: String?
        @Option(help: "ISO 8601 duration: P18M, P1Y6M, P15D.") var sentenceTerm: String?
        @Option(help: "Fine amount (plain decimal); needs --fine-unit.") var fine: String?
        @Option(help: "KZT, EUR or MCI.") var fineUnit: String?
        @Option var description: String?
        @Option var sourceOutlet: String?
        @Option var sourceUrl: String?
        @Option(help: "Publication date of the source, EDTF.") var sourceDate: String?
        @Option(help: "high, usually_reliable, fairly_reliable, unknown.") var reliability: String?
        @Option(help: "confirmed, likely, possible, unknown.") var verification: String?
        @Option(help: "External key, unique.") var ref: String?
        @Option(help: "Owning region (default: the person's).") var region: String?

        func run() throws {
            try FieldbookCLI.run {
                let store = try replica.open()
                var fields = ["kind": kind, "date": date]
                let optional: [(String, String?)] = [
                    ("date_text", dateText), ("place_region", placeRegion), ("settlement", settlement), ("facility", facility),
                    ("authority", authority), ("sentence_kind", sentenceKind), ("sentence_term", sentenceTerm),
                    ("fine_amount", fine), ("fine_unit", fineUnit), ("description", description),
                    ("verification", verification), ("ref", ref),
                ]
                for (k, v) in optional { if let v { fields[k] = v } }
                let source = SourceInput(outlet: sourceOutlet, url: sourceUrl, published: sourceDate, reliability: reliability)
                print(try store.addIncident(personID: person, fields: fields, articles: article,
                                            sources: source.isEmpty ? [] : [source], region: region))
                if let region { Warnings.regionCoverage(region, store.replica) }
            }
        }
    }
}
