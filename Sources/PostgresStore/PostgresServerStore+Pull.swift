import FieldbookModel
import Foundation
import PostgresNIO
import SyncCore
import SyncServer

/// Pulls on PostgreSQL. A log entry is stamped with its transaction's id (`xid8`); a pull reads
/// the entries after its cursor (xid, seq) whose transaction is below the horizon, in (xid, seq)
/// order. The horizon is the oldest transaction still running that could write this database's
/// log: a transaction that started earlier but commits later has a smaller xid than any reader
/// has passed, because no reader passes a running one, so no change is ever skipped. (A plain
/// sequence would be: entry 101 can commit after a reader has read 102.)
///
/// PostgreSQL's own horizon (`pg_snapshot_xmin`) is the cluster's: a writing transaction in any
/// database of it holds it back. The page is read below it; only when committed entries lie past
/// it does the pull work out this database's horizon (`horizon()`), which leaves out
/// transactions known to run in other databases, and read again below that. If a transaction
/// that may write here holds them back, the pull waits (up to `horizonWait`) for it to end,
/// rather than answer "nothing more" while a change acknowledged before it began is left out.
extension PostgresServerStore {
    public func pull(after cursor: StoreCursor?, limit: Int, token: TokenInfo, requester: SiteID?,
                     lineage: SiteLineage.Claim) async throws -> PullPage {
        let start = ContinuousClock.now
        var pause = Duration.milliseconds(5)
        var named = false
        var horizon: UInt64 = 0
        while true {
            let (page, heldBack) = try await page(after: cursor, limit: limit, token: token, requester: requester,
                                                  lineage: lineage, horizon: horizon)
            guard let heldBack else { return page }
            // Work out this database's horizon until it passes the first entry held back (one
            // small read a poll), then read the page again below it.
            while true {
                horizon = try await self.horizon()
                if horizon > heldBack { break }
                if !named, ContinuousClock.now - start > .seconds(1) {
                    named = true
                    let oldest = (try? await oldestWriter()) ?? "unknown"
                    logger.warning("a pull waits for an older transaction", metadata: ["oldest": "\(oldest)"])
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

    /// What the store holds does not decode: never skipped (a cursor would pass it for good).
    static func unreadable(_ what: String) -> ServerError {
        ServerError(.internalServerError, "store_failed", "\(what) in the store is unreadable")
    }

    /// This database's horizon: the oldest transaction still running that could write its log
    /// (or the next xid if none). Of the transactions running in a snapshot, those that
    /// `pg_stat_activity` shows to belong to another database are left out: a transaction's
    /// database never changes, and one in another database cannot write here, whenever that is
    /// read. Any other (this database's, a prepared one, one that ended meanwhile, one whose
    /// database this role may not see) is kept: the horizon is never later than it may be.
    func horizon() async throws -> UInt64 {
        try await reading { conn in
            let rows = try await conn.query("""
                WITH s AS (SELECT pg_current_snapshot() AS s)
                SELECT coalesce((SELECT min(x) FROM pg_snapshot_xip(s.s) AS x
                                 WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                                                   WHERE a.backend_xid = x::xid AND a.datid IS NOT NULL
                                                     AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))),
                                pg_snapshot_xmax(s.s))::text
                FROM s
                """, logger: self.logger)
            for try await text in rows.decode(String.self) {
                guard let xid = UInt64(text) else { break }
                return xid
            }
            throw Self.unreadable("the horizon")
        }
    }

    /// One page below the horizon, and the oldest committed entry for this requester that lies
    /// past it (held back by an older transaction still running), if any. One read, no
    /// transaction (`PullPageSQL`): the cursor's and the requester's checks, the page, its rows as
    /// they stand and their writers' names; a second read only for names of sites that neither
    /// wrote a page entry nor a row's existence. The checks are applied before anything read is used.
    func page(after cursor: StoreCursor?, limit: Int, token: TokenInfo, requester: SiteID?,
              lineage: SiteLineage.Claim, horizon: UInt64) async throws -> (PullPage, heldBack: UInt64?) {
        if let cursor, cursor.store != site || cursor.xid == nil { throw ServerError.cursorReset }
        return try await reading { conn in
            // In (xid, seq) order the entries below the horizon come first: the page is the ready
            // prefix; an entry past it means more is committed but held back.
            let bindings = PullPageSQL.bindings(afterXid: cursor?.xid ?? 0, afterSeq: cursor?.position ?? 0, limit: limit + 1,
                                                epoch: Int64(bitPattern: cursor?.epoch ?? 0), requester: requester?.description,
                                                horizon: horizon, scope: token.scope.map(Array.init))
            let rows = token.scope == nil
                ? try await conn.execute(PullPageStatement(bindings: bindings), logger: self.logger)
                : try await conn.execute(PullScopedPageStatement(bindings: bindings), logger: self.logger)
            var check = PullCheck()
            var found: [(xid: UInt64, seq: Int64, table: String, id: String, origin: Int32?, change: Data, ready: Bool)] = []
            var blobs: [(RowKey, SiteID, Int64, Int64, Data)] = []
            var names: [SiteID: String?] = [:]
            for try await (kind, a, seq, t, id, o, blob, flag, n1, n2, x, y) in rows {
                switch kind {
                case 3:
                    check = PullCheck(latest: n1.map { UInt64(bitPattern: $0) } ?? 0, cursorEpochKnown: n2 != nil,
                                      end: (a.flatMap { UInt64($0) } ?? 0, seq ?? 0),
                                      stored: flag == true ? SiteLineage(last: x, previous: y) : nil, origin: o)
                case 0:
                    guard let xid = a.flatMap({ UInt64($0) }), let seq, let t, let id, let blob, let flag else { throw Self.unreadable("a log entry") }
                    found.append((xid, seq, t, id, o, blob, flag))
                case 1:
                    guard let site = a.flatMap(SiteID.init), let t, let id, let blob, let cl = n1, let hlc = n2 else { throw Self.unreadable("a stored row") }
                    blobs.append((RowKey(t, id), site, cl, hlc, blob))
                default:
                    guard let site = a.flatMap(SiteID.init) else { continue }
                    names.updateValue(t, forKey: site)
                }
            }
            try check.verify(cursor: cursor, requester: requester, lineage: lineage)
            let (epoch, origin) = (check.latest, check.origin)
            var current: [RowKey: StoredRow] = [:]
            for (key, site, cl, hlc, blob) in blobs {
                current[key] = StoredRow(table: key.table, id: key.id, region: nil, parent: nil, cl: cl,
                                         existence: FieldVersion(hlc: HLC(rawValue: hlc), site: site), cells: try CellCoding.cells(blob))
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

    /// The oldest writing transaction of this database, for the log: application, age, state,
    /// the start of its query.
    func oldestWriter() async throws -> String {
        try await reading { conn in
            let rows = try await conn.query("""
                SELECT coalesce(datname, ''), coalesce(application_name, ''), coalesce((now() - xact_start)::text, ''), coalesce(state, ''),
                       coalesce(left(query, 80), '')
                FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND datname = current_database() ORDER BY age(backend_xid) DESC LIMIT 1
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

/// What a pull's checks read (`PullPageSQL`, kind 3), and the decision on it: a cursor this
/// database did not issue in the timeline it has now (restored from an older backup, or another
/// store) is refused — its epoch must be known, and it must not pass where the next epoch began
/// (or the log ends) — and so is a requester that may not pull (a fork).
struct PullCheck: Sendable {
    /// The epoch cursors are issued in (the latest any server began).
    var latest: UInt64 = 0
    var cursorEpochKnown = false
    /// Where the cursor's epoch ends: the next epoch's start, or the log's end.
    var end: (UInt64, Int64) = (0, 0)
    /// The requester's lineage, if it ever pushed here.
    var stored: SiteLineage? = nil
    /// The requester's site index (its own entries are not sent back to it).
    var origin: Int32? = nil

    func verify(cursor: StoreCursor?, requester: SiteID?, lineage: SiteLineage.Claim) throws {
        if let cursor {
            guard cursorEpochKnown, let xid = cursor.xid, (xid, cursor.position) <= end else { throw ServerError.cursorReset }
        }
        if let requester, !SiteLineage.pullAllowed(stored: stored, claim: lineage) { throw ServerError.siteForked(requester) }
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
