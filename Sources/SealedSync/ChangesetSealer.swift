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
                    let address = CellAddress(region: region, table: t.table, row: rc.id, field: t.fields[f.field], hlc: f.hlc, site: cs.sites[f.site])
                    out.tables[ti].rows[ri].fields[fi].value = .sealed(try CellSealer.seal(f.value, at: address, epoch: epoch, key: key))
                }
            }
        }
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
        var out = Changeset(sites: cs.sites, tables: [], siteNames: names)
        var refused: [RefusedRow] = []
        for t in cs.tables {
            let schema = try FieldbookSchema.table(named: t.table)
            let clear = t.fields.map { schema.clearColumns.contains($0) }
            let regionField = schema.partition.flatMap { t.fields.firstIndex(of: $0) }
            var kept = TableChanges(table: t.table, fields: t.fields)
            kept.rows.reserveCapacity(t.rows.count)
            rows: for var rc in t.rows {
                guard !rc.fields.isEmpty else { kept.rows.append(rc); continue }
                func refuse(_ e: SealedSyncError, site: Int) {
                    refused.append(RefusedRow(table: t.table, id: rc.id, site: cs.sites[site], kind: e.kind, reason: e.message,
                                              change: Changeset(sites: cs.sites, tables: [TableChanges(table: t.table, fields: t.fields, rows: [rc])],
                                                                siteNames: cs.siteNames)))
                }
                guard let region = try regionOf(rc, regionField, t.table, lookup) else {
                    refuse(SealedSyncError(.missingKey, "\(t.table) \(rc.id): a change of a record this replica does not hold, without its region"), site: rc.site)
                    continue
                }
                for (fi, f) in rc.fields.enumerated() where !clear[f.field] {
                    guard case .sealed(let cell) = f.value else {
                        refuse(SealedSyncError(.malformed, "\(t.table).\(t.fields[f.field]) of \(rc.id) arrived in clear; every value travels sealed"), site: f.site)
                        continue rows
                    }
                    let address = CellAddress(region: region, table: t.table, row: rc.id, field: t.fields[f.field], hlc: f.hlc, site: cs.sites[f.site])
                    do { rc.fields[fi].value = try CellSealer.open(cell, at: address, keys: keys) } catch {
                        refuse(error, site: f.site)
                        continue rows
                    }
                }
                kept.rows.append(rc)
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
