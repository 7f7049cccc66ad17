import FieldbookModel
import SyncCore

/// A row as the server knows it, live or deleted: the facts authorisation rests on. They come
/// from the server's own store, never from a change.
public struct HeldRow: Sendable, Equatable {
    /// The owning region (a deleted row remembers it).
    public var region: String?
    /// The parent's id, for a child table (nil where unknown, e.g. a tombstone older than that fact).
    public var parent: String?

    public init(region: String?, parent: String? = nil) {
        self.region = region
        self.parent = parent
    }
}

/// A table and a row id.
public struct RowKey: Hashable, Sendable, CustomStringConvertible {
    public var table: String
    public var id: String

    public init(_ table: String, _ id: String) {
        self.table = table
        self.id = id
    }

    public var description: String { "\(table) \(id)" }
}

/// What the store knows that a push's authorisation needs, read in the push's transaction.
public struct PushFacts: Sendable {
    /// Every row the batch names, and the parents its child rows name, that the server holds or held.
    public var held: [RowKey: HeldRow]
    /// The token that first pushed under the batch's site id, if any.
    public var siteOwner: String?
    /// Rows that have changes held in quarantine: later changes of them wait behind.
    public var quarantined: Set<RowKey>
    /// Each region's current key epoch: new cells must be sealed under it.
    public var epochs: [String: UInt32]

    public init(held: [RowKey: HeldRow] = [:], siteOwner: String? = nil, quarantined: Set<RowKey> = [], epochs: [String: UInt32] = [:]) {
        self.held = held
        self.siteOwner = siteOwner
        self.quarantined = quarantined
        self.epochs = epochs
    }
}

/// A push, authorised: what to apply, what to hold in quarantine, what was dropped.
public struct AuthorizedPush: Sendable {
    public var apply: Changeset
    public var hold: [HeldChange]
    /// Deletes of rows this server never held (they change nothing anyone has).
    public var dropped: Int
    /// Whether the site is new and must be bound to the token.
    public var bindSite: Bool
}

/// A row change kept aside, and why.
public struct HeldChange: Sendable {
    public var note: QuarantineNote
    public var row: Changeset
    /// The newest clock in the change (its physical millisecond part), to release it when due.
    public var newestMillis: Int64
}

/// Decides who may push what. Pure: it takes the batch, the token and the facts the store read,
/// and returns a plan or a refusal; the store only carries the plan out.
///
/// Rules (docs/SECURITY.md):
/// - A site id belongs to the token that first pushed under it; the server's own site is nobody's.
/// - The region of a row the server holds or held comes from the server's record, never from the
///   change — also when the change starts a new incarnation; a change that names another region
///   or another parent is refused.
/// - A new row must name its region; a child's region is its parent's when the parent is known
///   (a child whose parent is unknown is kept as an orphan in its own region).
/// - The token must cover the region of every row it creates, edits or deletes, applied or held.
/// - A delete of a row the server never held is dropped; a change of a row that has a change held
///   in quarantine is held behind it, so the two are applied in order.
/// - Every field but the region and the parent's id is a sealed cell, sealed under its region's
///   current key epoch (an older epoch: 409 `stale_key_epoch`, so the device fetches the new key
///   and seals again; a region without keys: 409 `no_region_key`).
public enum PushAuthorizer {
    public static func authorize(_ batch: PushBatch, token: TokenInfo, facts: PushFacts, serverSite: SiteID) throws(ServerError) -> AuthorizedPush {
        if batch.site == serverSite {
            throw ServerError(.forbidden, "site_not_yours", "site \(batch.site) is this server's own; a device pushes under its own site id")
        }
        if let owner = facts.siteOwner, owner != token.name {
            throw ServerError(.forbidden, "site_not_yours",
                "site \(batch.site) was first pushed by another token; a device pushes only under its own site id (a copied replica: run `fieldbook init` for the second device)")
        }
        var known = facts.held
        var waiting = facts.quarantined
        var out = AuthorizedPush(apply: Changeset(sites: batch.changes.sites, siteNames: batch.changes.siteNames), hold: [],
                                 dropped: 0, bindSite: facts.siteOwner == nil)

        // Held changes first: rows that arrive later in this batch then wait behind them.
        for q in batch.quarantined {
            for t in q.row.tables {
                for rc in t.rows {
                    let key = RowKey(t.table, rc.id)
                    try validate(rc, table: t)
                    // Behind an earlier held change of a row the server does not know yet: authorised on release.
                    if known[key] != nil || !waiting.contains(key) { try check(rc, table: t, token: token, known: &known, epochs: facts.epochs) }
                    waiting.insert(key)
                }
            }
            out.hold.append(HeldChange(note: q.note, row: q.row, newestMillis: newestMillis(q.row)))
        }
        for t in batch.changes.tables {
            var kept = TableChanges(table: t.table, fields: t.fields)
            for rc in t.rows {
                let key = RowKey(t.table, rc.id)
                if rc.isDelete && known[key] == nil && !waiting.contains(key) {
                    out.dropped += 1
                    continue
                }
                if waiting.contains(key) {
                    // Waits behind a held change of the same row: authorised now when the row is
                    // known, else when it is released (against the store as it is then).
                    if known[key] != nil { try check(rc, table: t, token: token, known: &known, epochs: facts.epochs) }
                    try validate(rc, table: t)
                    let one = Changeset(sites: batch.changes.sites, tables: [TableChanges(table: t.table, fields: t.fields, rows: [rc])],
                                        siteNames: batch.changes.siteNames)
                    out.hold.append(HeldChange(
                        note: QuarantineNote(table: t.table, id: rc.id, reason: "waits behind an earlier change of the same record that is held"),
                        row: one, newestMillis: newestMillis(one)))
                } else {
                    try check(rc, table: t, token: token, known: &known, epochs: facts.epochs)
                    kept.rows.append(rc)
                }
            }
            if !kept.rows.isEmpty { out.apply.tables.append(kept) }
        }
        return out
    }

    /// Authorises one row change and records what it makes known (a new row's region and parent).
    static func check(_ rc: RowChange, table t: TableChanges, token: TokenInfo, known: inout [RowKey: HeldRow],
                      epochs: [String: UInt32]) throws(ServerError) {
        let schema: TableSchema
        do { schema = try FieldbookSchema.sealedTable(named: t.table) } catch { throw ServerError.badRequest("invalid", error.description) }
        let key = RowKey(t.table, rc.id)
        func incoming(_ column: String?) -> Value? {
            guard let column, let i = t.fields.firstIndex(of: column) else { return nil }
            return rc.fields.first { $0.field == i }?.value
        }
        let region = incoming(schema.partition)
        let parent = incoming(schema.parent?.column)

        if let held = known[key] {
            guard let owner = held.region else {
                throw ServerError(.forbidden, "region_unknown", "\(key): this server does not know the record's region; it cannot be changed by a push")
            }
            try allow(token, owner, key)
            try checkCells(rc, table: t, schema: schema, region: owner, epochs: epochs)
            if let region, region != .text(owner) {
                throw ServerError(.forbidden, "region_immutable",
                    "\(key) belongs to region \"\(owner)\"; a change cannot move it to \"\(region.display)\" (the region never changes, also when a record is re-created)")
            }
            if let parent, let heldParent = held.parent, parent != .text(heldParent), let column = schema.parent?.column {
                throw ServerError(.forbidden, "parent_immutable", "\(key): \(column) is \(heldParent); a change cannot attach it to \(parent.display)")
            }
            return
        }
        // A row this server never held.
        guard case .text(let owner)? = region else {
            throw ServerError.badRequest("missing_region",
                "\(key) is not known here and its change carries no region (a new record must be sent with all its fields)")
        }
        try allow(token, owner, key)
        try checkCells(rc, table: t, schema: schema, region: owner, epochs: epochs)
        var parentID: String? = nil
        if let p = schema.parent {
            guard case .text(let pid)? = parent else {
                throw ServerError.badRequest("missing_parent", "\(key) is not known here and its change carries no \(p.column)")
            }
            parentID = pid
            if let mother = known[RowKey(p.table, pid)], let motherRegion = mother.region, motherRegion != owner {
                throw ServerError(.forbidden, "parent_region_mismatch",
                    "\(key) names region \"\(owner)\" but its parent \(p.table) \(pid) belongs to \"\(motherRegion)\"; a record belongs to its parent's region")
            }
        }
        known[key] = HeldRow(region: owner, parent: parentID)
    }

    /// Every sealed field of `rc` is a cell under `region`'s current key epoch.
    static func checkCells(_ rc: RowChange, table t: TableChanges, schema: TableSchema, region: String,
                           epochs: [String: UInt32]) throws(ServerError) {
        for f in rc.fields {
            let name = t.fields[f.field]
            guard let c = try? schema.index(of: name), schema.columns[c].type == .sealed else { continue }
            guard case .sealed(let cell) = f.value, let header = SealedForm.header(of: cell) else {
                throw ServerError.badRequest("not_sealed",
                    "\(t.table).\(name) of \(rc.id) is not a sealed cell; this server keeps only sealed values (update fieldbook on the device that sent it)")
            }
            guard let current = epochs[region] else {
                throw ServerError(.conflict, "no_region_key",
                    "region \(region) has no key yet: a coordinator creates it (fieldbook keys create \(region)) and approves this device")
            }
            if header.epoch < current {
                throw ServerError(.conflict, "stale_key_epoch",
                    "\(t.table) \(rc.id) is sealed under key epoch \(header.epoch) of region \(region); the region is at epoch \(current). Fetch the new key and seal again (fieldbook sync does this by itself)")
            }
            if header.epoch > current {
                throw ServerError.badRequest("unknown_key_epoch",
                    "\(t.table) \(rc.id) is sealed under key epoch \(header.epoch) of region \(region), which does not exist (the region is at \(current))")
            }
        }
    }

    /// The checks a replica runs on apply that a server can run on sealed cells, for a change
    /// that is held instead of applied (so that nothing malformed is kept).
    static func validate(_ rc: RowChange, table t: TableChanges) throws(ServerError) {
        do {
            let schema = try FieldbookSchema.sealedTable(named: t.table)
            try schema.validateID(rc.id)
            for f in rc.fields { try schema.validate(f.value, at: try schema.index(of: t.fields[f.field])) }
        } catch {
            throw ServerError.badRequest("invalid", "\(error) (row \(rc.id))")
        }
    }

    static func allow(_ token: TokenInfo, _ region: String, _ key: RowKey) throws(ServerError) {
        guard token.allows(region: region) else {
            throw ServerError(.forbidden, "region_not_allowed",
                "token \"\(token.name)\" may not write region \"\(region)\" (\(key)); it covers: \(token.regions.joined(separator: ", "))")
        }
    }

    static func newestMillis(_ cs: Changeset) -> Int64 {
        var newest: Int64 = 0
        for t in cs.tables {
            for rc in t.rows {
                newest = max(newest, rc.hlc)
                for f in rc.fields { newest = max(newest, f.hlc) }
            }
        }
        return HLC(rawValue: newest).millis
    }
}
