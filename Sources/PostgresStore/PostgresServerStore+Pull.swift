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
        let start = ContinuousClock.now
        var pause = Duration.milliseconds(5)
        var named = false
        while true {
            let (page, heldBack) = try await page(after: cursor, limit: limit, token: token, requester: requester, lineage: lineage)
            guard let heldBack else { return page }
            // Wait for the horizon to pass the first entry held back (one small read a poll),
            // then read the page again.
            while try await !horizonPassed(heldBack) {
                if !named, ContinuousClock.now - start > .seconds(1) {
                    named = true
                    let oldest = (try? await oldestWriter()) ?? "unknown"
                    logger.warning("a pull waits for an older transaction of the cluster", metadata: ["oldest": "\(oldest)"])
                }
                guard ContinuousClock.now + pause < start + horizonWait else {
                    let oldest = (try? await oldestWriter()) ?? "unknown"
                    logger.warning("a pull answers without committed changes that an older transaction, still running, holds back",
                                   metadata: ["waited": "\(horizonWait)", "oldest": "\(oldest)"])
                    metrics?.pullHeldBack()
                    return page
                }
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(250))
            }
        }
    }

    /// Whether every transaction older than `xid` has ended (the horizon has passed it).
    func horizonPassed(_ xid: UInt64) async throws -> Bool {
        try await reading { conn in
            let rows = try await conn.query("SELECT pg_snapshot_xmin(pg_current_snapshot()) > \(String(xid))::xid8", logger: self.logger)
            for try await passed in rows.decode(Bool.self) { return passed }
            return false
        }
    }

    /// One page below the horizon, and the oldest committed entry for this requester that lies
    /// past it (held back by an older transaction still running), if any. Two reads, no
    /// transaction: the cursor's and the requester's checks, then the page with its rows as they
    /// stand and their sites' names (a third read only for names of sites that neither wrote a
    /// page entry nor a row's existence).
    func page(after cursor: StoreCursor?, limit: Int, token: TokenInfo, requester: SiteID?,
              lineage: SiteLineage.Claim) async throws -> (PullPage, heldBack: UInt64?) {
        try await reading { conn in
            let (epoch, origin) = try await self.checked(cursor, requester: requester, lineage: lineage, conn)
            let (afterXid, afterSeq) = (String(cursor?.xid ?? 0), cursor?.position ?? 0)
            // In (xid, seq) order the entries below the horizon come first: the page is the ready
            // prefix; an entry past it means more is committed but held back. The rows of the
            // ready entries come as they stand, and the names of the sites that wrote them.
            let head = """
                WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x),
                p AS (SELECT l.xid, l.seq, l.tbl, l.id, l.origin, l.change, l.xid < h.x AS ready FROM fb_log l, h WHERE
                """
            let tail = """
                ),
                r AS (SELECT r.tbl, r.id, r.cl, r.hlc, r.site, r.cells FROM fb_row r WHERE (r.tbl, r.id) IN (SELECT tbl, id FROM p WHERE ready))
                SELECT 0, p.xid::text, p.seq, p.tbl, p.id, p.origin, p.change, p.ready, NULL::bigint, NULL::bigint FROM p
                UNION ALL
                SELECT 1, r.site::text, NULL, r.tbl, r.id, NULL, r.cells, NULL, r.cl, r.hlc FROM r
                UNION ALL
                SELECT 2, f.site::text, NULL, coalesce(f.name, ''), NULL, NULL, NULL, f.name IS NOT NULL, NULL, NULL FROM fb_site f
                WHERE f.idx IN (SELECT origin FROM p WHERE ready) OR f.site IN (SELECT site FROM r)
                """
            let query: PostgresQuery = if let scope = token.scope {
                """
                \(unescaped: head) l.region = ANY(\(Array(scope))::text[]) AND (l.xid, l.seq) > (\(afterXid)::xid8, \(afterSeq))
                ORDER BY l.xid, l.seq LIMIT \(limit + 1)\(unescaped: tail)
                """
            } else {
                """
                \(unescaped: head) (l.xid, l.seq) > (\(afterXid)::xid8, \(afterSeq))
                ORDER BY l.xid, l.seq LIMIT \(limit + 1)\(unescaped: tail)
                """
            }
            let rows = try await conn.query(query, logger: self.logger)
            var found: [(xid: UInt64, seq: Int64, table: String, id: String, origin: Int32?, change: Data, ready: Bool)] = []
            var current: [RowKey: StoredRow] = [:]
            var names: [SiteID: String?] = [:]
            for try await (kind, a, seq, t, id, o, blob, flag, cl, hlc) in rows.decode((Int32, String?, Int64?, String, String?, Int32?, Data?, Bool?, Int64?, Int64?).self) {
                switch kind {
                case 0:
                    guard let xid = a.flatMap({ UInt64($0) }), let seq, let id, let blob, let flag else { continue }
                    found.append((xid, seq, t, id, o, blob, flag))
                case 1:
                    guard let site = a.flatMap(SiteID.init), let id, let blob, let cl, let hlc else { continue }
                    current[RowKey(t, id)] = StoredRow(table: t, id: id, region: nil, parent: nil, cl: cl,
                                                       existence: FieldVersion(hlc: HLC(rawValue: hlc), site: site), cells: try CellCoding.cells(blob))
                default:
                    guard let site = a.flatMap(SiteID.init) else { continue }
                    names.updateValue(flag == true ? t : nil, forKey: site)
                }
            }
            found.sort { ($0.xid, $0.seq) < ($1.xid, $1.seq) }
            var entries = found.prefix { $0.ready }
            let heldBack = found.dropFirst(entries.count).first { origin == nil || $0.origin != origin }?.xid
            let more = entries.count > limit
            if more { entries.removeLast() }
            var next = cursor.map { StoreCursor(store: self.site, epoch: epoch, position: $0.position, xid: $0.xid ?? 0) }
                ?? StoreCursor(store: self.site, epoch: epoch, position: 0, xid: 0)
            if let last = entries.last { (next.xid, next.position) = (last.xid, last.seq) }
            var builder = PullBuilder()
            for e in entries where origin == nil || e.origin != origin {
                builder.add(table: e.table, id: e.id, change: try CellCoding.change(e.change))
            }
            var changes = builder.changeset(current: current)
            let unnamed = changes.sites.filter { names[$0] == nil }
            if !unnamed.isEmpty {
                let known = try await self.names(of: unnamed, conn)
                for (i, s) in unnamed.enumerated() { names.updateValue(known.indices.contains(i) ? known[i] : nil, forKey: s) }
            }
            let listed = changes.sites.map { names[$0] ?? nil }
            changes.siteNames = listed.contains { $0 != nil } ? listed : []
            return (PullPage(changes: changes, cursor: next, more: more), heldBack)
        }
    }

    /// The epoch cursors are issued in (the latest any server began), after refusing a cursor
    /// this database did not issue in the timeline it has now (restored from an older backup, or
    /// another store: its epoch must be known, and it must not pass where the next epoch began);
    /// and the requester's site index, after refusing a requester that may not pull (a fork).
    /// One read.
    func checked(_ cursor: StoreCursor?, requester: SiteID?, lineage: SiteLineage.Claim,
                 _ conn: PostgresConnection) async throws -> (epoch: UInt64, origin: Int32?) {
        let reset = ServerError.cursorReset
        if let cursor, cursor.store != site || cursor.xid == nil { throw reset }
        let e = Int64(bitPattern: cursor?.epoch ?? 0)
        let uuid = requester?.description
        let rows = try await conn.query("""
            WITH c AS (SELECT n FROM srv_epoch WHERE epoch = \(e)),
                 nx AS (SELECT start_xid, start_seq FROM srv_epoch WHERE n > (SELECT n FROM c) ORDER BY n LIMIT 1),
                 lg AS (SELECT xid, seq FROM fb_log ORDER BY xid DESC, seq DESC LIMIT 1)
            SELECT (SELECT epoch FROM srv_epoch ORDER BY n DESC LIMIT 1), (SELECT n FROM c),
                   coalesce((SELECT start_xid FROM nx), (SELECT xid FROM lg))::text, coalesce((SELECT start_seq FROM nx), (SELECT seq FROM lg)),
                   s.site IS NOT NULL, s.lineage, s.lineage_prev, coalesce(s.origin, f.idx)
            FROM (SELECT 1) AS one LEFT JOIN srv_site s ON s.site = \(uuid) LEFT JOIN fb_site f ON f.site = \(uuid)::uuid
            """, logger: logger)
        var current: UInt64 = 0
        var known = false
        var end: (UInt64, Int64) = (0, 0)
        var stored: SiteLineage? = nil
        var origin: Int32? = nil
        for try await (latest, n, x, s, pushed, l, p, idx) in rows.decode((Int64?, Int64?, String?, Int64?, Bool, String?, String?, Int32?).self) {
            current = latest.map { UInt64(bitPattern: $0) } ?? 0
            known = n != nil
            end = (x.flatMap { UInt64($0) } ?? 0, s ?? 0)
            if pushed { stored = SiteLineage(last: l, previous: p) }
            origin = idx
        }
        if let cursor {
            guard known, let xid = cursor.xid, (xid, cursor.position) <= end else { throw reset }
        }
        if let requester, !SiteLineage.pullAllowed(stored: stored, claim: lineage) { throw ServerError.siteForked(requester) }
        return (current, origin)
    }

    /// The oldest writing transaction of the cluster, for the log: database, application, age,
    /// state, the start of its query.
    func oldestWriter() async throws -> String {
        try await reading { conn in
            let rows = try await conn.query("""
                SELECT coalesce(datname, ''), coalesce(application_name, ''), coalesce((now() - xact_start)::text, ''), coalesce(state, ''),
                       coalesce(left(query, 80), '')
                FROM pg_stat_activity WHERE backend_xid IS NOT NULL ORDER BY age(backend_xid) DESC LIMIT 1
                """, logger: self.logger)
            for try await (d, a, age, s, q) in rows.decode((String, String, String, String, String).self) {
                return "\(d) \(a) \(age) \(s): \(q)"
            }
            return "none"
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

/// A pull page as the embedded store makes it (`Replica.changes(since:)`): every row that the
/// page's entries changed, once, as it stands now — its causal length and existence version, and
/// each field those entries changed with its current winner. A value that lost before the page
/// was read is never sent (the receiver would record a conflict no other store shows it).
struct PullBuilder {
    private var keys: [RowKey] = []
    private var masks: [RowKey: Set<Int>] = [:]

    /// Notes a log entry's row and the fields it changed.
    mutating func add(table: String, id: String, change: LoggedChange) {
        let key = RowKey(table, id)
        if masks[key] == nil { keys.append(key) }
        masks[key, default: []].formUnion(change.f.map(\.c))
    }

    var rows: [RowKey] { keys }

    /// The changeset, from the rows as they stand (`current`; a row not there is left out), tables
    /// in the schema's order (parents first).
    func changeset(current: [RowKey: StoredRow]) -> Changeset {
        var sites: [SiteID] = []
        var siteIndex: [SiteID: Int] = [:]
        func site(_ s: SiteID) -> Int {
            if let i = siteIndex[s] { return i }
            siteIndex[s] = sites.count
            sites.append(s)
            return sites.count - 1
        }
        var tables: [String: TableChanges] = [:]
        for key in keys {
            guard let row = current[key], let schema = try? FieldbookSchema.sealedTable(named: key.table) else { continue }
            let mask = masks[key] ?? []
            var rc = RowChange(id: key.id, cl: row.cl, hlc: row.existence.hlc.rawValue, site: site(row.existence.site))
            if row.cl % 2 == 1 {
                for cell in row.cells.sorted(by: { $0.c < $1.c }) where mask.contains(cell.c) && cell.c < schema.columns.count && cell.h != 0 {
                    rc.fields.append(FieldChange(field: cell.c, value: cell.v, hlc: cell.h, site: site(cell.s)))
                }
            }
            tables[key.table, default: TableChanges(table: key.table, fields: schema.columnNames)].rows.append(rc)
        }
        let ordered = FieldbookSchema.sealedTables.compactMap { tables[$0.name] }
        return Changeset(sites: sites, tables: ordered)
    }
}
