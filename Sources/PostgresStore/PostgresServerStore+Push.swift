import FieldbookModel
import Foundation
import NIOCore
import NIOFoundationCompat
import PostgresNIO
import SyncCore
import SyncServer

extension PostgresServerStore {
    /// A push: optimistically first (`optimisticPush`: two statements, no transaction kept open
    /// between them), up to three times while other writers change what it read; then, and for
    /// what the optimistic push does not take (a site's first push, held changes, a refusal),
    /// under locks (`lockedPush`). Both decide by `decide` and merge by `RowWrites`.
    public func push(_ batch: PushBatch, token: TokenInfo) async throws -> PushResponse {
        for attempt in 1...3 {
            switch try await optimisticPush(batch, token: token) {
            case .done(let response): return response
            case .locked: return try await lockedPush(batch, token: token)
            case .changed:
                metrics?.pushRetried()
                if attempt < 3 { try await Task.sleep(for: .milliseconds(Int.random(in: 1...(5 * attempt)))) }
            }
        }
        return try await lockedPush(batch, token: token)
    }

    /// What an optimistic push came to.
    enum Optimistic: Sendable {
        case done(PushResponse)
        /// What it read changed before it wrote (nothing written).
        case changed
        /// Not for the optimistic way: push under locks.
        case locked
    }

    /// Reads the facts without locking (`SiteFactsReadStatement`), decides, and writes in one
    /// statement that first checks that the site's row and the rows read are still the versions
    /// read and that none has a change held (`CheckedWriteStatement`): all or nothing, as one
    /// transaction. A row another push created meanwhile (a unique violation) or a deadlock is
    /// `.changed` too.
    func optimisticPush(_ batch: PushBatch, token: TokenInfo) async throws -> Optimistic {
        guard batch.quarantined.isEmpty else { return .locked }
        do {
            return try await leased { conn -> Optimistic in
                let site = batch.site.description
                let read = try await self.facts(for: [batch.changes], site: site, locking: false, conn)
                guard let siteRow = read.site, let origin = siteRow.origin, let siteVersion = read.siteVersion else { return .locked }
                // A refusal is made under locks, from facts no other push can change meanwhile.
                guard let decision = try? self.decide(batch, token: token, facts: read.facts, siteRow: siteRow),
                      decision.plan.hold.isEmpty, let writes = try? RowWrites.merging(decision.plan.apply, into: read.locked) else { return .locked }
                try await self.nameSites(of: decision.plan.apply, conn)
                let advance = SiteAdvance(site: site, position: decision.position, token: token.name, lineage: decision.lineage)
                var wrote = false
                for try await ok in try await conn.execute(
                    CheckedWriteStatement(writes, origin: origin, site: advance, read: read.versions, siteVersion: siteVersion,
                                          named: Array(read.named)), logger: self.logger) { wrote = ok }
                guard wrote else { return .changed }
                return .done(decision.response(writes))
            }
        } catch {
            if Self.isRetryable(error) { return .changed }
            throw Self.mapped(error)
        }
    }

    /// A push in one transaction that locks its site's row and the rows it names first.
    func lockedPush(_ batch: PushBatch, token: TokenInfo) async throws -> PushResponse {
        try await transaction { conn in
            let site = batch.site.description
            // One push per site at a time: its row is made or locked, and read, first, and stays
            // locked for the whole transaction; the facts and the rows named come in the same statement.
            let read = try await self.facts(for: [batch.changes] + batch.quarantined.map(\.row), site: site, locking: true, conn)
            let decision = try self.decide(batch, token: token, facts: read.facts, siteRow: read.site)
            var origin = read.site?.origin
            if origin == nil { origin = try await self.siteIndex(batch.site, name: nil, conn) }
            try await self.hold(decision.plan.hold, site: batch.site, token: token, conn)
            let report = try await self.apply(decision.plan.apply, origin: origin, locked: read.locked,
                                              site: SiteAdvance(site: site, position: decision.position, token: token.name, lineage: decision.lineage), conn)
            return decision.response(report)
        }
    }

    /// What a push does, decided from the site's row and the facts as read: refused (a fork, a
    /// gap, what the authoriser refuses), or the plan, the site's new position and the lineage
    /// accepted.
    func decide(_ batch: PushBatch, token: TokenInfo, facts: PushFacts, siteRow: SiteRow?) throws -> PushDecision {
        let held = siteRow?.position ?? 0
        let lineage = SiteLineage.push(stored: siteRow?.lineage, claim: batch.lineage)
        if lineage == .forked { throw ServerError.siteForked(batch.site) }
        if batch.from > held {
            throw ServerError(.conflict, "sequence_gap",
                "this server holds position \(held) for site \(batch.site); the batch starts at \(batch.from). Push again from \(held)")
        }
        let plan = try PushAuthorizer.authorize(batch, token: token, facts: facts, serverSite: self.site)
        var accepted: SiteLineage? = nil
        if case let .accept(l) = lineage { accepted = l }
        return PushDecision(plan: plan, position: max(held, batch.to), lineage: accepted)
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
    /// its token is the facts' site owner. Without `locking`, nothing is locked or written
    /// (`SiteFactsReadStatement`, with the rows' and the site row's versions).
    func facts(for changesets: [Changeset], site: String? = nil, locking: Bool = true, _ conn: PostgresConnection) async throws -> ReadFacts {
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
        let found = if let site, !locking {
            try await conn.execute(SiteFactsReadStatement(site: site, named: Array(named), parents: Array(parents)), logger: logger)
        } else if let site {
            try await conn.execute(SiteFactsStatement(site: site, named: Array(named), parents: Array(parents)), logger: logger)
        } else {
            try await conn.execute(FactsStatement(named: Array(named), parents: Array(parents)), logger: logger)
        }
        var locked: [RowKey: StoredRow] = [:]
        var versions: [RowKey: String] = [:]
        var siteVersion: String? = nil
        for try await (kind, t, id, a, b, cl, hlc, site, cells, version) in found {
            switch kind {
            case 0:
                guard let cl, let hlc, let site = site.flatMap(SiteID.init), let cells, let version else {
                    throw ServerError(.internalServerError, "store_failed", "the stored row \(t) \(id) is unreadable")
                }
                facts.held[RowKey(t, id)] = HeldRow(region: a, parent: b)
                locked[RowKey(t, id)] = StoredRow(table: t, id: id, region: a, parent: b, cl: cl,
                                                  existence: FieldVersion(hlc: HLC(rawValue: hlc), site: site), cells: try CellCoding.cells(cells))
                versions[RowKey(t, id)] = version
            case 4:
                siteRow = SiteRow(position: cl ?? 0, lineage: SiteLineage(last: b, previous: site), origin: hlc.map { Int32(clamping: $0) })
                siteVersion = version
                facts.siteOwner = a
            case 3: facts.held[RowKey(t, id)] = HeldRow(region: a, parent: b)
            case 1: facts.quarantined.insert(RowKey(t, id))
            default: facts.epochs[t] = a.flatMap(Int64.init).map { UInt32(clamping: $0) }
            }
        }
        return ReadFacts(facts: facts, locked: locked, site: siteRow, named: named, versions: versions, siteVersion: siteVersion)
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
        if state == nil { state = try await facts(for: [cs], locking: true, conn).locked }
        let writes = try RowWrites.merging(cs, into: state ?? [:])
        try await write(writes, origin: origin, conn, site: advance)
        return (writes.applied, writes.ignored)
    }

    /// Records the device names a changeset carries (sealed) in `fb_site`.
    /// Names the sites some change of `cs` uses (`Changeset.usedSites`, as the embedded store
    /// does): a site only listed is not registered.
    func nameSites(of cs: Changeset, _ conn: PostgresConnection) async throws {
        var names: [SiteID: String] = [:]
        let used = cs.usedSites
        for (i, s) in cs.sites.enumerated() where used[i] { if let n = cs.name(ofSite: i) { names[s] = n } }
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

/// What `facts` read: the authoriser's facts, the named rows as they stand, the pushing site's
/// row, every key named, and the versions (`xmin`) of the rows and of the site's row.
struct ReadFacts: Sendable {
    var facts: PushFacts
    var locked: [RowKey: StoredRow]
    var site: SiteRow?
    var named: Set<RowKey>
    var versions: [RowKey: String]
    var siteVersion: String?
}

/// What a push does (`decide`): the authorised plan, the site's new position, the lineage accepted.
struct PushDecision: Sendable {
    var plan: AuthorizedPush
    var position: Int64
    var lineage: SiteLineage?

    func response(_ writes: (applied: Int, ignored: Int)) -> PushResponse {
        PushResponse(applied: writes.applied, ignored: writes.ignored + plan.dropped, quarantined: plan.hold.map(\.note), position: position)
    }

    func response(_ writes: RowWrites) -> PushResponse { response((writes.applied, writes.ignored)) }
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
