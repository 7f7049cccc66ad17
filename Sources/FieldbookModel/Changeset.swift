/// A set of changes from one replica to another: the unit of sync.
///
/// In memory it is row-oriented: for each table, the rows that changed, each with its causal
/// length (odd = alive, even = deleted), the clock of its last existence change, and the fields
/// that changed with their values and clocks. On the wire it is columnar JSON
/// (see `WireChangeset` and docs/PROTOCOL.md).
public struct Changeset: Sendable, Equatable {
    /// The sites that clocks in this changeset refer to, by index.
    public var sites: [SiteID]
    /// The device name of each site, where known (parallel to `sites`, or empty).
    public var siteNames: [String?]
    public var tables: [TableChanges]

    public init(sites: [SiteID] = [], tables: [TableChanges] = [], siteNames: [String?] = []) {
        self.sites = sites
        self.tables = tables
        self.siteNames = siteNames
    }

    /// The device name of site `i`, if known.
    public func name(ofSite i: Int) -> String? { i < siteNames.count ? siteNames[i] : nil }

    /// Which listed sites some change refers to (a row's site or a field's), parallel to
    /// `sites`. A store registers and names only these: a site listed but used by no change
    /// must leave no trace (a push may list up to 65,536 sites). Indices out of range count
    /// for nothing (the wire checks refuse them before a store sees them).
    public var usedSites: [Bool] {
        var used = [Bool](repeating: false, count: sites.count)
        for t in tables {
            for rc in t.rows {
                if used.indices.contains(rc.site) { used[rc.site] = true }
                for f in rc.fields where used.indices.contains(f.site) { used[f.site] = true }
            }
        }
        return used
    }

    /// The number of field changes plus the number of rows changed without fields (deletes, re-creations).
    public var changeCount: Int {
        tables.reduce(0) { $0 + $1.rows.reduce(0) { $0 + max($1.fields.count, 1) } }
    }

    public var isEmpty: Bool { tables.allSatisfy { $0.rows.isEmpty } }
}

/// The changed rows of one table.
public struct TableChanges: Sendable, Equatable {
    public var table: String
    /// The names of the fields that `FieldChange.field` indexes.
    public var fields: [String]
    public var rows: [RowChange]

    public init(table: String, fields: [String], rows: [RowChange] = []) {
        self.table = table
        self.fields = fields
        self.rows = rows
    }
}

/// One row's change: its existence (causal length) and the fields that changed.
public struct RowChange: Sendable, Equatable {
    public var id: String
    /// Causal length: odd = alive, even = deleted. A delete is a row change with an even length
    /// and no fields, so it can never be taken for an update.
    public var cl: Int64
    /// Clock (HLC, raw) and site index of the change that set this causal length.
    public var hlc: Int64
    public var site: Int
    public var fields: [FieldChange]

    public init(id: String, cl: Int64, hlc: Int64, site: Int, fields: [FieldChange] = []) {
        self.id = id
        self.cl = cl
        self.hlc = hlc
        self.site = site
        self.fields = fields
    }

    public var isDelete: Bool { cl % 2 == 0 }
}

/// One field's new value and the clock of the write that set it.
public struct FieldChange: Sendable, Equatable {
    /// Index into `TableChanges.fields`.
    public var field: Int
    public var value: Value
    public var hlc: Int64
    public var site: Int

    public init(field: Int, value: Value, hlc: Int64, site: Int) {
        self.field = field
        self.value = value
        self.hlc = hlc
        self.site = site
    }
}
