import ArgumentParser
import FieldbookKit
import Foundation

/// `fieldbook persons …`: work on the persons as a whole (coordinators).
struct PersonsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "persons", abstract: "Persons as a whole: the same person recorded under several spellings and scripts.",
        subcommands: [Duplicates.self])

    struct Duplicates: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Candidate pairs of persons who may be one, best first, with a score in [0, 1] and the reasons.")
        @OptionGroup var replica: ReplicaOptions
        @Option(help: "The lowest score shown (default \(DuplicateFinder.defaultMinScore)).") var minScore: Double = DuplicateFinder.defaultMinScore
        @Option(help: "Only persons of this region.") var region: String?
        @Flag(help: "A JSON array of objects with a, b (person ids), a_name, b_name, score and reasons.") var json = false

        func run() throws {
            try FieldbookCLI.run {
                let pairs = try replica.open().duplicates(minScore: minScore, region: region)
                if json {
                    let e = JSONEncoder()
                    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    FileHandle.standardOutput.write(try e.encode(pairs) + Data("\n".utf8))
                    return
                }
                if pairs.isEmpty { print("no candidate pairs at score \(minScore) or above") }
                for p in pairs {
                    print(String(format: "%.3f  %@ [%@]  ~  %@ [%@]", p.score, Terminal.safe(p.aName), p.a, Terminal.safe(p.bName), p.b))
                    for r in p.reasons { print("       \(Terminal.safe(r))") }
                }
            }
        }
    }
}
