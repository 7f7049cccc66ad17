import FieldbookModel
import Foundation
import GRDB
import ReplicaStore
import SealedSync

/// Changes a replica received and kept aside instead of applying: values that did not open
/// (altered, moved, or under a key this device does not hold yet) and values that opened but
/// break the model (a buggy or hostile device). Each names the site that wrote it; the rest of
/// the sync goes on. Reported by `fieldbook status` and `fieldbook check`.
public enum RefusedChanges {
    public struct Entry: Sendable, Codable, Equatable {
        public var id: Int64
        public var receivedAt: String
        public var remote: String
        public var table: String
        public var row: String
        public var site: String
        /// `no_key` (tried again when keys arrive), `does_not_open`, `malformed`, `invalid`.
        public var kind: String
        public var reason: String

        enum CodingKeys: String, CodingKey {
            case id, remote, table, row, site, kind, reason
            case receivedAt = "received_at"
        }
    }

    static func ensureTable(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS _fb_refused (
                id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, remote TEXT NOT NULL, tbl TEXT NOT NULL, row_id TEXT NOT NULL,
                site TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL, change BLOB NOT NULL)
            """)
    }

    static func kind(_ k: SealedSyncError.Kind) -> String {
        switch k {
        case .missingKey: "no_key"
        case .doesNotOpen: "does_not_open"
        default: "malformed"
        }
    }

    /// Keeps a refused row change (its sealed or opened form, in the binary wire form).
    static func record(_ db: Database, remote: String, table: String, row: String, site: SiteID, kind: String, reason: String,
                       change: Changeset) throws {
        try ensureTable(db)
        try db.execute(sql: "INSERT INTO _fb_refused (received_at, remote, tbl, row_id, site, kind, reason, change) VALUES (?,?,?,?,?,?,?,?)",
                       arguments: [ISO8601DateFormatter().string(from: Date()), remote, table, row, site.description, kind, reason,
                                   Data(WireChangeset(change).binary())])
    }

    public static func all(_ replica: Replica) throws -> [Entry] {
        try replica.read { db in
            guard try db.tableExists("_fb_refused") else { return [] }
            return try Row.fetchAll(db, sql: "SELECT * FROM _fb_refused ORDER BY id").map {
                Entry(id: $0["id"], receivedAt: $0["received_at"], remote: $0["remote"], table: $0["tbl"], row: $0["row_id"],
                      site: $0["site"], kind: $0["kind"], reason: $0["reason"])
            }
        }
    }

    /// The row changes kept for want of a key, for `remote`, to open again now that keys arrived.
    static func waitingForKeys(_ db: Database, remote: String) throws -> [(id: Int64, change: Changeset)] {
        guard try db.tableExists("_fb_refused") else { return [] }
        return try Row.fetchAll(db, sql: "SELECT id, change FROM _fb_refused WHERE kind = 'no_key' AND remote = ? ORDER BY id", arguments: [remote])
            .compactMap { r in
                guard let cs = try? WireChangeset(binary: [UInt8](r["change"] as Data)).changeset() else { return nil }
                return (r["id"], cs)
            }
    }

    static func remove(_ db: Database, id: Int64) throws {
        try db.execute(sql: "DELETE FROM _fb_refused WHERE id = ?", arguments: [id])
    }
}
