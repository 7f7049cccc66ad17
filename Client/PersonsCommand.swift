import FieldbookModel
import ArgumentParser
import FieldbookKit
import Foundation

/// `fieldbook persons …`: work on the persons as a whole (coordinators).
struct PersonsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "persons", abstract: "Persons as a whole: the same person recorded under several spellings and scripts.",
        subcommands: [Duplicates.self, Merge.self, Unmerge.self, Distinct.self])

    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record that OTHER is the same person as KEEP: lists, exports and reports then show one person.",
            discussion: """
                One field change (OTHER's merged_into), which syncs like any edit and shows in `fieldbook history OTHER`; \
                `fieldbook persons unmerge OTHER` undoes it exactly. No record is rewritten: OTHER keeps its names and incidents, \
                shown under KEEP.
                """)
        @OptionGroup var replica: ReplicaOptions
        @Argument(help: "The person to keep (its name and fields come first).") var keep: String
        @Argument(help: "The person merged into KEEP.") var other: String

        func run() throws {
            try FieldbookCLI.run {
                let store = try replica.open()
                try store.merge(keep: keep, other: other)
                print("merged \(other.lowercased()) into \(keep.lowercased()) (undo: fieldbook persons unmerge \(other.lowercased()))")
            }
        }
    }

    struct Unmerge: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Undo `persons merge KEEP OTHER`: OTHER is a person of its own again.")
        @OptionGroup var replica: ReplicaOptions
        @Argument(help: "The person that was merged (OTHER of the merge).") var other: String

        func run() throws {
            try FieldbookCLI.run {
                try replica.open().unmerge(other: other)
                print("unmerged \(other.lowercased())")
            }
        }
    }

    struct Distinct: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record that A and B are different people, so `persons duplicates` no longer proposes them (synced like any record).")
        @OptionGroup var replica: ReplicaOptions
        @Argument(help: "A person id.") var a: String
        @Argument(help: "Another person id.") var b: String
        @Flag(help: "Withdraw the judgement instead.") var undo = false

        func run() throws {
            try FieldbookCLI.run {
                let store = try replica.open()
                if undo {
                    try store.undoDistinct(a, b)
                    print("\(a.lowercased()) and \(b.lowercased()) are no longer recorded as different people")
                } else if try store.distinct(a, b) {
                    print("recorded: \(a.lowercased()) and \(b.lowercased()) are different people")
                } else {
                    print("\(a.lowercased()) and \(b.lowercased()) were recorded as different people already")
                }
            }
        }
    }

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
