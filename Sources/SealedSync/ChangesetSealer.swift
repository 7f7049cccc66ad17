@preconcurrency import Crypto
import FieldbookModel

/// A row change that did not open, and why: kept aside by the receiving replica and reported.
public struct RefusedRow: Sendable, Equatable {
    public var table: String
    public var id: String
    /// The site that wrote the field that did not open (or the row's site).
    public var site: SiteID
    public var kind: SealedSyncError.Kind
    public var reason: String
    /// The row change as it arrived (sealed), to try again when the missing key arrives.
    public var change: Changeset
}

/// Seals every field of a changeset that a server does not need to read, and opens what a
/// server sends. The clear columns (`TableSchema.clearColumns`: the region and the parent's id)
/// stay as they are; every other field becomes a `CellSealer` cell bound to its `CellAddress`.
public enum ChangesetSealer {
    /// The region of a row the change does not say it of: the replica's own record of it.
    public typealias RegionLookup = (_ table: String, _ id: String) throws -> String?

    /// Seals `cs` with the current key of each row's region. Throws when a row's region is not
    /// known or this device holds no key for it (the caller pushes only regions it holds keys for).
    public static func seal(_ cs: Changeset, keys: KeyRing, region lookup: RegionLookup) throws -> Changeset {
        var out = cs
        // Each site's name, sealed under a region it wrote to here (the first one met).
        var nameRegion = [String?](repeating: nil, count: cs.sites.count)
        // First the regions and keys (the lookup reads the replica: one thread), then the cells.
        struct Job { var table: Int, row: Int, field: Int, address: CellAddress, epoch: UInt32, key: SymmetricKey }
        var jobs: [Job] = []
        for (ti, t) in cs.tables.enumerated() {
            let schema = try FieldbookSchema.table(named: t.table)
            let clear = t.fields.map { schema.clearColumns.contains($0) }
            let regionField = schema.partition.flatMap { t.fields.firstIndex(of: $0) }
            for (ri, rc) in t.rows.enumerated() where !rc.fields.isEmpty {
                guard let region = try regionOf(rc, regionField, t.table, lookup) else {
                    throw SealedSyncError(.missingKey, "\(t.table) \(rc.id): its region is not known here, so it cannot be sealed")
                }
                guard let (epoch, key) = keys.current(region) else {
                    throw SealedSyncError(.missingKey, "no key for region \(region) on this device (\(t.table) \(rc.id))")
                }
                if nameRegion[rc.site] == nil { nameRegion[rc.site] = region }
                for (fi, f) in rc.fields.enumerated() where !clear[f.field] {
                    if nameRegion[f.site] == nil { nameRegion[f.site] = region }
                    jobs.append(Job(table: ti, row: ri, field: fi, address: CellAddress(region: region, table: t.table, row: rc.id,
                                                                                        field: t.fields[f.field], hlc: f.hlc, site: cs.sites[f.site]),
                                    epoch: epoch, key: key))
                }
            }
        }
        let cells = try ParallelMap.map(jobs.count) { i throws -> [UInt8] in
            let j = jobs[i]
            return try CellSealer.seal(cs.tables[j.table].rows[j.row].fields[j.field].value, at: j.address, epoch: j.epoch, key: j.key)
        }
        for (j, cell) in zip(jobs, cells) { out.tables[j.table].rows[j.row].fields[j.field].value = .sealed(cell) }
        out.siteNames = try cs.sites.indices.map { i in
            guard let name = cs.name(ofSite: i), let region = nameRegion[i] else { return nil }
            return try SealedName.seal(name, site: cs.sites[i], region: region, keys: keys)
        }
        if out.siteNames.allSatisfy({ $0 == nil }) { out.siteNames = [] }
        return out
    }

    /// Opens every sealed field of `cs`. A row change with a field that does not open (or a
    /// clear value where a sealed one belongs, or a region this device holds no key for) is left
    /// out of the result and returned as refused; the rest opens.
    public static func open(_ cs: Changeset, keys: KeyRing, region lookup: RegionLookup) throws -> (clear: Changeset, refused: [RefusedRow]) {
        var names = cs.sites.indices.map { i in cs.name(ofSite: i).flatMap { SealedName.open($0, site: cs.sites[i], keys: keys) } }
        if names.allSatisfy({ $0 == nil }) { names = [] }
        // First each row's region (the lookup reads the replica: one thread), then the cells on
        // every core, then the rows put together in order.
        struct Job { var table: Int, row: Int, field: Int, address: CellAddress }
        var jobs: [Job] = []
        var early: [Int: [Int: SealedSyncError]] = [:]  // table → row → why it cannot open at all
        for (ti, t) in cs.tables.enumerated() {
            let schema = try FieldbookSchema.table(named: t.table)
            let clear = t.fields.map { schema.clearColumns.contains($0) }
            let regionField = schema.partition.flatMap { t.fields.firstIndex(of: $0) }
            for (ri, rc) in t.rows.enumerated() {
                guard !rc.fields.isEmpty else { continue }
                let region = try regionOf(rc, regionField, t.table, lookup)
                guard let region else {
                    early[ti, default: [:]][ri] = SealedSyncError(.missingKey, "\(t.table) \(rc.id): a change of a record this replica does not hold, without its region")
                    continue
                }
                for (fi, f) in rc.fields.enumerated() where !clear[f.field] {
                    jobs.append(Job(table: ti, row: ri, field: fi, address: CellAddress(region: region, table: t.table, row: rc.id,
                                                                                        field: t.fields[f.field], hlc: f.hlc, site: cs.sites[f.site])))
                }
            }
        }
        let opened = try ParallelMap.map(jobs.count) { i -> Result<Value, SealedSyncError> in
            let j = jobs[i]
            let f = cs.tables[j.table].rows[j.row].fields[j.field]
            guard case .sealed(let cell) = f.value else {
                return .failure(SealedSyncError(.malformed, "\(j.address.table).\(j.address.field) of \(j.address.row) arrived in clear; every value travels sealed"))
            }
            do throws(SealedSyncError) { return .success(try CellSealer.open(cell, at: j.address, keys: keys)) } catch { return .failure(error) }
        }
        var values = cs.tables.map { t in t.rows.map { $0.fields.map(\.value) } }
        var failed: [Int: [Int: (SealedSyncError, Int)]] = [:]  // table → row → (why, writing site)
        for (j, r) in zip(jobs, opened) {
            switch r {
            case .success(let v): values[j.table][j.row][j.field] = v
            case .failure(let e):
                if failed[j.table]?[j.row] == nil { failed[j.table, default: [:]][j.row] = (e, cs.tables[j.table].rows[j.row].fields[j.field].site) }
            }
        }
        var out = Changeset(sites: cs.sites, tables: [], siteNames: names)
        var refused: [RefusedRow] = []
        for (ti, t) in cs.tables.enumerated() {
            var kept = TableChanges(table: t.table, fields: t.fields)
            kept.rows.reserveCapacity(t.rows.count)
            for (ri, rc) in t.rows.enumerated() {
                let why = early[ti]?[ri].map { ($0, rc.site) } ?? failed[ti]?[ri]
                if let (e, site) = why {
                    refused.append(RefusedRow(table: t.table, id: rc.id, site: cs.sites[site], kind: e.kind, reason: e.message,
                                              change: Changeset(sites: cs.sites, tables: [TableChanges(table: t.table, fields: t.fields, rows: [rc])],
                                                                siteNames: cs.siteNames)))
                    continue
                }
                var row = rc
                for fi in row.fields.indices { row.fields[fi].value = values[ti][ri][fi] }
                kept.rows.append(row)
            }
            if !kept.rows.isEmpty { out.tables.append(kept) }
        }
        return (out, refused)
    }

    static func regionOf(_ rc: RowChange, _ regionField: Int?, _ table: String, _ lookup: RegionLookup) throws -> String? {
        if let rf = regionField, let v = rc.fields.first(where: { $0.field == rf })?.value.text { return v }
        return try lookup(table, rc.id)
    }
}
