import FieldbookModel
import GRDB
import ReplicaStore

/// A record whose parent this replica does not hold: typically an incident added on one laptop
/// while another deleted its person. Kept, never dropped; shown by `fieldbook check` and in the
/// JSON export (lists and the CSV export go from persons down and cannot show it).
public struct OrphanView: Codable, Sendable, Equatable {
    public var table: String
    public var id: String
    public var region: String
    public var parent_table: String
    public var parent_id: String
    /// Whether this replica saw the parent deleted (then `fieldbook restore PARENT` brings it
    /// back); false when it never saw the parent at all.
    public var parent_deleted: Bool
    /// Every field that has a value, as text.
    public var fields: [String: String]
    /// For an incident: the incident with its charges and sources.
    public var incident: IncidentView?
}

/// A record whose fields, combined from concurrent edits, break a rule across fields (each
/// edit kept the rules where it was made).
public struct InconsistentRecord: Codable, Sendable, Equatable {
    public var table: String
    public var id: String
    public var field: String
    public var problem: String
}

/// What `fieldbook check` finds.
public struct CheckReport: Codable, Sendable, Equatable {
    public var orphans: [OrphanView]
    public var inconsistent: [InconsistentRecord]
    public var isClean: Bool { orphans.isEmpty && inconsistent.isEmpty }
}

extension FieldbookStore {
    /// Records whose parent is missing, and records whose fields break a rule across fields —
    /// after every page of an encrypted replica has been read and authenticated (free pages
    /// included) and SQLite's integrity check has passed: damage fails the check (`.damaged`).
    public func check() throws -> CheckReport {
        do { _ = try replica.verifyPages() } catch { throw FieldbookError.from(error) }
        let problems = try read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
        if problems != ["ok"] {
            throw FieldbookError(.damaged, "the replica is damaged: \(problems.prefix(5).joined(separator: "; "))")
        }
        return CheckReport(orphans: try orphans(), inconsistent: try inconsistent())
    }

    /// Child records whose parent this replica does not hold, by table then id.
    public func orphans() throws -> [OrphanView] {
        try read { db in
            var out: [OrphanView] = []
            for schema in FieldbookSchema.tables {
                guard let parent = schema.parent else { continue }
                let parentIndex = try Int64.fetchOne(db, sql: "SELECT idx FROM _fb_table WHERE name = ?", arguments: [parent.table])
                let column = parent.column.quotedDatabaseIdentifier
                let rows = try Row.fetchAll(db, sql: """
                    SELECT * FROM \(schema.name.quotedDatabaseIdentifier)
                    WHERE \(column) NOT IN (SELECT id FROM \(parent.table.quotedDatabaseIdentifier)) ORDER BY id
                    """)
                for row in rows {
                    let pid: String = row[parent.column] ?? ""
                    var fields: [String: String] = [:]
                    for c in schema.columnNames { if let v = Value.fromDatabaseValue(row[c]), !v.isNull { fields[c] = v.display } }
                    let deleted = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM _fb_tombstone WHERE tbl = ? AND row_id = ?)",
                                                    arguments: [parentIndex, pid]) ?? false
                    out.append(OrphanView(table: schema.name, id: row["id"], region: row["region"] ?? "", parent_table: parent.table,
                                          parent_id: pid, parent_deleted: deleted, fields: fields,
                                          incident: schema.name == "incident" ? try incidentView(db, row) : nil))
                }
            }
            return out
        }
    }

    /// Records breaking a rule across fields (`TableSchema.rowCheck`), by table then id.
    public func inconsistent() throws -> [InconsistentRecord] {
        try read { db in
            var out: [InconsistentRecord] = []
            for schema in FieldbookSchema.tables where schema.rowCheck != nil {
                let columns = schema.columnNames.map(\.quotedDatabaseIdentifier).joined(separator: ",")
                for row in try Row.fetchAll(db, sql: "SELECT id, \(columns) FROM \(schema.name.quotedDatabaseIdentifier) ORDER BY id") {
                    let values = schema.columns.indices.map { Value.fromDatabaseValue(row[$0 + 1]) ?? .null }
                    do throws(ModelError) { try schema.checkRow(values) } catch {
                        out.append(InconsistentRecord(table: schema.name, id: row[0], field: error.field, problem: error.reason))
                    }
                }
            }
            return out
        }
    }
}
