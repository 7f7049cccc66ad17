import FieldbookModel
import Foundation
import GRDB
import ReplicaStore
import SyncCore

/// The embedded server store: a replica of every region (the same merge and validation code as
/// the devices) plus the server's own tables: tokens (hashes only), the last accepted push
/// position and owning token per site, quarantined changes and the store's epochs. One SQLite
/// file, `store.sqlite`, in the data directory, with `synchronous=FULL`: an accepted push is on
/// disk before it is acknowledged.
public final class SQLiteServerStore: Sendable {
    public let replica: Replica
    public var site: SiteID { replica.info.site }
    let configuration: ServerConfiguration

    public init(directory: String, configuration: ServerConfiguration = ServerConfiguration()) throws {
        self.configuration = configuration
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent("store.sqlite")
        let cfg = ReplicaConfiguration(clock: configuration.clock, maxDriftMillis: configuration.maxDriftMillis)
        let existed = FileManager.default.fileExists(atPath: path)
        if existed {
            replica = try Replica.open(path: path, tables: FieldbookSchema.sealedTables, configuration: cfg, passphrase: configuration.passphrase)
        } else {
            replica = try Replica.create(path: path, tables: FieldbookSchema.sealedTables, region: "server", device: "fieldbook-server",
                                         configuration: cfg,
                                         protection: configuration.passphrase.map { .passphrase($0, cost: configuration.keyCost) } ?? .none)
        }
        try replica.dbQueue.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS _srv_token (
                    name TEXT PRIMARY KEY NOT NULL, hash BLOB NOT NULL UNIQUE, regions TEXT NOT NULL,
                    coordinator INTEGER NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);
                CREATE TABLE IF NOT EXISTS _srv_site (site TEXT PRIMARY KEY NOT NULL, position INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS _srv_quarantine (
                    id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, site TEXT NOT NULL, token TEXT NOT NULL,
                    tbl TEXT NOT NULL, row_id TEXT NOT NULL, reason TEXT NOT NULL, change TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS _srv_epoch (
                    n INTEGER PRIMARY KEY, epoch INTEGER NOT NULL UNIQUE, start INTEGER NOT NULL, started_at TEXT NOT NULL);
                """)
            // Columns added after the first release.
            try Self.addColumn(db, "_srv_site", "token TEXT")
            try Self.addColumn(db, "_srv_site", "lineage TEXT")
            try Self.addColumn(db, "_srv_site", "lineage_prev TEXT")
            try Self.addColumn(db, "_srv_quarantine", "newest INTEGER NOT NULL DEFAULT 0")
            try Self.addColumn(db, "_srv_quarantine", "error TEXT")
            if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM _srv_epoch") == 0 { try Self.insertEpoch(db) }
            // A store of a release before sealed sync holds values in clear; this release keeps
            // only sealed cells and never serves clear ones.
            if existed, try !db.tableExists("_srv_device"), try (Int.fetchOne(db, sql: "SELECT COUNT(*) FROM _fb_log") ?? 0) > 0 {
                throw ServerError(.internalServerError, "clear_store",
                    "\(path) was written by a release before sealed sync and holds record values in clear. This release keeps only sealed values: serve a new --data directory (devices send everything again, sealed) and, once every device has synced with it, destroy the old one")
            }
            try Self.createDeviceTables(db)
        }
    }

    static func addColumn(_ db: Database, _ table: String, _ definition: String) throws {
        let name = String(definition.prefix { $0 != " " })
        if try !db.columns(in: table).contains(where: { $0.name == name }) {
            try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN \(definition)")
        }
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    /// Runs store work, turning replica failures into classified server errors.
    func mapped<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ReplicaError { throw ServerError.from(e) }
    }

    // MARK: Push

    public func push(_ batch: PushBatch, token: TokenInfo) throws -> PushResponse {
        try mapped {
            try replica.write { w in
                let siteRow = try Row.fetchOne(w.db, sql: "SELECT position, token, lineage, lineage_prev FROM _srv_site WHERE site = ?",
                                               arguments: [batch.site.description])
                let held: Int64 = siteRow?["position"] ?? 0
                let lineage = SiteLineage.push(stored: siteRow.map { SiteLineage(last: $0["lineage"], previous: $0["lineage_prev"]) },
                                               claim: batch.lineage)
                if lineage == .forked { throw ServerError.siteForked(batch.site) }
                if batch.from > held {
                    throw ServerError(.conflict, "sequence_gap",
                        "this server holds position \(held) for site \(batch.site); the batch starts at \(batch.from). Push again from \(held)")
                }
                let facts = try self.facts(for: [batch.changes] + batch.quarantined.map(\.row), w: w,
                                           siteOwner: siteRow?["token"] as String?)
                let plan = try PushAuthorizer.authorize(batch, token: token, facts: facts, serverSite: site)
                let report = try w.apply(plan.apply, origin: try w.originID(for: batch.site))
                try hold(plan.hold, site: batch.site, token: token, db: w.db)
                let position = max(held, batch.to)
                try w.db.execute(sql: """
                    INSERT INTO _srv_site (site, position, token) VALUES (?, ?, ?)
                    ON CONFLICT (site) DO UPDATE SET position = excluded.position, token = coalesce(token, excluded.token)
                    """, arguments: [batch.site.description, position, token.name])
                if case let .accept(l) = lineage {
                    try w.db.execute(sql: "UPDATE _srv_site SET lineage = ?, lineage_prev = ? WHERE site = ?",
                                     arguments: [l.last, l.previous, batch.site.description])
                }
                return PushResponse(applied: report.applied, ignored: report.ignored + plan.dropped,
                                    quarantined: plan.hold.map(\.note), position: position)
            }
        }
    }

    /// What authorising `changesets` needs: the server's own record of every row they name and
    /// of the parents their new child rows name, the site's owner, the rows with held changes.
    func facts(for changesets: [Changeset], w: ReplicaWriter, siteOwner: String?) throws -> PushFacts {
        var facts = PushFacts(siteOwner: siteOwner)
        func lookUp(_ key: RowKey, _ schema: TableSchema) throws -> HeldRow? {
            if let h = facts.held[key] { return h }
            guard let fixed = try w.fixedValues(key.table, id: key.id) else { return nil }
            let row = HeldRow(region: fixed[schema.partition ?? ""]?.text, parent: schema.parent.flatMap { fixed[$0.column]?.text })
            facts.held[key] = row
            return row
        }
        for cs in changesets {
            for t in cs.tables {
                guard let schema = try? FieldbookSchema.sealedTable(named: t.table) else { continue }  // refused by the authoriser
                let parentField = schema.parent.flatMap { t.fields.firstIndex(of: $0.column) }
                for rc in t.rows {
                    if try lookUp(RowKey(t.table, rc.id), schema) == nil, let p = schema.parent, let pf = parentField,
                       let pid = rc.fields.first(where: { $0.field == pf })?.value.text,
                       let parentSchema = try? FieldbookSchema.sealedTable(named: p.table) {
                        _ = try lookUp(RowKey(p.table, pid), parentSchema)
                    }
                }
            }
        }
        for r in try Row.fetchAll(w.db, sql: "SELECT tbl, row_id FROM _srv_quarantine") {
            facts.quarantined.insert(RowKey(r[0], r[1]))
        }
        facts.epochs = try Self.epochs(w.db)
        return facts
    }

    // MARK: Pull

    public func pull(after cursor: StoreCursor?, limit: Int, token: TokenInfo, requester: SiteID?,
                     lineage: SiteLineage.Claim) throws -> PullPage {
        try mapped {
            let (epoch, origin) = try replica.read { db -> (UInt64, Int64?) in
                if let cursor { try Self.check(cursor, store: site, db: db) }
                if let requester {
                    let stored = try Row.fetchOne(db, sql: "SELECT lineage, lineage_prev FROM _srv_site WHERE site = ?",
                                                  arguments: [requester.description])
                        .map { SiteLineage(last: $0[0], previous: $0[1]) }
                    if !SiteLineage.pullAllowed(stored: stored, claim: lineage) { throw ServerError.siteForked(requester) }
                }
                let epoch = try Int64.fetchOne(db, sql: "SELECT epoch FROM _srv_epoch ORDER BY n DESC LIMIT 1") ?? 0
                let origin = try requester.flatMap { r in
                    try Int64.fetchOne(db, sql: "SELECT idx FROM _fb_site WHERE site = ?", arguments: [Data(r.bytes)])
                }
                return (UInt64(bitPattern: epoch), origin)
            }
            let batch = try replica.changes(since: cursor?.position ?? 0, limit: limit, excludingOrigin: origin, partitions: token.scope)
            return PullPage(changes: batch.changeset, cursor: StoreCursor(store: site, epoch: epoch, position: batch.cursor), more: batch.hasMore)
        }
    }


    /// Refuses a cursor that this store did not issue in the timeline it has now.
    static func check(_ cursor: StoreCursor, store: SiteID, db: Database) throws {
        let reset = ServerError.cursorReset
        guard cursor.store == store, cursor.xid == nil,
              let n = try Int64.fetchOne(db, sql: "SELECT n FROM _srv_epoch WHERE epoch = ?", arguments: [Int64(bitPattern: cursor.epoch)])
        else { throw reset }
        let end = try Int64.fetchOne(db, sql: "SELECT start FROM _srv_epoch WHERE n > ? ORDER BY n LIMIT 1", arguments: [n])
            ?? Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM _fb_log") ?? 0
        guard cursor.position <= end else { throw reset }
    }

    /// Starts a new epoch (a server process opened the store); see `StoreCursor`.
    public func beginEpoch() throws {
        try replica.writeDatabase { db in try Self.insertEpoch(db) }
    }

    static func insertEpoch(_ db: Database) throws {
        var rng = SystemRandomNumberGenerator()
        let start = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM _fb_log") ?? 0
        try db.execute(sql: "INSERT INTO _srv_epoch (epoch, start, started_at) VALUES (?, ?, ?)",
                       arguments: [Int64(bitPattern: rng.next()), start, now()])
    }
}
