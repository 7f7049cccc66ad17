import FieldbookModel
import Foundation
import NIOCore
import NIOFoundationCompat
import PostgresNIO
import SyncCore
import SyncServer

extension PostgresServerStore {
    public func push(_ batch: PushBatch, token: TokenInfo) async throws -> PushResponse {
        try await transaction { conn in
            let site = batch.site.description
            // One push per site at a time: its row is made or locked, and read, first, and stays
            // locked for the whole transaction; the facts and the rows named come in the same statement.
            let (facts, locked, siteRow) = try await self.facts(for: [batch.changes] + batch.quarantined.map(\.row), site: site, conn)
            let held = siteRow?.position ?? 0
            let lineage = SiteLineage.push(stored: siteRow?.lineage, claim: batch.lineage)
            if lineage == .forked { throw ServerError.siteForked(batch.site) }
            if batch.from > held {
                throw ServerError(.conflict, "sequence_gap",
                    "this server holds position \(held) for site \(batch.site); the batch starts at \(batch.from). Push again from \(held)")
            }
            let plan = try PushAuthorizer.authorize(batch, token: token, facts: facts, serverSite: self.site)
            var origin = siteRow?.origin
            if origin == nil { origin = try await self.siteIndex(batch.site, name: nil, conn) }
            try await self.hold(plan.hold, site: batch.site, token: token, conn)
            let position = max(held, batch.to)
            var accepted: SiteLineage? = nil
            if case let .accept(l) = lineage { accepted = l }
            let report = try await self.apply(plan.apply, origin: origin, locked: locked,
                                              site: SiteAdvance(site: site, position: position, token: token.name, lineage: accepted), conn)
            return PushResponse(applied: report.applied, ignored: report.ignored + plan.dropped,
                                quarantined: plan.hold.map(\.note), position: position)
        }
    }


    /// The index of `site` in `fb_site` (added when new), its device name set when one is given.
    func siteIndex(_ site: SiteID, name: String?, _ conn: PostgresConnection) async throws -> Int32 {
        let uuid = site.description
        let rows = try await conn.query("""
            INSERT INTO fb_site (site, name) VALUES (\(uuid)::uuid, \(name))
            ON CONFLICT (site) DO UPDATE SET name = coalesce(excluded.name, fb_site.name) RETURNING idx
            """, logger: logger)
        for try await idx in rows.decode(Int32.self) { return idx }
        throw ServerError(.internalServerError, "store_failed", "no index for site \(site)")
    }

    /// What authorising `changesets` needs, and the rows they name as they stand, each locked
    /// `FOR UPDATE` in one sorted (table, id) order, in one statement: the named rows (locked),
    /// every parent their new child rows name (a superset of what the authoriser looks up),
    /// which of the named rows have changes held, and every region's key epoch.
    /// With `site`, the pushing site's row too, made or locked first (`SiteFactsStatement`);
    /// its token is the facts' site owner.
    func facts(for changesets: [Changeset], site: String? = nil, _ conn: PostgresConnection) async throws
        -> (PushFacts, locked: [RowKey: StoredRow], site: SiteRow?) {
        var facts = PushFacts()
        var siteRow: SiteRow? = nil
        var named = Set<RowKey>()
        var parents = Set<RowKey>()
        for cs in changesets {
            for t in cs.tables {
                for r in t.rows { named.insert(RowKey(t.table, r.id)) }
                guard let schema = try? FieldbookSchema.sealedTable(named: t.table), let p = schema.parent,
                      let pf = t.fields.firstIndex(of: p.column) else { continue }
                for rc in t.rows {
                    if let pid = rc.fields.first(where: { $0.field == pf })?.value.text { parents.insert(RowKey(p.table, pid)) }
                }
            }
        }
        parents.subtract(named)
        let found = if let site {
            try await conn.execute(SiteFactsStatement(site: site, named: Array(named), parents: Array(parents)), logger: logger)
        } else {
            try await conn.execute(FactsStatement(named: Array(named), parents: Array(parents)), logger: logger)
        }
        var locked: [RowKey: StoredRow] = [:]
        for try await (kind, t, id, a, b, cl, hlc, site, cells) in found {
            switch kind {
            case 0:
                guard let cl, let hlc, let site = site.flatMap(SiteID.init), let cells else {
                    throw ServerError(.internalServerError, "store_failed", "the stored row \(t) \(id) is unreadable")
                }
                facts.held[RowKey(t, id)] = HeldRow(region: a, parent: b)
                locked[RowKey(t, id)] = StoredRow(table: t, id: id, region: a, parent: b, cl: cl,
                                                  existence: FieldVersion(hlc: HLC(rawValue: hlc), site: site), cells: try CellCoding.cells(cells))
            case 4:
                siteRow = SiteRow(position: cl ?? 0, lineage: SiteLineage(last: b, previous: site), origin: hlc.map { Int32(clamping: $0) })
                facts.siteOwner = a
            case 3: facts.held[RowKey(t, id)] = HeldRow(region: a, parent: b)
            case 1: facts.quarantined.insert(RowKey(t, id))
            default: facts.epochs[t] = a.flatMap(Int64.init).map { UInt32(clamping: $0) }
            }
        }
        return (facts, locked, siteRow)
    }

    static func epochs(_ conn: PostgresConnection, logger: Logger) async throws -> [String: UInt32] {
        var out: [String: UInt32] = [:]
        for try await (r, e) in try await conn.query("SELECT region, epoch FROM srv_region_epoch", logger: logger).decode((String, Int64).self) {
            out[r] = UInt32(clamping: e)
        }
        return out
    }

    // MARK: Apply

    /// Applies an authorised changeset: the device names it carries recorded, its rows merged
    /// (`RowWrites`) with `locked` (as `facts` read and locked them; nil: read and locked here),
    /// written back and logged, and a pushing site advanced (`site`) — by a push, a quarantine
    /// release and an import alike.
    func apply(_ cs: Changeset, origin: Int32?, locked: [RowKey: StoredRow]? = nil, site advance: SiteAdvance? = nil,
               _ conn: PostgresConnection) async throws -> (applied: Int, ignored: Int) {
        try await nameSites(of: cs, conn)
        var state = locked
        if state == nil { state = try await facts(for: [cs], conn).locked }
        let writes = try RowWrites.merging(cs, into: state ?? [:])
        try await write(writes, origin: origin, conn, site: advance)
        return (writes.applied, writes.ignored)
    }

    /// Records the device names a changeset carries (sealed) in `fb_site`.
    func nameSites(of cs: Changeset, _ conn: PostgresConnection) async throws {
        var names: [SiteID: String] = [:]
        for (i, s) in cs.sites.enumerated() { if let n = cs.name(ofSite: i) { names[s] = n } }
        for (s, n) in names { _ = try await siteIndex(s, name: n, conn) }
    }

    /// Writes merged rows and their log entries, and advances a pushing site (`site`), in one
    /// statement whatever the batch's size. New rows are inserted without `ON CONFLICT`: a
    /// concurrent push that created the same row first makes this one fail with a unique
    /// violation, and the transaction is made again (`transaction`), this time merging with it.
    func write(_ w: RowWrites, origin: Int32?, _ conn: PostgresConnection, site advance: SiteAdvance?) async throws {
        guard !w.isEmpty || advance != nil else { return }
        _ = try await conn.execute(WriteStatement(w, origin: origin, site: advance), logger: logger)
    }
}

/// A pushing site's row as it stood (`srv_site`).
struct SiteRow: Sendable {
    var position: Int64
    var lineage: SiteLineage?
    var origin: Int32?
}

/// How a push moves its site's row (`srv_site`): to `position`, bound to `token` if unbound,
/// with the lineage accepted (nil: unchanged).
struct SiteAdvance: Sendable {
    var site: String
    var position: Int64
    var token: String
    var lineage: SiteLineage?
}
