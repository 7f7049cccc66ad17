import FieldbookModel
import Foundation
import SyncCore
import SyncServer

/// What applying a changeset to the rows as they stand writes: the rows created and the rows
/// changed (each as it stands after the merge), and the log entries in the order the changes
/// were applied. Decided here, from values only, by the one merge decision (`RowMerge`); the
/// store writes it (`PostgresServerStore.write`).
struct RowWrites: Sendable {
    struct LogEntry: Sendable {
        var table: String
        var id: String
        /// The row's region, "" for none.
        var region: String
        var change: Data
    }

    var inserts: [StoredRow] = []
    var updates: [StoredRow] = []
    var log: [LogEntry] = []
    var applied = 0
    var ignored = 0

    var isEmpty: Bool { inserts.isEmpty && updates.isEmpty && log.isEmpty }

    /// Merges `cs` into `state` (the rows it names as they stand; a row absent is new).
    static func merging(_ cs: Changeset, into stored: [RowKey: StoredRow]) throws -> RowWrites {
        var state = stored
        var out = RowWrites()
        var changed = Set<RowKey>()
        for t in cs.tables {
            let schema = try FieldbookSchema.sealedTable(named: t.table)
            let columns = try t.fields.map { f throws(ModelError) in try schema.index(of: f) }
            let regionColumn = schema.partition.flatMap { schema.hasColumn($0) ? try? schema.index(of: $0) : nil }
            let parentColumn = schema.parent.flatMap { schema.hasColumn($0.column) ? try? schema.index(of: $0.column) : nil }
            let immutable = schema.immutable.compactMap { try? schema.index(of: $0) }.sorted()
            for rc in t.rows {
                let key = RowKey(t.table, rc.id)
                guard cs.sites.indices.contains(rc.site) else { throw ServerError.badRequest("malformed", "a row names site \(rc.site), which the changeset lacks") }
                let incoming = RowMerge.Incoming(
                    cl: rc.cl, existence: FieldVersion(hlc: HLC(rawValue: rc.hlc), site: cs.sites[rc.site]),
                    fields: try rc.fields.map { f in
                        guard columns.indices.contains(f.field), cs.sites.indices.contains(f.site) else {
                            throw ServerError.badRequest("malformed", "a field change names a field or site the changeset lacks")
                        }
                        return RowMerge.Field(column: columns[f.field], value: f.value, version: FieldVersion(hlc: HLC(rawValue: f.hlc), site: cs.sites[f.site]))
                    })
                let held = state[key]
                var fixed: [Int: Value] = [:]
                if let c = regionColumn, let r = held?.region { fixed[c] = .text(r) }
                if let c = parentColumn, let p = held?.parent { fixed[c] = .text(p) }
                let local = held.map { h in
                    RowMerge.Local(cl: h.cl, existence: h.existence,
                                   versions: h.cl % 2 == 1 ? Dictionary(h.cells.map { ($0.c, $0.version) }, uniquingKeysWith: { a, _ in a }) : [:],
                                   fixed: fixed)
                }
                let plan: RowMerge.Plan
                do { plan = try RowMerge.plan(incoming, local: local, immutable: immutable) } catch {
                    throw ServerError.badRequest("invalid", "\(t.table) \(rc.id): \(error) (what never changes — region, parent — cannot change)")
                }
                out.applied += plan.applied
                out.ignored += plan.ignored
                guard plan.storage != .nothing else { continue }
                var cells = held?.cells ?? []
                let taken = plan.taken.map { StoredCell(c: $0.column, v: $0.value, h: $0.version.hlc.rawValue, s: $0.version.site) }
                switch plan.storage {
                case .create: cells = taken
                case .delete: cells = []
                case .moveExistence, .update:
                    for c in taken { cells.removeAll { $0.c == c.c }; cells.append(c) }
                case .nothing: break
                }
                cells.sort { $0.c < $1.c }
                let region = held?.region ?? regionColumn.flatMap { c in plan.taken.first { $0.column == c }?.value.text }
                let parent = held?.parent ?? parentColumn.flatMap { c in plan.taken.first { $0.column == c }?.value.text }
                state[key] = StoredRow(table: t.table, id: rc.id, region: region, parent: parent, cl: plan.cl, existence: plan.existence, cells: cells)
                changed.insert(key)
                out.log.append(LogEntry(table: t.table, id: rc.id, region: region ?? "",
                                        change: CellCoding.encode(LoggedChange(cl: plan.cl, h: plan.existence.hlc.rawValue, s: plan.existence.site, f: taken))))
            }
        }
        for key in changed.sorted(by: { ($0.table, $0.id) < ($1.table, $1.id) }) {
            guard let row = state[key] else { continue }
            if stored[key] == nil { out.inserts.append(row) } else { out.updates.append(row) }
        }
        return out
    }
}
