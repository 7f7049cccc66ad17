import Foundation
import NIOCore
import PostgresNIO
import SyncServer

/// The statements every request runs, as prepared statements: PostgreSQL parses and analyses
/// each once per connection, and plans it once it has a generic plan, rather than for every
/// request (parsing, analysing and planning were two fifths of its CPU under the load test).
/// Every parameter is cast in the SQL, so its type never depends on the first call's values.
protocol StoreStatement: PostgresPreparedStatement {
    var bindings: PostgresBindings { get }
}

extension StoreStatement {
    func makeBindings() -> PostgresBindings { bindings }
}

/// A request's token and its device's state (`credential(hash:)`).
struct CredentialStatement: StoreStatement {
    static let name = "fb_credential"
    static let sql = """
        SELECT t.name, t.regions, t.coordinator, t.created_at, t.revoked_at, d.state FROM srv_token t
        LEFT JOIN LATERAL (SELECT d.state FROM srv_device d WHERE d.token = t.name OFFSET 0) AS d ON true
        WHERE t.hash = $1::bytea AND t.revoked_at IS NULL
        """
    typealias Row = (String, String, Bool, String, String?, String?)
    let bindings: PostgresBindings

    init(hash: Data) {
        var b = PostgresBindings(capacity: 1)
        b.append(ByteBuffer(data: hash))
        bindings = b
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// The authoriser's facts and the named rows, locked in (table, id) order (`facts`).
struct FactsStatement: StoreStatement {
    static let name = "fb_facts"
    static let sql = "WITH " + named(locking: true) + "\n" + selects
    /// The named rows with their row versions (`xmin`), locked in (table, id) order or only read.
    /// Each is looked up by its key on its own, as every key lookup of these statements is (a
    /// `LATERAL` subquery per key, `OFFSET 0` so that it is not merged into a join): a join of
    /// the key list with the table may be planned as a scan of the whole table while the table is
    /// small, and a prepared statement may keep that plan as it grows.
    static func named(locking: Bool) -> String {
        """
        locked AS (
            SELECT r.tbl, r.id, r.region, r.parent, r.cl, r.hlc, r.site, r.cells, r.v
            FROM (SELECT tbl, id FROM unnest($1::text[], $2::text[]) AS u(tbl, id) ORDER BY tbl, id) AS k
            CROSS JOIN LATERAL (SELECT f.tbl, f.id, f.region, f.parent, f.cl, f.hlc, f.site, f.cells, f.xmin::text AS v FROM fb_row f
                                WHERE f.tbl = k.tbl AND f.id = k.id OFFSET 0\(locking ? " FOR UPDATE" : "")) AS r)
        """
    }
    /// The facts with the pushing site's row first (kind 4: token, lineage, position, origin,
    /// previous lineage, row version), as `site` (position, token, lineage, lineage_prev, origin, v) gives it.
    static func withSite(_ site: String, locking: Bool) -> String {
        """
        WITH s AS (\(site)),
        \(named(locking: locking))
        SELECT 4, '', '', s.token, s.lineage, s.position, s.origin::bigint, s.lineage_prev, NULL, s.v FROM s
        UNION ALL
        \(selects)
        """
    }
    /// The facts: the named rows, full (kind 0), the parents (3), held keys (1), epochs (2).
    static let selects = """
        SELECT 0, tbl, id, region, parent, cl, hlc, site::text, cells, v FROM locked
        UNION ALL
        SELECT 3, r.tbl, r.id, r.region, r.parent, NULL, NULL, NULL, NULL, NULL FROM unnest($3::text[], $4::text[]) AS k(tbl, id)
            CROSS JOIN LATERAL (SELECT f.tbl, f.id, f.region, f.parent FROM fb_row f WHERE f.tbl = k.tbl AND f.id = k.id OFFSET 0) AS r
        UNION ALL
        SELECT 1, k.tbl, k.id, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM unnest($1::text[], $2::text[]) AS k(tbl, id)
            WHERE EXISTS (SELECT 1 FROM srv_quarantine q WHERE q.tbl = k.tbl AND q.row_id = k.id OFFSET 0)
        UNION ALL
        SELECT 2, region, '', epoch::text, NULL, NULL, NULL, NULL, NULL, NULL FROM srv_region_epoch
        """
    typealias Row = (Int32, String, String, String?, String?, Int64?, Int64?, String?, Data?, String?)
    let bindings: PostgresBindings

    init(named: [RowKey], parents: [RowKey], site: String? = nil) {
        var b = PostgresBindings(capacity: 5)
        b.append(named.map(\.table))
        b.append(named.map(\.id))
        b.append(parents.map(\.table))
        b.append(parents.map(\.id))
        if let site { b.append(site) }
        bindings = b
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// A push's first read, in either form (`SiteFactsStatement`, `SiteFactsReadStatement`): the
/// facts' bindings with the site as $5, and the facts' rows.
protocol SiteFactsQuery: StoreStatement where Row == FactsStatement.Row {
    init(bindings: PostgresBindings)
}

extension SiteFactsQuery {
    init(site: String, named: [RowKey], parents: [RowKey]) {
        self.init(bindings: FactsStatement(named: named, parents: parents, site: site).bindings)
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// A push's first statement: its site's row made or locked, and read (kind 4: token, lineage,
/// position, origin, previous lineage), first — one push per site at a time — then the facts
/// (`FactsStatement`).
struct SiteFactsStatement: SiteFactsQuery {
    static let name = "fb_site_facts"
    static let sql = FactsStatement.withSite("""
        INSERT INTO srv_site AS s (site, position) VALUES ($5::text, 0) ON CONFLICT (site) DO UPDATE SET position = s.position
            RETURNING s.position, s.token, s.lineage, s.lineage_prev, s.origin, NULL::text AS v
        """, locking: true)
    let bindings: PostgresBindings
}

/// An optimistic push's first statement (`PostgresServerStore.optimisticPush`): the same facts,
/// nothing locked or written — the site's row as it stands, if any (kind 4, with its row
/// version), and the named rows with theirs; `CheckedWriteStatement` writes only if they still hold.
struct SiteFactsReadStatement: SiteFactsQuery {
    static let name = "fb_site_facts_read"
    static let sql = FactsStatement.withSite("""
        SELECT position, token, lineage, lineage_prev, origin, xmin::text AS v FROM srv_site WHERE site = $5::text
        """, locking: false)
    let bindings: PostgresBindings
}

/// Merged rows written back, their log entries, and a pushing site advanced, in one (`write`).
/// Parameters $1–$25 (`WriteSQL`).
struct WriteStatement: StoreStatement {
    static let name = "fb_write"
    static let sql = "WITH " + WriteSQL.rows(guard: nil) + "\n" + WriteSQL.site(guard: nil)
    typealias Row = ()
    let bindings: PostgresBindings

    init(_ w: RowWrites, origin: Int32?, site advance: SiteAdvance?) {
        bindings = WriteSQL.bindings(w, origin: origin, site: advance)
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { () }
}

/// The same write, made only if what an optimistic push read still holds, all or nothing in one
/// statement: the site's row and every named row that existed are locked (site first, then rows
/// in (table, id) order, as the locking push takes them) and must still be the versions read
/// (`xmin`: any write, a held change included, makes a new one), and no named row may have a
/// change held. Answers whether it wrote. $26–$28 the rows read (table, id, version), $29 the
/// site row's version, $30–$31 every row named.
struct CheckedWriteStatement: StoreStatement {
    static let name = "fb_write_checked"
    static let sql = """
        WITH sc AS (SELECT s.site FROM srv_site s WHERE s.site = $25::text AND s.xmin::text = $29::text FOR UPDATE),
        chk AS (
            SELECT r.tbl FROM (SELECT t, i, v FROM unnest($26::text[], $27::text[], $28::text[]) AS u(t, i, v) ORDER BY t, i) AS k
            CROSS JOIN LATERAL (SELECT f.tbl, f.xmin FROM fb_row f WHERE f.tbl = k.t AND f.id = k.i OFFSET 0 FOR UPDATE) AS r
            WHERE r.xmin::text = k.v),
        ok AS (SELECT EXISTS (SELECT 1 FROM sc) AND (SELECT count(*) FROM chk) = cardinality($26::text[])
                      AND NOT EXISTS (SELECT 1 FROM unnest($30::text[], $31::text[]) AS k(t, i)
                                      WHERE EXISTS (SELECT 1 FROM srv_quarantine q WHERE q.tbl = k.t AND q.row_id = k.i OFFSET 0)) AS ok),
        \(WriteSQL.rows(guard: "(SELECT ok FROM ok)")),
        st AS (\(WriteSQL.site(guard: "(SELECT ok FROM ok)")))
        SELECT ok FROM ok
        """
    typealias Row = Bool
    let bindings: PostgresBindings

    init(_ w: RowWrites, origin: Int32?, site advance: SiteAdvance, read: [RowKey: String], siteVersion: String, named: [RowKey]) {
        var b = WriteSQL.bindings(w, origin: origin, site: advance)
        let versions = read.sorted { ($0.key.table, $0.key.id) < ($1.key.table, $1.key.id) }
        b.append(versions.map(\.key.table))
        b.append(versions.map(\.key.id))
        b.append(versions.map(\.value))
        b.append(siteVersion)
        b.append(named.map(\.table))
        b.append(named.map(\.id))
        bindings = b
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Bool.self) }
}

/// The parts of a write (`WriteStatement`, `CheckedWriteStatement`), each made only where
/// `guard` holds. Parameters: $1–$8 rows created, $9–$14 rows changed, $15 the origin, $16–$19
/// log entries, $20–$25 the site's advance.
enum WriteSQL {
    static func rows(guard g: String?) -> String {
        """
        ins AS (
            INSERT INTO fb_row (tbl, id, region, parent, cl, hlc, site, cells)
            SELECT t, i, NULLIF(r, ''), NULLIF(p, ''), c, h, s::uuid, b
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::bytea[])
                AS x(t, i, r, p, c, h, s, b)\(g.map { " WHERE " + $0 } ?? "")),
        upd AS (
            INSERT INTO fb_row AS f (tbl, id, region, parent, cl, hlc, site, cells)
            SELECT x.t, x.i, r.region, r.parent, x.c, x.h, x.s::uuid, x.b
            FROM unnest($9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::text[], $14::bytea[]) AS x(t, i, c, h, s, b)
            CROSS JOIN LATERAL (SELECT e.region, e.parent FROM fb_row e WHERE e.tbl = x.t AND e.id = x.i OFFSET 0) AS r\(g.map { " WHERE " + $0 } ?? "")
            ON CONFLICT (tbl, id) DO UPDATE SET cl = excluded.cl, hlc = excluded.hlc, site = excluded.site, cells = excluded.cells),
        lg AS (
            INSERT INTO fb_log (tbl, id, region, origin, change)
            SELECT t, i, NULLIF(r, ''), $15::integer, b
            FROM unnest($16::text[], $17::text[], $18::text[], $19::bytea[]) WITH ORDINALITY AS x(t, i, r, b, n)\(g.map { " WHERE " + $0 } ?? "")
            ORDER BY n)
        """
    }

    static func site(guard g: String?) -> String {
        """
        UPDATE srv_site SET position = $20::bigint, token = coalesce(token, $21::text), origin = $15::integer,
            lineage = CASE WHEN $22::boolean THEN $23::text ELSE lineage END,
            lineage_prev = CASE WHEN $22::boolean THEN $24::text ELSE lineage_prev END
        WHERE site = $25::text\(g.map { " AND " + $0 } ?? "")
        """
    }

    static func bindings(_ w: RowWrites, origin: Int32?, site advance: SiteAdvance?) -> PostgresBindings {
        var b = PostgresBindings(capacity: 31)
        let (ins, upd, log) = (w.inserts, w.updates, w.log)
        b.append(ins.map(\.table))
        b.append(ins.map(\.id))
        b.append(ins.map { $0.region ?? "" })
        b.append(ins.map { $0.parent ?? "" })
        b.append(ins.map(\.cl))
        b.append(ins.map { $0.existence.hlc.rawValue })
        b.append(ins.map { $0.existence.site.description })
        b.append(ins.map { ByteBuffer(data: CellCoding.encode($0.cells)) })
        b.append(upd.map(\.table))
        b.append(upd.map(\.id))
        b.append(upd.map(\.cl))
        b.append(upd.map { $0.existence.hlc.rawValue })
        b.append(upd.map { $0.existence.site.description })
        b.append(upd.map { ByteBuffer(data: CellCoding.encode($0.cells)) })
        b.append(origin)
        b.append(log.map(\.table))
        b.append(log.map(\.id))
        b.append(log.map(\.region))
        b.append(log.map { ByteBuffer(data: $0.change) })
        b.append(advance?.position)
        b.append(advance?.token)
        b.append(advance?.lineage != nil)
        b.append(advance?.lineage?.last)
        b.append(advance?.lineage?.previous)
        b.append(advance?.site)
        return b
    }
}

/// A pull in one statement: its checks (kind 3: the latest epoch, the cursor's epoch if known,
/// where the next epoch began or the log ends, the requester's lineage and site index), and the
/// page below the horizon (kind 0) with its rows as they stand (1) and their writers' names (2);
/// of the token's regions (`PullScopedPageStatement`) or of all (`PullPageStatement`).
/// Parameters: $1 cursor xid, $2 cursor seq, $3 limit, $4 cursor epoch, $5 requester, $6 a
/// horizon already known (`PostgresServerStore.horizon()`, or 0), $7 regions.
enum PullPageSQL {
    static let head = """
        WITH h AS (SELECT greatest(pg_snapshot_xmin(pg_current_snapshot()), $6::text::xid8) AS x),
        c AS (SELECT n FROM srv_epoch WHERE epoch = $4::bigint),
        nx AS (SELECT start_xid, start_seq FROM srv_epoch WHERE n > (SELECT n FROM c) ORDER BY n LIMIT 1),
        lg AS (SELECT xid, seq FROM fb_log ORDER BY xid DESC, seq DESC LIMIT 1),
        p AS (SELECT l.xid, l.seq, l.tbl, l.id, l.origin, l.change, l.xid < h.x AS ready FROM h,
        """
    static let tail = """
         ORDER BY l.xid, l.seq LIMIT $3::bigint),
        r AS (SELECT r.tbl, r.id, r.cl, r.hlc, r.site, r.cells FROM (SELECT DISTINCT tbl, id FROM p WHERE ready) AS k
              CROSS JOIN LATERAL (SELECT f.tbl, f.id, f.cl, f.hlc, f.site, f.cells FROM fb_row f WHERE f.tbl = k.tbl AND f.id = k.id OFFSET 0) AS r),
        fs AS (SELECT f.site, f.name FROM (SELECT DISTINCT origin FROM p WHERE ready) AS o
                   CROSS JOIN LATERAL (SELECT f.site, f.name FROM fb_site f WHERE f.idx = o.origin OFFSET 0) AS f
               UNION
               SELECT f.site, f.name FROM (SELECT DISTINCT site FROM r) AS w
                   CROSS JOIN LATERAL (SELECT f.site, f.name FROM fb_site f WHERE f.site = w.site OFFSET 0) AS f)
        SELECT 3, coalesce((SELECT start_xid FROM nx), (SELECT xid FROM lg))::text, coalesce((SELECT start_seq FROM nx), (SELECT seq FROM lg)),
               NULL, NULL, coalesce(s.origin, f.idx), NULL, s.site IS NOT NULL,
               (SELECT epoch FROM srv_epoch ORDER BY n DESC LIMIT 1), (SELECT n FROM c), s.lineage, s.lineage_prev
        FROM (SELECT 1) AS one LEFT JOIN srv_site s ON s.site = $5::text LEFT JOIN fb_site f ON f.site = $5::text::uuid
        UNION ALL
        SELECT 0, p.xid::text, p.seq, p.tbl, p.id, p.origin, p.change, p.ready, NULL, NULL, NULL, NULL FROM p
        UNION ALL
        SELECT 1, r.site::text, NULL, r.tbl, r.id, NULL, r.cells, NULL, r.cl, r.hlc, NULL, NULL FROM r
        UNION ALL
        SELECT 2, fs.site::text, NULL, fs.name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM fs
        """
    typealias Row = (Int32, String?, Int64?, String?, String?, Int32?, Data?, Bool?, Int64?, Int64?, String?, String?)

    static func bindings(afterXid: UInt64, afterSeq: Int64, limit: Int, epoch: Int64, requester: String?, horizon: UInt64,
                         scope: [String]?) -> PostgresBindings {
        var b = PostgresBindings(capacity: 7)
        b.append(String(afterXid))
        b.append(afterSeq)
        b.append(Int64(limit))
        b.append(epoch)
        b.append(requester)
        b.append(String(horizon))
        if let scope { b.append(scope) }
        return b
    }
}

struct PullPageStatement: StoreStatement {
    static let name = "fb_pull_page"
    static let sql = PullPageSQL.head + " fb_log l WHERE (l.xid, l.seq) > ($1::text::xid8, $2::bigint)" + PullPageSQL.tail
    typealias Row = PullPageSQL.Row
    let bindings: PostgresBindings
    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

struct PullScopedPageStatement: StoreStatement {
    static let name = "fb_pull_scoped_page"
    // Each region's entries by its own index, in order and limited, then merged: one ordered
    // scan of the whole log with a region filter (the generic plan's choice for `region =
    // ANY(…)`) read every other region's entries too.
    static let sql = PullPageSQL.head + """
         unnest($7::text[]) AS g(region) CROSS JOIN LATERAL (
            SELECT e.xid, e.seq, e.tbl, e.id, e.origin, e.change FROM fb_log e
            WHERE e.region = g.region AND (e.xid, e.seq) > ($1::text::xid8, $2::bigint) ORDER BY e.xid, e.seq LIMIT $3::bigint) AS l
        """ + PullPageSQL.tail
    typealias Row = PullPageSQL.Row
    let bindings: PostgresBindings
    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
