import FieldbookModel
import FieldbookTLS
import Foundation
import GRDB
import ReplicaStore

/// A server this replica syncs with, and where the last sync left off.
public struct Remote: Sendable, Equatable {
    public var name: String
    public var url: String
    public var token: String
    /// The id recorded as the origin of changes pulled from this remote (not pushed back to it).
    public var origin: Int64
    /// Local log position up to which changes were pushed.
    public var pushCursor: Int64
    /// The server's cursor after the last applied pull page.
    public var pullCursor: String?
    public var lastSync: String?
    public var lastError: String?
    /// This device's changes that the server held at the last sync, and why.
    public var held: [QuarantineNote]
    /// The regions its token covered at the last sync (`*`: every region); nil before the first
    /// sync, or when the server does not say.
    public var regions: [String]?
    /// The pinned key of the server's certificate (`sha256:…`), when set: nothing else is trusted.
    public var pin: String?
    /// This device's name on that server (its token's), learnt at the first sync.
    public var device: String?

    /// The regions pushed to it; nil for every region (or not known).
    public var partitions: Set<String>? {
        guard let regions, !regions.contains(SyncProtocol.allRegions) else { return nil }
        return Set(regions)
    }
}

/// The remotes table (`_fb_remote`) inside the replica file.
public enum Remotes {
    static let originBase: Int64 = 1 << 20

    /// `quarantined` is no longer written (what the server holds is in `held`); the column stays
    /// so that files of every release have the same table.
    static func ensureTable(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS _fb_remote (
                id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, url TEXT NOT NULL, token TEXT NOT NULL,
                push_cursor INTEGER NOT NULL DEFAULT 0, pull_cursor TEXT, last_sync TEXT, last_error TEXT,
                quarantined INTEGER NOT NULL DEFAULT 0, held TEXT, push_ack TEXT, push_inflight TEXT, regions TEXT, keyed_regions TEXT,
                pin TEXT, device TEXT, schema INTEGER)
            """)
    }

    /// Columns added after the first release, added to older replicas when they are next written.
    public static func migrate(_ db: Database) throws {
        guard try db.tableExists("_fb_remote") else { return }
        let columns = Set(try db.columns(in: "_fb_remote").map(\.name))
        for c in ["held", "push_ack", "push_inflight", "regions", "keyed_regions", "pin", "device"] where !columns.contains(c) {
            try db.execute(sql: "ALTER TABLE _fb_remote ADD COLUMN \(c) TEXT")
        }
        // The record schema the pull cursor was reached under (NULL: version 1, before the column).
        if !columns.contains("schema") { try db.execute(sql: "ALTER TABLE _fb_remote ADD COLUMN schema INTEGER") }
    }

    /// Whether any remote's pulls were made under an earlier record schema, whose server left
    /// out the tables and fields this build knows and that one did not.
    static func needsSchemaRepull(_ db: Database) throws -> Bool {
        guard try db.tableExists("_fb_remote") else { return false }
        let columns = Set(try db.columns(in: "_fb_remote").map(\.name))
        guard columns.contains("schema") else { return true }
        return try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM _fb_remote WHERE coalesce(schema, 1) < ?)",
                                 arguments: [SyncProtocol.schemaVersion]) ?? false
    }

    /// Pulls of remotes reached under an earlier record schema start again from the beginning,
    /// so that what the server left out for that schema arrives (what is held already is
    /// ignored on apply). Returns the remotes concerned.
    static func repullAfterSchemaUpgrade(_ db: Database) throws -> [String] {
        let names = try String.fetchAll(db, sql: "SELECT name FROM _fb_remote WHERE coalesce(schema, 1) < ? AND pull_cursor IS NOT NULL",
                                        arguments: [SyncProtocol.schemaVersion])
        try db.execute(sql: "UPDATE _fb_remote SET pull_cursor = NULL, schema = ? WHERE coalesce(schema, 1) < ?",
                       arguments: [SyncProtocol.schemaVersion, SyncProtocol.schemaVersion])
        return names
    }

    static func remote(_ r: Row) -> Remote {
        Remote(name: r["name"], url: r["url"], token: r["token"], origin: originBase + (r["id"] as Int64),
               pushCursor: r["push_cursor"], pullCursor: r["pull_cursor"], lastSync: r["last_sync"],
               lastError: r["last_error"],
               held: (r["held"] as String?).flatMap { try? JSONDecoder().decode([QuarantineNote].self, from: Data($0.utf8)) } ?? [],
               regions: (r["regions"] as String?).map { $0.split(separator: ",").map(String.init) },
               pin: r.hasColumn("pin") ? r["pin"] : nil, device: r.hasColumn("device") ? r["device"] : nil)
    }

    /// Whether `host` is this machine (127.0.0.0/8, ::1, localhost): the only place plain HTTP
    /// may go without `--insecure`.
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if h == "localhost" || h == "::1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { p in UInt8(p) != nil }
    }

    /// Checks a remote's URL: http(s) with a host; plain `http://` only to this machine unless `insecure`.
    public static func checkURL(_ url: String, insecure: Bool) throws {
        guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme), let host = u.host else {
            throw SyncClientError(.invalidInput, "URL \"\(url)\" is not an http(s) URL such as http://127.0.0.1:8080")
        }
        if scheme == "http" && !isLoopback(host) && !insecure {
            throw SyncClientError(.invalidInput,
                "URL \"\(url)\": plain http:// to another machine would show the token and every record to anyone on the path; use https://, or --insecure if you must")
        }
    }

    /// Adds a remote. Plain `http://` to anything but this machine is refused (the token and
    /// every record would cross the network readable and alterable) unless `insecure`.
    public static func add(_ replica: Replica, name: String, url: String, token: String, insecure: Bool = false, pin: String? = nil) throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw SyncClientError(.invalidInput, "remote name \"\(name)\": use letters, digits, '-' and '_'")
        }
        try checkURL(url, insecure: insecure)
        var pinned: String? = nil
        if let pin {
            let p: String
            switch TLSPin.parse(pin) {
            case let .success(parsed): p = parsed
            case let .failure(.mistyped(groups)):
                throw SyncClientError(.invalidInput, "--pin: group\(groups.count == 1 ? "" : "s") \(groups.map(String.init).joined(separator: ", ")) look\(groups.count == 1 ? "s" : "") mistyped (the check character does not fit): copy the pin again from the server's operator")
            case .failure(.malformed):
                throw SyncClientError(.invalidInput, "--pin \"\(pin.prefix(90))\": give the pin as `fieldbook-server tls fingerprint` prints it (sha256: and eight groups of nine hex digits)")
            }
            guard url.lowercased().hasPrefix("https://") else {
                throw SyncClientError(.invalidInput, "--pin needs an https:// URL")
            }
            pinned = p
        }
        guard !token.isEmpty, !token.contains(where: { $0.isWhitespace }) else {
            throw SyncClientError(.invalidInput, "--token: give the token printed by `fieldbook-server token create`")
        }
        do {
            try replica.writeDatabase { db in
                try ensureTable(db)
                try migrate(db)
                try db.execute(sql: "INSERT INTO _fb_remote (name, url, token, pin, schema) VALUES (?, ?, ?, ?, ?)",
                               arguments: [name, url.hasSuffix("/") ? String(url.dropLast()) : url, token, pinned, SyncProtocol.schemaVersion])
            }
        } catch let e as DatabaseError where e.resultCode.primaryResultCode == .SQLITE_CONSTRAINT {
            throw SyncClientError(.invalidInput, "a remote named \"\(name)\" exists already; remove it first")
        }
    }

    /// The remotes (none until the first `add` creates the table).
    public static func all(_ replica: Replica) throws -> [Remote] {
        try replica.read { db in
            guard try db.tableExists("_fb_remote") else { return [] }
            // Columns added later read as NULL in older replicas until their next write.
            return try Row.fetchAll(db, sql: "SELECT * FROM _fb_remote ORDER BY name").map(remote)
        }
    }

    public static func named(_ replica: Replica, _ name: String) throws -> Remote {
        guard let r = try all(replica).first(where: { $0.name == name }) else {
            throw SyncClientError(.invalidInput, "no remote named \"\(name)\"; see `fieldbook remote list`")
        }
        return r
    }

    /// The remote named `name`, or the only one when none is named (else an error saying to name one).
    public static func pick(_ replica: Replica, _ name: String?) throws -> Remote {
        if let name { return try named(replica, name) }
        let remotes = try all(replica)
        guard remotes.count == 1 else {
            throw SyncClientError(.invalidInput, remotes.isEmpty ? "no remotes; add one with `fieldbook remote add`" : "several remotes: name one with --remote")
        }
        return remotes[0]
    }

    /// Points a remote at another address of the same server (it moved, or was restored on
    /// another port); its token, pin and where its syncs stood are kept. Checked like `add`.
    public static func setURL(_ replica: Replica, name: String, url: String, insecure: Bool = false) throws {
        try checkURL(url, insecure: insecure)
        let remote = try named(replica, name)
        if remote.pin != nil, !url.lowercased().hasPrefix("https://") {
            throw SyncClientError(.invalidInput, "\(name) is pinned to a server key: its URL must be https://")
        }
        try replica.writeDatabase { db in
            try Remotes.update(db, name, "url = ?", [url.hasSuffix("/") ? String(url.dropLast()) : url])
        }
    }

    public static func remove(_ replica: Replica, name: String) throws {
        let n = try replica.writeDatabase { db -> Int in
            guard try db.tableExists("_fb_remote") else { return 0 }
            try db.execute(sql: "DELETE FROM _fb_remote WHERE name = ?", arguments: [name])
            return db.changesCount
        }
        if n == 0 { throw SyncClientError(.invalidInput, "no remote named \"\(name)\"") }
    }

    /// Forgets what every remote was sent and where its pulls stood (the replica took a new
    /// site id): the next sync pushes and pulls everything again.
    public static func forgetSyncState(_ db: Database) throws {
        guard try db.tableExists("_fb_remote") else { return }
        try migrate(db)
        try db.execute(sql: "UPDATE _fb_remote SET push_cursor = 0, pull_cursor = NULL, push_ack = NULL, push_inflight = NULL")
    }

    /// Updates a remote's sync state (`SyncEngine.run` has migrated the table first).
    static func update(_ db: Database, _ name: String, _ sql: String, _ args: StatementArguments) throws {
        try db.execute(sql: "UPDATE _fb_remote SET \(sql) WHERE name = ?", arguments: args + [name])
    }

    /// Log entries after the push cursor that were not received from this remote and that are
    /// of its regions.
    public static func pendingCount(_ replica: Replica, _ remote: Remote) throws -> Int {
        var n = 0
        var cursor = remote.pushCursor
        while true {
            let batch = try replica.changes(since: cursor, limit: 50_000, excludingOrigin: remote.origin, partitions: remote.partitions)
            n += batch.changeset.changeCount
            if !batch.hasMore || batch.cursor == cursor { break }
            cursor = batch.cursor
        }
        return n
    }
}
