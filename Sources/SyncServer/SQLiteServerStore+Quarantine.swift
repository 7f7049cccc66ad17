import FieldbookModel
import Foundation
import GRDB
import ReplicaStore
import SyncCore

/// Quarantine: changes whose clocks were too far ahead of the server's, and later changes of the
/// same rows that wait behind them. Nothing held is lost: a held change is applied once it is no
/// longer ahead (`releaseDue`), or on an operator's word (`releaseQuarantine`), or deleted on an
/// operator's word (`dropQuarantine`); until then the device is told what is held (`held`).
extension SQLiteServerStore {
    func hold(_ changes: [HeldChange], site: SiteID, token: TokenInfo, db: Database) throws {
        guard !changes.isEmpty else { return }
        let encoder = JSONEncoder()
        let received = Self.now()
        for h in changes {
            let json = String(decoding: try encoder.encode(WireChangeset(h.row)), as: UTF8.self)
            try db.execute(sql: """
                INSERT INTO _srv_quarantine (received_at, site, token, tbl, row_id, reason, change, newest) VALUES (?,?,?,?,?,?,?,?)
                """, arguments: [received, site.description, token.name, h.note.table, h.note.id, h.note.reason, json, h.newestMillis])
        }
    }

    public func releaseDue(now: Int64) throws -> Int {
        let due = now + configuration.maxDriftMillis
        let any = try mapped {
            try replica.read { db in
                try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM _srv_quarantine WHERE error IS NULL AND newest <= ?)", arguments: [due]) ?? false
            }
        }
        return any ? try release(force: false, due: due, only: nil) : 0
    }

    public func releaseQuarantine(_ which: QuarantineSelection) throws -> Int {
        if case .one(let id) = which, try quarantine().first(where: { $0.id == id }) == nil {
            throw ServerError.noQuarantined(id)
        }
        return try release(force: true, due: .max, only: which == .all ? nil : which)
    }

    public func dropQuarantine(_ which: QuarantineSelection) throws -> Int {
        let n = try mapped {
            try replica.writeDatabase { db -> Int in
                switch which {
                case .all: try db.execute(sql: "DELETE FROM _srv_quarantine")
                case .one(let id): try db.execute(sql: "DELETE FROM _srv_quarantine WHERE id = ?", arguments: [id])
                }
                return db.changesCount
            }
        }
        if case .one(let id) = which, n == 0 {
            throw ServerError.noQuarantined(id)
        }
        return n
    }

    /// Applies held changes in the order they arrived, each authorised again against the store as
    /// it is now and the token that pushed it. A change waits while an earlier held change of the
    /// same row waits; one that can never be applied (its token revoked, or the record's region
    /// now differs) stays held with the reason, for an operator to drop.
    func release(force: Bool, due: Int64, only: QuarantineSelection?) throws -> Int {
        try mapped {
            try replica.write { w -> Int in
                let entries = try Row.fetchAll(w.db, sql: "SELECT id, site, token, change, newest, error FROM _srv_quarantine ORDER BY id")
                var blocked = Set<RowKey>()
                var released = 0
                for e in entries {
                    let id: Int64 = e["id"]
                    guard let cs = try? JSONDecoder().decode(WireChangeset.self, from: Data((e["change"] as String).utf8)).changeset() else {
                        try w.db.execute(sql: "UPDATE _srv_quarantine SET error = ? WHERE id = ?", arguments: ["unreadable", id])
                        continue
                    }
                    let keys = cs.tables.flatMap { t in t.rows.map { RowKey(t.table, $0.id) } }
                    let selected = only == nil || only == .one(id)
                    let isDue = force || (e["newest"] as Int64) <= due
                    guard selected, isDue, (e["error"] as String?) == nil || force, blocked.isDisjoint(with: keys) else {
                        blocked.formUnion(keys)
                        continue
                    }
                    do {
                        guard let site = SiteID(e["site"] as String),
                              let token = try Row.fetchOne(w.db, sql: "SELECT * FROM _srv_token WHERE name = ?", arguments: [e["token"] as String])
                                .map(Self.token), token.revokedAt == nil
                        else { throw ServerError(.forbidden, "token_revoked", "the token that pushed it is revoked") }
                        var facts = try self.facts(for: [cs], w: w, siteOwner: nil)
                        facts.quarantined = []
                        let plan = try PushAuthorizer.authorize(PushBatch(site: site, from: 0, to: 0, changes: cs, quarantined: []),
                                                                token: token, facts: facts, serverSite: self.site)
                        let origin = try w.originID(for: site)
                        _ = force ? try w.applyIgnoringDrift(plan.apply, origin: origin) : try w.apply(plan.apply, origin: origin)
                        try w.db.execute(sql: "DELETE FROM _srv_quarantine WHERE id = ?", arguments: [id])
                        released += 1
                    } catch let refusal as ServerError {
                        try w.db.execute(sql: "UPDATE _srv_quarantine SET error = ? WHERE id = ?", arguments: [refusal.message, id])
                        blocked.formUnion(keys)
                    }
                }
                return released
            }
        }
    }

    public func held(site: SiteID, token: TokenInfo) throws -> [QuarantineNote] {
        try mapped {
            try replica.read { db in
                try Row.fetchAll(db, sql: "SELECT tbl, row_id, reason, error FROM _srv_quarantine WHERE site = ? AND token = ? ORDER BY id",
                                 arguments: [site.description, token.name]).map {
                    QuarantineNote(table: $0[0], id: $0[1], reason: ($0[3] as String?).map { "\($0) (needs the server operator)" } ?? $0[2])
                }
            }
        }
    }

    public func quarantine() throws -> [QuarantineEntry] {
        try mapped {
            try replica.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM _srv_quarantine ORDER BY id").map {
                    QuarantineEntry(id: $0["id"], receivedAt: $0["received_at"], site: $0["site"], token: $0["token"], table: $0["tbl"],
                                    row: $0["row_id"], reason: $0["reason"], error: $0["error"])
                }
            }
        }
    }
}
