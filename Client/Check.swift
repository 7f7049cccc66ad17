import ArgumentParser
import FieldbookKit
import Foundation

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find records that need a person's attention: orphans (a parent deleted on another device) and records whose concurrent edits combined against a rule.",
        discussion: "Exit 0 when nothing is found, 1 when something is (listed), other codes as usual.")

    @OptionGroup var replica: ReplicaOptions
    @Flag(help: "One JSON object: {\"orphans\": [...], \"inconsistent\": [...]}.") var json = false

    func run() throws {
        var found: CheckReport?
        try FieldbookCLI.run { found = try replica.open().check() }
        guard let report = found else { return }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            FileHandle.standardOutput.write(try e.encode(report) + Data("\n".utf8))
        } else {
            print(Self.text(report), terminator: "")
        }
        if !report.isClean { throw ExitCode(1) }
    }

    static func text(_ report: CheckReport) -> String {
        if report.isClean { return "no problems found\n" }
        var out = ""
        if !report.orphans.isEmpty {
            out += "\(report.orphans.count) orphan record\(report.orphans.count == 1 ? "" : "s") (kept; not in lists or the CSV export):\n"
            for o in report.orphans {
                let what = o.incident.map { "\($0.kind) \($0.date)" } ?? o.fields["name"] ?? o.fields["article"] ?? o.fields["outlet"] ?? o.fields["url"] ?? ""
                out += "  \(o.table) \(o.id) (\(Terminal.safe(o.region))) \(Terminal.safe(what))\n"
                if o.parent_deleted {
                    out += "    its \(o.parent_table) \(o.parent_id) was deleted: `fieldbook restore \(o.parent_id)` brings it back, or `fieldbook delete \(o.id)`\n"
                } else {
                    out += "    its \(o.parent_table) \(o.parent_id) is not on this replica (not synced yet?)\n"
                }
            }
        }
        if !report.inconsistent.isEmpty {
            out += "\(report.inconsistent.count) record\(report.inconsistent.count == 1 ? "" : "s") whose concurrent edits combined against a rule:\n"
            for r in report.inconsistent {
                out += "  \(r.table) \(r.id): \(Terminal.safe(r.field)) \(Terminal.safe(r.problem)); correct it with `fieldbook edit \(r.id) --set FIELD=VALUE`\n"
            }
        }
        return out
    }
}
