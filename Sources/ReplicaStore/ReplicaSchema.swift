import FieldbookModel
import GRDB

/// The replica's SQLite schema: the registered tables with plain typed columns, plus the
/// metadata tables (`_fb_*`). Versions are GRDB migrations.
enum ReplicaSchema {
    static func migrator(for tables: [TableSchema]) -> DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("fieldbook-metadata-v1") { db in
            try db.execute(sql: """
                CREATE TABLE _fb_replica (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    site BLOB NOT NULL,
                    region TEXT NOT NULL,
                    device TEXT,
                    hlc INTEGER NOT NULL DEFAULT 0,
                    created_at TEXT NOT NULL);
                CREATE TABLE _fb_site (idx INTEGER PRIMARY KEY, site BLOB NOT NULL UNIQUE);
                CREATE TABLE _fb_table (idx INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
                CREATE TABLE _fb_log (seq INTEGER PRIMARY KEY, entries INTEGER NOT NULL, body BLOB NOT NULL);
                CREATE TABLE _fb_tombstone (
                    tbl INTEGER NOT NULL,
                    row_id TEXT NOT NULL,
                    cl INTEGER NOT NULL,
                    hlc INTEGER NOT NULL,
                    site INTEGER NOT NULL,
                    part TEXT,
                    PRIMARY KEY (tbl, row_id)) WITHOUT ROWID;
                CREATE TABLE _fb_lost (
                    tbl INTEGER NOT NULL,
                    row_id TEXT NOT NULL,
                    field INTEGER NOT NULL,
                    hlc INTEGER NOT NULL,
                    site INTEGER NOT NULL,
                    cl INTEGER NOT NULL,
                    value,
                    seq INTEGER NOT NULL,
                    PRIMARY KEY (tbl, row_id, field, hlc, site)) WITHOUT ROWID;
                CREATE TABLE _fb_kv (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
                """)
        }
        for t in tables where t.since == 1 { registerTable(t, in: &m) }
        m.registerMigration("fieldbook-site-names-v1") { db in
            try db.execute(sql: "ALTER TABLE _fb_site ADD COLUMN name TEXT")
            try db.execute(sql: "UPDATE _fb_site SET name = (SELECT device FROM _fb_replica WHERE id = 1) WHERE idx = 1")
        }
        m.registerMigration("fieldbook-tombstone-fixed-v1") { db in
            // The values that never change (region, parent ids) of a deleted row, so that a
            // re-creation can be held to them.
            try db.execute(sql: "ALTER TABLE _fb_tombstone ADD COLUMN fixed BLOB")
        }
        // Tables and columns of later schema versions, in version order (a new version only
        // appends: docs/PROTOCOL.md, "Adding tables and fields"). A column is added at the end
        // of its table, so the positions that rows' clocks and the change log use stay put.
        let latest = tables.flatMap { t in t.columns.map(\.since) + [t.since] }.max() ?? 1
        if latest >= 2 {
            for version in 2...latest {
                for t in tables where t.since == version { registerTable(t, in: &m) }
                for t in tables where t.since < version {
                    for c in t.columns where c.since == version {
                        m.registerMigration("column \(t.name).\(c.name) v\(version)") { db in
                            try db.execute(sql: "ALTER TABLE \(quote(t.name)) ADD COLUMN \(quote(c.name)) \(c.type.rawValue)")
                            if t.indexed.contains(c.name) { try createIndex(db, t, c.name) }
                        }
                    }
                }
            }
        }
        return m
    }

    /// A table as its first version had it (later columns come by their own migrations).
    private static func registerTable(_ t: TableSchema, in m: inout DatabaseMigrator) {
        m.registerMigration("table \(t.name) v1") { db in
            let first = t.columns.filter { $0.since == t.since }
            let cols = first.map { "\(quote($0.name)) \($0.type.rawValue)" }.joined(separator: ", ")
            try db.execute(sql: "CREATE TABLE \(quote(t.name)) (id TEXT PRIMARY KEY NOT NULL, \(cols), _cl INTEGER NOT NULL, _clocks BLOB NOT NULL)")
            for c in t.indexed where first.contains(where: { $0.name == c }) { try createIndex(db, t, c) }
            try db.execute(sql: "INSERT INTO _fb_table (name) VALUES (?)", arguments: [t.name])
        }
    }

    private static func createIndex(_ db: Database, _ t: TableSchema, _ column: String) throws {
        try db.execute(sql: "CREATE INDEX \(quote("\(t.name)_\(column)")) ON \(quote(t.name))(\(quote(column)))")
    }

    static func quote(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
