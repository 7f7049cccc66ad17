import FieldbookModel
import Foundation
import GRDB
import ReplicaStore
import SyncCore

/// The embedded server store: a replica of every region (the same merge and validation code as
/// the devices) plus the server's own tables: tokens (hashes only), the last accepted push
/// position per site, and quarantined changes. One SQLite file, `store.sqlite`, in the data
/// directory, with `synchronous=FULL`: an accepted push is on disk before it is acknowledged.
public final class SQLiteServerStore: ServerStore {
    public let replica: Replica
    public var site: SiteID { replica.info.site }

    public init(directory: String, configuration: ServerConfiguration = ServerConfiguration()) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent("store.sqlite")
        let cfg = ReplicaConfiguration(clock: configuration.clock, maxDriftMillis: configuration.maxDriftMillis)
        if FileManager.default.fileExists(atPath: path) {
            replica = try Replica.open(path: path, tables: FieldbookSchema.tables, configuration: cfg)
        } else {
            replica = try Replica.create(path: path, tables: FieldbookSchema.tables, region: "server", device: "fieldbook-server",
                                         configuration: cfg)
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
                """)
        }
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    // MARK: Push and pull

    public func push(_ batch: PushBatch, token: TokenInfo) throws -> PushResponse {
        do {
            return try replica.write { w in
                let held = try Int64.fetchOne(w.db, sql: "SELECT position FROM _srv_site WHERE site = ?", arguments: [batch.site.description]) ?? 0
                if batch.from > held {
                    throw ServerError(.conflict, "sequence_gap",
                        "this server holds position \(held) for site \(batch.site); the batch starts at \(batch.from). Push again from \(held)")
                }
                try authorize(batch.changes, token: token, db: w.db)
                let report = try w.apply(batch.changes, origin: try w.originID(for: batch.site))
                let encoder = JSONEncoder()
                for q in batch.quarantined {
                    let json = String(decoding: try encoder.encode(WireChangeset(q.row)), as: UTF8.self)
                    try w.db.execute(sql: "INSERT INTO _srv_quarantine (received_at, site, token, tbl, row_id, reason, change) VALUES (?,?,?,?,?,?,?)",
                                     arguments: [Self.now(), batch.site.description, token.name, q.note.table, q.note.id, q.note.reason, json])
                }
                let position = max(held, batch.to)
                try w.db.execute(sql: "INSERT OR REPLACE INTO _srv_site (site, position) VALUES (?, ?)", arguments: [batch.site.description, position])
                return PushResponse(applied: report.applied, ignored: report.ignored, quarantined: batch.quarantined.map(\.note), position: position)
            }
        } catch let e as ReplicaError {
            throw ServerError.badRequest(e.kind == .clock ? "clock" : "invalid", e.message)
        }
    }

    /// Every row change must belong to one of the token's regions: the `region` it carries, or
    /// the region of the row the server already has.
    func authorize(_ cs: Changeset, token: TokenInfo, db: Database) throws {
        for t in cs.tables {
            let regionField = t.fields.firstIndex(of: "region")
            for rc in t.rows {
                var region = regionField.flatMap { i in rc.fields.first { $0.field == i }?.value.text }
                if region == nil, FieldbookSchema.tables.contains(where: { $0.name == t.table }) {
                    // Prepared once per connection (cachedStatement), not once per row.
                    region = try String.fetchOne(db.cachedStatement(sql: "SELECT region FROM \"\(t.table)\" WHERE id = ?"), arguments: [rc.id])
                    if region == nil {
                        region = try String.fetchOne(db.cachedStatement(sql: """
                            SELECT part FROM _fb_tombstone JOIN _fb_table ON _fb_table.idx = _fb_tombstone.tbl
                            WHERE _fb_table.name = ? AND row_id = ?
                            """), arguments: [t.table, rc.id])
                    }
                }
                guard let region else {
                    if rc.isDelete { continue }  // a delete of a row this server never saw changes nothing anyone has
                    throw ServerError.badRequest("missing_region", "\(t.table) \(rc.id) is not known here and its change carries no region")
                }
                guard token.allows(region: region) else {
                    throw ServerError(.forbidden, "region_not_allowed",
                        "token \"\(token.name)\" may not write region \"\(region)\" (\(t.table) \(rc.id)); it covers: \(token.regions.joined(separator: ", "))")
                }
            }
        }
    }

    public func pull(after cursor: Int64, limit: Int, token: TokenInfo, requester: SiteID?) throws -> PullPage {
        var origin: Int64? = nil
        if let requester {
            origin = try replica.read { db in
                try Int64.fetchOne(db, sql: "SELECT idx FROM _fb_site WHERE site = ?", arguments: [Data(requester.bytes)])
            }
        }
        let batch = try replica.changes(since: cursor, limit: limit, excludingOrigin: origin, partitions: token.scope)
        return PullPage(changes: batch.changeset, cursor: batch.cursor, more: batch.hasMore)
    }

    // MARK: Tokens and quarantine

    public func token(hash: [UInt8]) throws -> TokenInfo? {
        try replica.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM _srv_token WHERE hash = ? AND revoked_at IS NULL", arguments: [Data(hash)]).map(Self.token)
        }
    }

    static func token(_ r: Row) -> TokenInfo {
        TokenInfo(name: r["name"], regions: (r["regions"] as String).split(separator: ",").map(String.init),
                  coordinator: r["coordinator"], createdAt: r["created_at"], revokedAt: r["revoked_at"])
    }

    public func createToken(name: String, hash: [UInt8], regions: [String], coordinator: Bool) throws -> TokenInfo {
        let info = TokenInfo(name: name, regions: regions, coordinator: coordinator, createdAt: Self.now())
        do {
            try replica.dbQueue.write { db in
                try db.execute(sql: "INSERT INTO _srv_token (name, hash, regions, coordinator, created_at) VALUES (?,?,?,?,?)",
                               arguments: [name, Data(hash), regions.joined(separator: ","), coordinator, info.createdAt])
            }
        } catch let e as DatabaseError where e.resultCode.primaryResultCode == .SQLITE_CONSTRAINT {
            throw ServerError(.conflict, "exists", "a token named \"\(name)\" already exists (revoked tokens keep their name)")
        }
        return info
    }

    public func tokens() throws -> [TokenInfo] {
        try replica.read { db in try Row.fetchAll(db, sql: "SELECT * FROM _srv_token ORDER BY name").map(Self.token) }
    }

    public func revokeToken(name: String) throws {
        let changed = try replica.dbQueue.write { db -> Int in
            try db.execute(sql: "UPDATE _srv_token SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", arguments: [Self.now(), name])
            return db.changesCount
        }
        if changed == 0 { throw ServerError(.notFound, "not_found", "no active token named \"\(name)\"") }
    }

    public func quarantine() throws -> [QuarantineEntry] {
        try replica.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM _srv_quarantine ORDER BY id").map {
                QuarantineEntry(receivedAt: $0["received_at"], site: $0["site"], token: $0["token"], table: $0["tbl"], id: $0["row_id"], reason: $0["reason"])
            }
        }
    }
}
