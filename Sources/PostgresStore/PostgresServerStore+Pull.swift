import FieldbookModel
import Foundation
import PostgresNIO
import SyncCore
import SyncServer

/// Pulls on PostgreSQL. A log entry is stamped with its transaction's id (`xid8`); a pull reads
/// the entries after its cursor (xid, seq) whose transaction is below the oldest one still running
/// (`pg_snapshot_xmin`), in (xid, seq) order. A transaction that started earlier but commits
/// later has a smaller xid than any reader has passed, because no reader passes a running one:
/// no change is ever skipped. (A plain sequence would be: entry 101 can commit after a reader
/// has read 102.)
///
/// The horizon is the cluster's, so a writing transaction of any database in it holds pulls
/// back. A pull that sees committed entries it may not hand out yet waits (up to `horizonWait`)
/// for the transactions before them to end, rather than answer "nothing more" while a change
/// acknowledged before it began is left out.
extension PostgresServerStore {
    public func pull(after cursor: StoreCursor?, limit: Int, token: TokenInfo, requester: SiteID?,
                     lineage: SiteLineage.Claim) async throws -> PullPage {
        let deadline = ContinuousClock.now + horizonWait
        var pause = Duration.milliseconds(5)
        while true {
            let (page, heldBack) = try await page(after: cursor, limit: limit, token: token, requester: requester, lineage: lineage)
            guard heldBack else { return page }
            guard ContinuousClock.now + pause < deadline else {
                logger.warning("a pull answers without committed changes that an older transaction, still running, holds back",
                               metadata: ["waited": "\(horizonWait)"])
                metrics?.pullHeldBack()
                return page
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(250))
        }
    }

    /// One page below the horizon, and whether committed entries for this requester lie past it
    /// (held back by an older transaction still running).
    func page(after cursor: StoreCursor?, limit: Int, token: TokenInfo, requester: SiteID?,
              lineage: SiteLineage.Claim) async throws -> (PullPage, heldBack: Bool) {
        try await transaction { conn in
            if let cursor { try await self.check(cursor, conn) }
            var origin: Int32? = nil
            if let requester {
                var stored: SiteLineage? = nil
                for try await (l, p) in try await conn.query("SELECT lineage, lineage_prev FROM srv_site WHERE site = \(requester.description)",
                                                             logger: self.logger).decode((String?, String?).self) {
                    stored = SiteLineage(last: l, previous: p)
                }
                if !SiteLineage.pullAllowed(stored: stored, claim: lineage) { throw ServerError.siteForked(requester) }
                for try await idx in try await conn.query("SELECT idx FROM fb_site WHERE site = \(requester.description)::uuid",
                                                          logger: self.logger).decode(Int32.self) { origin = idx }
            }
            let epoch = try await self.currentEpoch(conn)
            let (afterXid, afterSeq) = (String(cursor?.xid ?? 0), cursor?.position ?? 0)
            let regions = token.scope.map { Array($0) }
            let all = regions == nil
            let rows = try await conn.query("""
                SELECT xid::text, seq, tbl, id, origin, change FROM fb_log
                WHERE (xid, seq) > (\(afterXid)::xid8, \(afterSeq)) AND xid < pg_snapshot_xmin(pg_current_snapshot())
                  AND (\(all) OR region = ANY(\(regions ?? [])::text[]))
                ORDER BY xid, seq LIMIT \(limit + 1)
                """, logger: self.logger)
            var entries: [(xid: UInt64, seq: Int64, table: String, id: String, origin: Int32?, change: Data)] = []
            for try await (x, s, t, id, o, c) in rows.decode((String, Int64, String, String, Int32?, Data).self) {
                guard let xid = UInt64(x) else { continue }
                entries.append((xid, s, t, id, o, c))
            }
            let more = entries.count > limit
            if more { entries.removeLast() }
            var next = cursor.map { StoreCursor(store: self.site, epoch: epoch, position: $0.position, xid: $0.xid ?? 0) }
                ?? StoreCursor(store: self.site, epoch: epoch, position: 0, xid: 0)
            if let last = entries.last { (next.xid, next.position) = (last.xid, last.seq) }
            var heldBack = false
            if !more {
                let (x, s) = (String(next.xid ?? 0), next.position)
                for try await found in try await conn.query("""
                    SELECT EXISTS (SELECT 1 FROM fb_log WHERE (xid, seq) > (\(x)::xid8, \(s))
                      AND (\(all) OR region = ANY(\(regions ?? [])::text[])) AND (\(origin == nil) OR origin IS DISTINCT FROM \(origin)))
                    """, logger: self.logger).decode(Bool.self) { heldBack = found }
            }
            var builder = PullBuilder()
            for e in entries where origin == nil || e.origin != origin {
                builder.add(table: e.table, id: e.id, change: try CellCoding.change(e.change))
            }
            var changes = builder.changeset
            changes.siteNames = try await self.names(of: changes.sites, conn)
            return (PullPage(changes: changes, cursor: next, more: more), heldBack)
        }
    }

    /// The device names of these sites, where known (sealed; parallel to `sites`).
    func names(of sites: [SiteID], _ conn: PostgresConnection) async throws -> [String?] {
        guard !sites.isEmpty else { return [] }
        var known: [String: String] = [:]
        let rows = try await conn.query("SELECT site::text, name FROM fb_site WHERE site = ANY(\(sites.map(\.description))::uuid[]) AND name IS NOT NULL",
                                        logger: logger)
        for try await (s, n) in rows.decode((String, String).self) { known[s] = n }
        return known.isEmpty ? [] : sites.map { known[$0.description] }
    }

    // MARK: Epochs

    /// The epoch cursors are issued in: the latest any server began.
    func currentEpoch(_ conn: PostgresConnection) async throws -> UInt64 {
        for try await e in try await conn.query("SELECT epoch FROM srv_epoch ORDER BY n DESC LIMIT 1", logger: logger).decode(Int64.self) {
            return UInt64(bitPattern: e)
        }
        return 0
    }

    /// Refuses a cursor this database did not issue in the timeline it has now (restored from an
    /// older backup, or another store): its epoch must be known, and it must not pass where the
    /// next epoch began.
    func check(_ cursor: StoreCursor, _ conn: PostgresConnection) async throws {
        let reset = ServerError.cursorReset
        guard cursor.store == site, let xid = cursor.xid else { throw reset }
        let e = Int64(bitPattern: cursor.epoch)
        var n: Int64? = nil
        for try await v in try await conn.query("SELECT n FROM srv_epoch WHERE epoch = \(e)", logger: logger).decode(Int64.self) { n = v }
        guard let n else { throw reset }
        var end: (UInt64, Int64)? = nil
        for try await (x, s) in try await conn.query("SELECT start_xid::text, start_seq FROM srv_epoch WHERE n > \(n) ORDER BY n LIMIT 1",
                                                     logger: logger).decode((String, Int64).self) {
            end = (UInt64(x) ?? 0, s)
        }
        if end == nil {
            for try await (x, s) in try await conn.query("SELECT xid::text, seq FROM fb_log ORDER BY xid DESC, seq DESC LIMIT 1",
                                                         logger: logger).decode((String, Int64).self) {
                end = (UInt64(x) ?? 0, s)
            }
        }
        guard (xid, cursor.position) <= (end ?? (0, 0)) else { throw reset }
    }

    /// Begins a new epoch (a server process opened the store): cursors of a timeline this
    /// database no longer has are then refused. Starts where the log ends now.
    public func beginEpoch() async throws {
        var rng = SystemRandomNumberGenerator()
        let epoch = Int64(bitPattern: rng.next())
        let now = Self.now()
        try await transaction { conn in
            try await conn.query("""
                INSERT INTO srv_epoch (epoch, start_xid, start_seq, started_at)
                SELECT \(epoch), coalesce(max(xid), '0'::xid8), coalesce((SELECT seq FROM fb_log ORDER BY xid DESC, seq DESC LIMIT 1), 0), \(now)
                FROM fb_log
                """, logger: self.logger)
        }
    }
}

/// Gathers log entries into a changeset: one table section per table, fields by column name,
/// sites by index.
struct PullBuilder {
    private var sites: [SiteID] = []
    private var siteIndex: [SiteID: Int] = [:]
    private var tables: [TableChanges] = []
    private var tableIndex: [String: Int] = [:]
    private var rowIndex: [RowKey: Int] = [:]

    mutating func site(_ s: SiteID) -> Int {
        if let i = siteIndex[s] { return i }
        siteIndex[s] = sites.count
        sites.append(s)
        return sites.count - 1
    }

    mutating func add(table: String, id: String, change: LoggedChange) {
        guard let schema = try? FieldbookSchema.sealedTable(named: table) else { return }
        let t: Int
        if let i = tableIndex[table] { t = i } else {
            t = tables.count
            tableIndex[table] = t
            tables.append(TableChanges(table: table, fields: schema.columnNames))
        }
        let existence = site(change.s)
        let fields = change.f.filter { $0.c < schema.columns.count }.map { c in
            FieldChange(field: c.c, value: c.v, hlc: c.h, site: site(c.s))
        }
        // One row change per row and page, as the row stands after the page's entries: a later
        // entry of the same incarnation adds or replaces fields; one of another incarnation (a
        // delete, a re-creation) replaces the row change. A receiver then always finds a row's
        // region in the same change as its other fields, or holds the row already.
        let key = RowKey(table, id)
        if let r = rowIndex[key] {
            var row = tables[t].rows[r]
            if row.cl == change.cl {
                for f in fields {
                    row.fields.removeAll { $0.field == f.field }
                    row.fields.append(f)
                }
                (row.hlc, row.site) = (change.h, existence)
            } else {
                row = RowChange(id: id, cl: change.cl, hlc: change.h, site: existence, fields: fields)
            }
            row.fields.sort { $0.field < $1.field }
            tables[t].rows[r] = row
        } else {
            rowIndex[key] = tables[t].rows.count
            tables[t].rows.append(RowChange(id: id, cl: change.cl, hlc: change.h, site: existence, fields: fields))
        }
    }

    var changeset: Changeset { Changeset(sites: sites, tables: tables) }
}
