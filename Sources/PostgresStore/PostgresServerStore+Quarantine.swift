import FieldbookModel
import Foundation
import PostgresNIO
import SyncCore
import SyncServer

/// Changes held because their clocks were too far ahead: kept, reported, applied in order when
/// due (or when the operator says), exactly as the embedded store does.
extension PostgresServerStore {
    func hold(_ changes: [HeldChange], site: SiteID, token: TokenInfo, _ conn: PostgresConnection) async throws {
        guard !changes.isEmpty else { return }
        let received = Self.now()
        for h in changes {
            let json = String(decoding: try JSONEncoder().encode(WireChangeset(h.row)), as: UTF8.self)
            try await conn.query("""
                INSERT INTO srv_quarantine (received_at, site, token, tbl, row_id, reason, change, newest)
                VALUES (\(received), \(site.description), \(token.name), \(h.note.table), \(h.note.id), \(h.note.reason), \(json), \(h.newestMillis))
                """, logger: logger)
        }
        // A new version of each stored row with a change held: an optimistic push that read the
        // row before (when nothing was held) no longer finds the version it read, and writes nothing.
        let keys = Set(changes.map { RowKey($0.note.table, $0.note.id) }).sorted { ($0.table, $0.id) < ($1.table, $1.id) }
        try await conn.query("""
            UPDATE fb_row r SET cl = r.cl FROM unnest(\(keys.map(\.table))::text[], \(keys.map(\.id))::text[]) AS k(t, i)
            WHERE r.tbl = k.t AND r.id = k.i
            """, logger: logger)
    }

    /// Asked before every push and pull; looks at most once a second (by `now`) per process: a
    /// held change waits a second longer at most, and a busy server reads the quarantine table
    /// once a second, not once a request.
    public func releaseDue(now: Int64) async throws -> Int {
        guard releaseLooked.advance(to: now, every: 1000) else { return 0 }
        let due = now + configuration.maxDriftMillis
        let any = try await reading { conn in
            for try await b in try await conn.query("SELECT EXISTS (SELECT 1 FROM srv_quarantine WHERE error IS NULL AND newest <= \(due))",
                                                      logger: self.logger).decode(Bool.self) { return b }
            return false
        }
        return any ? try await release(force: false, due: due, only: nil) : 0
    }

    public func releaseQuarantine(_ which: QuarantineSelection) async throws -> Int {
        if case .one(let id) = which, try await quarantine().first(where: { $0.id == id }) == nil {
            throw ServerError.noQuarantined(id)
        }
        return try await release(force: true, due: .max, only: which == .all ? nil : which)
    }

    public func dropQuarantine(_ which: QuarantineSelection) async throws -> Int {
        let n = try await transaction { conn -> Int in
            var n = 0
            let rows: PostgresRowSequence
            switch which {
            case .all: rows = try await conn.query("DELETE FROM srv_quarantine RETURNING id", logger: self.logger)
            case .one(let id): rows = try await conn.query("DELETE FROM srv_quarantine WHERE id = \(id) RETURNING id", logger: self.logger)
            }
            for try await _ in rows.decode(Int64.self) { n += 1 }
            return n
        }
        if case .one(let id) = which, n == 0 {
            throw ServerError.noQuarantined(id)
        }
        return n
    }

    func release(force: Bool, due: Int64, only: QuarantineSelection?) async throws -> Int {
        try await transaction { conn -> Int in
            // One releaser at a time (several servers may find the same changes due).
            try await conn.query("SELECT pg_advisory_xact_lock(7305414190225610002)", logger: self.logger)
            var entries: [(Int64, String, String, String, Int64, String?)] = []
            for try await e in try await conn.query("SELECT id, site, token, change, newest, error FROM srv_quarantine ORDER BY id",
                                                    logger: self.logger).decode((Int64, String, String, String, Int64, String?).self) {
                entries.append(e)
            }
            var blocked = Set<RowKey>()
            var released = 0
            for (id, siteText, tokenName, change, newest, error) in entries {
                guard let cs = try? JSONDecoder().decode(WireChangeset.self, from: Data(change.utf8)).changeset() else {
                    try await conn.query("UPDATE srv_quarantine SET error = 'unreadable' WHERE id = \(id)", logger: self.logger)
                    continue
                }
                let keys = cs.tables.flatMap { t in t.rows.map { RowKey(t.table, $0.id) } }
                let selected = only == nil || only == .one(id)
                guard selected, force || newest <= due, error == nil || force, blocked.isDisjoint(with: keys) else {
                    blocked.formUnion(keys)
                    continue
                }
                do {
                    var token: TokenInfo? = nil
                    for try await (n, r, c, t, v) in try await conn.query(
                        "SELECT name, regions, coordinator, created_at, revoked_at FROM srv_token WHERE name = \(tokenName)",
                        logger: self.logger).decode((String, String, Bool, String, String?).self) { token = Self.tokenInfo(n, r, c, t, v) }
                    guard let site = SiteID(siteText), let token, token.revokedAt == nil else {
                        throw ServerError(.forbidden, "token_revoked", "the token that pushed it is revoked")
                    }
                    let read = try await self.facts(for: [cs], conn)
                    var facts = read.facts
                    facts.quarantined = []
                    let plan = try PushAuthorizer.authorize(PushBatch(site: site, from: 0, to: 0, changes: cs, quarantined: []),
                                                            token: token, facts: facts, serverSite: self.site)
                    _ = try await self.apply(plan.apply, origin: try await self.siteIndex(site, name: nil, conn), locked: read.locked, conn)
                    try await conn.query("DELETE FROM srv_quarantine WHERE id = \(id)", logger: self.logger)
                    released += 1
                } catch let refusal as ServerError {
                    try await conn.query("UPDATE srv_quarantine SET error = \(refusal.message) WHERE id = \(id)", logger: self.logger)
                    blocked.formUnion(keys)
                }
            }
            return released
        }
    }

    public func held(site: SiteID, token: TokenInfo) async throws -> [QuarantineNote] {
        try await reading { conn in
            var out: [QuarantineNote] = []
            let rows = try await conn.query("""
                SELECT tbl, row_id, reason, error FROM srv_quarantine WHERE site = \(site.description) AND token = \(token.name) ORDER BY id
                """, logger: self.logger)
            for try await (t, id, reason, error) in rows.decode((String, String, String, String?).self) {
                out.append(QuarantineNote(table: t, id: id, reason: error.map { "\($0) (needs the server operator)" } ?? reason))
            }
            return out
        }
    }

    public func quarantine() async throws -> [QuarantineEntry] {
        try await reading { conn in
            var out: [QuarantineEntry] = []
            let rows = try await conn.query(
                "SELECT id, received_at, site, token, tbl, row_id, reason, error FROM srv_quarantine ORDER BY id", logger: self.logger)
            for try await (id, at, site, token, t, row, reason, error) in rows.decode((Int64, String, String, String, String, String, String, String?).self) {
                out.append(QuarantineEntry(id: id, receivedAt: at, site: site, token: token, table: t, row: row, reason: reason, error: error))
            }
            return out
        }
    }
}
