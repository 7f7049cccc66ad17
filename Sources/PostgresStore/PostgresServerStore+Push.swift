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
            // One push per site at a time: its row is made or locked, and read, in one statement
            // and stays locked for the whole transaction.
            var held: Int64 = 0
            var owner: String? = nil
            var stored: SiteLineage? = nil
            var known: Int32? = nil
            let rows = try await conn.query("""
                INSERT INTO srv_site AS s (site, position) VALUES (\(site), 0) ON CONFLICT (site) DO UPDATE SET position = s.position
                RETURNING s.position, s.token, s.lineage, s.lineage_prev, s.origin
                """, logger: self.logger)
            for try await (p, t, l, lp, o) in rows.decode((Int64, String?, String?, String?, Int32?).self) {
                (held, owner, stored, known) = (p, t, SiteLineage(last: l, previous: lp), o)
            }
            let lineage = SiteLineage.push(stored: stored, claim: batch.lineage)
            if lineage == .forked { throw ServerError.siteForked(batch.site) }
            if batch.from > held {
                throw ServerError(.conflict, "sequence_gap",
                    "this server holds position \(held) for site \(batch.site); the batch starts at \(batch.from). Push again from \(held)")
            }
            let facts = try await self.facts(for: [batch.changes] + batch.quarantined.map(\.row), siteOwner: owner, conn)
            let plan = try PushAuthorizer.authorize(batch, token: token, facts: facts, serverSite: self.site)
            var origin = known
            if origin == nil { origin = try await self.siteIndex(batch.site, name: nil, conn) }
            let report = try await self.apply(plan.apply, origin: origin, conn)
            try await self.hold(plan.hold, site: batch.site, token: token, conn)
            let position = max(held, batch.to)
            var accepted: SiteLineage? = nil
            if case let .accept(l) = lineage { accepted = l }
            try await conn.query("""
                UPDATE srv_site SET position = \(position), token = coalesce(token, \(token.name)), origin = \(origin),
                    lineage = CASE WHEN \(accepted != nil) THEN \(accepted?.last) ELSE lineage END,
                    lineage_prev = CASE WHEN \(accepted != nil) THEN \(accepted?.previous) ELSE lineage_prev END
                WHERE site = \(site)
                """, logger: self.logger)
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

    /// What authorising `changesets` needs, read in the push's transaction: the server's record of
    /// every row they name and of the parents their new child rows name, the quarantined rows, the epochs.
    /// In one statement: the named rows and every parent the batch's child rows name (a
    /// superset of what the authoriser looks up), which of the named rows have changes held, and
    /// every region's key epoch.
    func facts(for changesets: [Changeset], siteOwner: String?, _ conn: PostgresConnection) async throws -> PushFacts {
        var facts = PushFacts(siteOwner: siteOwner)
        var named: [RowKey] = []
        var rows: [RowKey] = []
        for cs in changesets {
            for t in cs.tables {
                for r in t.rows { named.append(RowKey(t.table, r.id)) }
                guard let schema = try? FieldbookSchema.sealedTable(named: t.table), let p = schema.parent,
                      let pf = t.fields.firstIndex(of: p.column) else { continue }
                for rc in t.rows {
                    if let pid = rc.fields.first(where: { $0.field == pf })?.value.text { rows.append(RowKey(p.table, pid)) }
                }
            }
        }
        rows += named
        let found = try await conn.query("""
            SELECT 0, r.tbl, r.id, r.region, r.parent FROM fb_row r JOIN unnest(\(rows.map(\.table))::text[], \(rows.map(\.id))::text[]) AS k(tbl, id)
                ON r.tbl = k.tbl AND r.id = k.id
            UNION ALL
            SELECT 1, q.tbl, q.row_id, NULL, NULL FROM srv_quarantine q
                JOIN unnest(\(named.map(\.table))::text[], \(named.map(\.id))::text[]) AS k(tbl, id) ON q.tbl = k.tbl AND q.row_id = k.id
            UNION ALL
            SELECT 2, region, '', epoch::text, NULL FROM srv_region_epoch
            """, logger: logger)
        for try await (kind, t, id, a, b) in found.decode((Int32, String, String, String?, String?).self) {
            switch kind {
            case 0: facts.held[RowKey(t, id)] = HeldRow(region: a, parent: b)
            case 1: facts.quarantined.insert(RowKey(t, id))
            default: facts.epochs[t] = a.flatMap(Int64.init).map { UInt32(clamping: $0) }
            }
        }
        return facts
    }

    static func epochs(_ conn: PostgresConnection, logger: Logger) async throws -> [String: UInt32] {
        var out: [String: UInt32] = [:]
        for try await (r, e) in try await conn.query("SELECT region, epoch FROM srv_region_epoch", logger: logger).decode((String, Int64).self) {
            out[r] = UInt32(clamping: e)
        }
        return out
    }

    /// The stored rows of `keys`; `lock`: each locked `FOR UPDATE`, in (table, id) order.
    func storedRows(_ keys: [RowKey], lock: Bool = false, _ conn: PostgresConnection) async throws -> [RowKey: StoredRow] {
        var state: [RowKey: StoredRow] = [:]
        guard !keys.isEmpty else { return state }
        let rows = try await conn.query("""
            SELECT r.tbl, r.id, r.region, r.parent, r.cl, r.hlc, r.site::text, r.cells FROM fb_row r
            JOIN unnest(\(keys.map(\.table))::text[], \(keys.map(\.id))::text[]) AS k(tbl, id) ON r.tbl = k.tbl AND r.id = k.id
            ORDER BY r.tbl, r.id \(unescaped: lock ? "FOR UPDATE OF r" : "")
            """, logger: logger)
        for try await (t, id, region, parent, cl, hlc, site, cells) in rows.decode((String, String, String?, String?, Int64, Int64, String, Data).self) {
            guard let s = SiteID(site) else { continue }
            state[RowKey(t, id)] = StoredRow(table: t, id: id, region: region, parent: parent, cl: cl,
                                             existence: FieldVersion(hlc: HLC(rawValue: hlc), site: s),
                                             cells: try CellCoding.cells(cells))
        }
        return state
    }

    // MARK: Apply

    /// Applies an authorised changeset: every row it names is locked in one sorted order, merged
    /// by `RowMerge` with what the store holds, written back, and logged for pulls.
    func apply(_ cs: Changeset, origin: Int32?, _ conn: PostgresConnection) async throws -> (applied: Int, ignored: Int) {
        var names: [SiteID: String] = [:]
        for (i, s) in cs.sites.enumerated() { if let n = cs.name(ofSite: i) { names[s] = n } }
        for (s, n) in names { _ = try await siteIndex(s, name: n, conn) }
        var keys = Set<RowKey>()
        for t in cs.tables { for r in t.rows { keys.insert(RowKey(t.table, r.id)) } }
        let sorted = keys.sorted { ($0.table, $0.id) < ($1.table, $1.id) }
        var state = try await storedRows(sorted, lock: true, conn)
        var applied = 0, ignored = 0
        var changed = Set<RowKey>()
        var log: [(String, String, String, Data)] = []
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
                applied += plan.applied
                ignored += plan.ignored
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
                let row = StoredRow(table: t.table, id: rc.id, region: region, parent: parent, cl: plan.cl, existence: plan.existence, cells: cells)
                state[key] = row
                changed.insert(key)
                log.append((t.table, rc.id, region ?? "",
                            CellCoding.encode(LoggedChange(cl: plan.cl, h: plan.existence.hlc.rawValue, s: plan.existence.site, f: taken))))
            }
        }
        // One statement whatever the batch's size: every changed row written back as it stands
        // now, and the log entries in the order the changes were applied.
        if !changed.isEmpty {
            let rows = changed.sorted { ($0.table, $0.id) < ($1.table, $1.id) }.map { state[$0]! }
            let cells = rows.map { ByteBuffer(data: CellCoding.encode($0.cells)) }
            try await conn.query("""
                WITH written AS (
                    INSERT INTO fb_row (tbl, id, region, parent, cl, hlc, site, cells)
                    SELECT t, i, NULLIF(r, ''), NULLIF(p, ''), c, h, s::uuid, b
                    FROM unnest(\(rows.map(\.table))::text[], \(rows.map(\.id))::text[], \(rows.map { $0.region ?? "" })::text[],
                                \(rows.map { $0.parent ?? "" })::text[], \(rows.map(\.cl))::bigint[], \(rows.map { $0.existence.hlc.rawValue })::bigint[],
                                \(rows.map { $0.existence.site.description })::text[], \(cells)::bytea[]) AS x(t, i, r, p, c, h, s, b)
                    ON CONFLICT (tbl, id) DO UPDATE SET cl = excluded.cl, hlc = excluded.hlc, site = excluded.site, cells = excluded.cells)
                INSERT INTO fb_log (tbl, id, region, origin, change)
                SELECT t, i, NULLIF(r, ''), \(origin), b
                FROM unnest(\(log.map(\.0))::text[], \(log.map(\.1))::text[], \(log.map(\.2))::text[],
                            \(log.map { ByteBuffer(data: $0.3) })::bytea[]) WITH ORDINALITY AS x(t, i, r, b, n)
                ORDER BY n
                """, logger: logger)
        }
        return (applied, ignored)
    }
}
