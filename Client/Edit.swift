import ArgumentParser
import FieldbookKit

struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change fields of a record, add or remove aliases, charges and sources; validated like add.",
        discussion: "Example: fieldbook edit ID --set verification=confirmed --set sentence_term=P2Y --add-article \"CC 174.2\"")

    @OptionGroup var replica: ReplicaOptions
    @Argument(help: "The record's id.") var id: String
    @Option(help: ArgumentHelp("FIELD=VALUE; an empty VALUE clears the field (repeatable).", valueName: "field=value")) var set: [String] = []
    @Option(help: "Add a spelling to a person (repeatable).") var addAlias: [String] = []
    @Option(help: "Add a charge to an incident, e.g. \"CC 174.1\" (repeatable).") var addArticle: [String] = []
    @Option(help: ArgumentHelp("Add a source to an incident: outlet|url|published|reliability (empty parts allowed) (repeatable).", valueName: "source")) var addSource: [String] = []
    @Option(help: "Remove an alias, charge or source by its id (repeatable).") var remove: [String] = []

    func run() throws {
        try FieldbookCLI.run {
            var e = FieldbookStore.Edit()
            for s in set {
                guard let eq = s.firstIndex(of: "=") else {
                    throw FieldbookError(.invalidInput, "--set \"\(s)\": expected FIELD=VALUE")
                }
                e.set.append((String(s[..<eq]), String(s[s.index(after: eq)...])))
            }
            e.addAliases = addAlias
            e.addArticles = addArticle
            for s in addSource {
                let p = s.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                guard p.count <= 4 else { throw FieldbookError(.invalidInput, "--add-source \"\(s)\": expected outlet|url|published|reliability") }
                func part(_ i: Int) -> String? { i < p.count && !p[i].isEmpty ? p[i] : nil }
                e.addSources.append(SourceInput(outlet: part(0), url: part(1), published: part(2), reliability: part(3)))
            }
            e.remove = remove
            if e.set.isEmpty && e.addAliases.isEmpty && e.addArticles.isEmpty && e.addSources.isEmpty && e.remove.isEmpty {
                throw FieldbookError(.invalidInput, "nothing to change: give --set, --add-alias, --add-article, --add-source or --remove")
            }
            try replica.open().edit(id: id, e)
        }
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a record and its child records (aliases, incidents, charges, sources).")
    @OptionGroup var replica: ReplicaOptions
    @Argument(help: "The record's id.") var id: String

    func run() throws {
        try FieldbookCLI.run {
            let n = try replica.open().delete(id: id)
            print("deleted \(n) record\(n == 1 ? "" : "s")")
        }
    }
}

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Re-create a deleted record with the values it had when it was deleted.")
    @OptionGroup var replica: ReplicaOptions
    @Argument(help: "The deleted record's id.") var id: String

    func run() throws {
        try FieldbookCLI.run {
            let table = try replica.open().restore(id: id)
            print("restored \(table) \(id.lowercased())")
        }
    }
}
