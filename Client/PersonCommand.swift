import ArgumentParser
import FieldbookKit

struct PersonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "person", abstract: "Add persons.", subcommands: [Add.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a person; prints the new id.")
        @OptionGroup var replica: ReplicaOptions
        @Option(help: "The name as most often spelled.") var name: String
        @Option(help: "Another spelling (repeatable).") var alias: [String] = []
        @Option(help: "Date of birth, EDTF (1976, 1976-05, 1976/1977, 1976~).") var born: String?
        @Option(help: "f or m.") var sex: String?
        @Option var occupation: String?
        @Option var affiliation: String?
        @Option var notes: String?
        @Option(help: "Owning region (default: the replica's).") var region: String?

        func run() throws {
            try FieldbookCLI.run {
                let store = try replica.open()
                var fields = ["name": name]
                for (k, v) in [("born", born), ("sex", sex), ("occupation", occupation), ("affiliation", affiliation), ("notes", notes)] {
                    if let v { fields[k] = v }
                }
                print(try store.addPerson(fields: fields, aliases: alias, region: region))
                Warnings.regionCoverage(region ?? store.region, store.replica)
            }
        }
    }
}
