import FieldbookModel
import ArgumentParser
import FieldbookKit
import Foundation
import ReplicaStore
import SyncClient

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find records that need a person's attention: orphans (a parent deleted on another device), records whose concurrent edits combined against a rule, and received changes kept aside (they did not open, or broke the model).",
        discussion: "Exit 0 when nothing is found, 1 when something is (listed), other codes as usual.")

    @OptionGroup var replica: ReplicaOptions
    @Flag(help: "One JSON object: {\"orphans\": [...], \"inconsistent\": [...], \"refused\": [...]}.") var json = false

    struct Full: Encodable {
        var orphans: [OrphanView]
        var inconsistent: [InconsistentRecord]
        var refused: [RefusedChanges.Entry]
        var protection: [String]
    }

    func run() throws {
        var found: CheckReport?
        var refused: [RefusedChanges.Entry] = []
        var protection: [String] = []
        try FieldbookCLI.run {
            let store = try replica.open()
            found = try store.check()
            refused = try RefusedChanges.all(store.replica)
            // Weak slots made on purpose by a test (which said so with FIELDBOOK_TESTING_WEAK_KDF=1)
            // are left to `status`; everything else that weakens the file is a finding.
            let testing = ProcessInfo.processInfo.environment[KeySlots.Cost.testConsentVariable] == "1"
            protection = Replica.protectionWarnings(path: store.replica.path).filter { !(testing && $0.hasPrefix("weak key slots")) }
        }
        guard let report = found else { return }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            FileHandle.standardOutput.write(try e.encode(Full(orphans: report.orphans, inconsistent: report.inconsistent, refused: refused, protection: protection)) + Data("\n".utf8))
        } else {
            if !(report.isClean && refused.isEmpty) || protection.isEmpty { print(Self.text(report, refused: refused), terminator: "") }
            for w in protection { print("protection: \(Terminal.safe(w))") }
        }
        if !report.isClean || !refused.isEmpty || !protection.isEmpty { throw ExitCode(1) }
    }

    static func text(_ report: CheckReport, refused: [RefusedChanges.Entry]) -> String {
        if report.isClean && refused.isEmpty { return "no problems found\n" }
        var out = ""
        if !refused.isEmpty {
            out += "\(refused.count) received change\(refused.count == 1 ? "" : "s") kept aside (not applied; the rest of each sync went on):\n"
            for r in refused {
                out += "  \(Terminal.safe(r.table)) \(Terminal.safe(r.row)) from site \(r.site) via \(Terminal.safe(r.remote)), \(r.kind): \(Terminal.safe(r.reason))\n"
            }
        }
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
