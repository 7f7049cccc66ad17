import ArgumentParser
import FieldbookKit
import FieldbookModel
import Foundation

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Every value each field of a record has had: time (UTC), device, and whether it is the current winner.")

    @OptionGroup var replica: ReplicaOptions
    @Argument(help: "The record's id (deleted records too).") var id: String

    func run() throws {
        try FieldbookCLI.run {
            let store = try replica.open()
            let (table, entries) = try store.history(id: id)
            let me = store.replica.info.site
            let fmt = ISO8601DateFormatter()
            fmt.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            print(Terminal.safe("\(table) \(id.lowercased())"))
            var t = Table(header: ["TIME (UTC)", "FIELD", "VALUE", "DEVICE", "STATUS"])
            // A field that was only ever empty has no history worth a line.
            let counts = Dictionary(grouping: entries.compactMap(\.field), by: { $0 }).mapValues(\.count)
            for e in entries where !(e.field != nil && e.value.isNull && counts[e.field!] == 1) {
                let time = fmt.string(from: Date(timeIntervalSince1970: Double(e.hlc.millis) / 1000))
                let device = e.site == me ? "this device\(store.replica.info.device.map { " (\($0))" } ?? "")"
                    : (e.device ?? "site \(String(e.site.description.prefix(8)))")
                let status: String
                switch e.kind {
                case .deleted: status = "deleted"
                case .recreated: status = "re-created"
                case .lost: status = "lost a conflict"
                default: status = e.isCurrent ? "current" : "overwritten"
                }
                t.rows.append([time, e.field ?? "(record)", e.field == nil ? "" : cell(e.value.display, max: 50), device, status])
            }
            print(t.render())
        }
    }
}
