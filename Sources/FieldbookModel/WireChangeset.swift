/// The columnar JSON form of a `Changeset`.
///
/// Per table: row ids, causal lengths and existence clocks as parallel arrays; per field, the
/// rows that carry it, their values, clocks and sites. Row positions and row clocks are
/// delta-coded (each entry is the difference from the previous one in the same array; the
/// first is absolute); a field's clock is coded as its difference from its row's clock (0 when
/// the field was written with the row). This makes the JSON compress to a fraction of a
/// row-per-object form.
/// docs/PROTOCOL.md is the exact specification.
public struct WireChangeset: Codable, Sendable, Equatable {
    public var sites: [SiteID]
    /// Device names of the sites (parallel to `sites`; null where unknown); absent when none is known.
    public var names: [String?]?
    public var tables: [WireTable]

    public init(sites: [SiteID], names: [String?]?, tables: [WireTable]) {
        self.sites = sites
        self.names = names
        self.tables = tables
    }

    public struct WireTable: Codable, Sendable, Equatable {
        public var table: String
        /// Row ids, front-coded: `ids[i]` is what follows the first `shared[i]` Unicode scalars
        /// of the previous row's id.
        public var shared: [Int]
        public var ids: [String]
        /// Causal lengths; absent when every row's is 1 (alive, never deleted).
        public var cl: [Int64]?
        public var hlc: [Int64]
        /// Site indices; absent when every row's is 0.
        public var site: [Int]?
        public var columns: [WireColumn]

        public init(table: String, shared: [Int], ids: [String], cl: [Int64]?, hlc: [Int64], site: [Int]?, columns: [WireColumn]) {
            self.table = table
            self.shared = shared
            self.ids = ids
            self.cl = cl
            self.hlc = hlc
            self.site = site
            self.columns = columns
        }
    }

    public struct WireColumn: Codable, Sendable, Equatable {
        public var field: String
        public var rows: [Int]
        public var values: [Value]
        public var hlc: [Int64]
        /// Site indices; absent when every entry's is 0.
        public var site: [Int]?

        public init(field: String, rows: [Int], values: [Value], hlc: [Int64], site: [Int]?) {
            self.field = field
            self.rows = rows
            self.values = values
            self.hlc = hlc
            self.site = site
        }
    }
}

extension WireChangeset {
    /// Encodes a changeset into its columnar form.
    public init(_ cs: Changeset) {
        sites = cs.sites
        names = cs.siteNames.contains { $0 != nil } ? cs.sites.indices.map { cs.name(ofSite: $0) } : nil
        tables = cs.tables.map { t in
            var ids: [String] = []
            var shared: [Int] = []
            var previous = ""
            var cl: [Int64] = []
            var hlc = DeltaEncoder()
            var site: [Int] = []
            ids.reserveCapacity(t.rows.count)
            cl.reserveCapacity(t.rows.count)
            site.reserveCapacity(t.rows.count)
            var cols = t.fields.map { WireColumn(field: $0, rows: [], values: [], hlc: [], site: []) }
            for i in cols.indices { cols[i].site!.reserveCapacity(t.rows.count) }
            var lastRow = Array(repeating: 0, count: t.fields.count)
            for (r, row) in t.rows.enumerated() {
                let (n, suffix) = FrontCoding.split(row.id, after: previous)
                shared.append(n)
                ids.append(suffix)
                previous = row.id
                cl.append(row.cl)
                hlc.append(row.hlc)
                site.append(row.site)
                for f in row.fields {
                    cols[f.field].rows.append(r - lastRow[f.field])
                    lastRow[f.field] = r
                    cols[f.field].values.append(f.value)
                    cols[f.field].hlc.append(f.hlc &- row.hlc)
                    cols[f.field].site!.append(f.site)
                }
            }
            for i in cols.indices where cols[i].site?.allSatisfy({ $0 == 0 }) == true { cols[i].site = nil }
            return WireTable(table: t.table, shared: shared, ids: ids, cl: cl.allSatisfy { $0 == 1 } ? nil : cl, hlc: hlc.out,
                             site: site.allSatisfy { $0 == 0 } ? nil : site, columns: cols.filter { !$0.rows.isEmpty })
        }
    }

    /// Decodes the columnar form. Every value is checked before it is used: array lengths agree,
    /// positions move forward within the table, site indices are in range and each site is
    /// listed once, ids and device names are bounded (`WireLimits`), causal lengths lie in
    /// 1…`WireLimits.maxCausalLength`, every clock (a row's, and a field's after adding its
    /// offset, without wrapping) is positive, and no field repeats.
    public func changeset() throws(ModelError) -> Changeset {
        guard sites.count <= WireLimits.maxSites else {
            throw ModelError(.tooLarge, field: "sites", reason: "lists \(sites.count) sites; at most \(WireLimits.maxSites) are accepted")
        }
        guard Set(sites).count == sites.count else {
            throw ModelError(.inconsistent, field: "sites", reason: "lists a site more than once")
        }
        if let names {
            guard names.count == sites.count else {
                throw ModelError(.inconsistent, field: "names", reason: "must have one entry per site")
            }
            for (i, n) in names.enumerated() { if let n { try WireLimits.checkDeviceName(n, field: "names[\(i)]") } }
        }
        var out = Changeset(sites: sites, siteNames: names ?? [])
        for (ti, t) in tables.enumerated() {
            let n = t.ids.count
            let where_ = "tables[\(ti)]"
            let tcl = t.cl ?? Array(repeating: 1, count: n)
            let tsite = t.site ?? Array(repeating: 0, count: n)
            guard t.shared.count == n, tcl.count == n, t.hlc.count == n, tsite.count == n else {
                throw ModelError(.inconsistent, field: where_, reason: "shared, ids, cl, hlc and site must have the same length")
            }
            var rows: [RowChange] = []
            rows.reserveCapacity(n)
            var hd = DeltaDecoder()
            var previous = ""
            for i in 0..<n {
                // Bounded before joining: a long id shared by many rows must not multiply.
                guard t.ids[i].utf8.count <= WireLimits.maxIDBytes, (0...WireLimits.maxIDBytes).contains(t.shared[i]),
                      let id = FrontCoding.join(previous, shared: t.shared[i], suffix: t.ids[i])
                else {
                    throw ModelError.invalid("\(where_).shared[\(i)]", String(t.shared[i]),
                                             "is longer than the previous id, or the id would be longer than \(WireLimits.maxIDBytes) bytes")
                }
                try WireLimits.checkID(id, field: "\(where_).ids[\(i)]")
                previous = id
                guard (1...WireLimits.maxCausalLength).contains(tcl[i]) else {
                    throw ModelError.invalid("\(where_).cl[\(i)]", String(tcl[i]), "is not a causal length (1 to \(WireLimits.maxCausalLength))")
                }
                guard sites.indices.contains(tsite[i]) else {
                    throw ModelError.invalid("\(where_).site[\(i)]", String(tsite[i]), "is not an index into sites")
                }
                guard let hlc = hd.next(t.hlc[i]), WireLimits.isClock(hlc) else {
                    throw ModelError.invalid("\(where_).hlc[\(i)]", String(t.hlc[i]), "does not give a clock (the running sum must stay positive, without overflow)")
                }
                rows.append(RowChange(id: id, cl: tcl[i], hlc: hlc, site: tsite[i]))
            }
            var fields: [String] = []
            for (ci, c) in t.columns.enumerated() {
                let cw = "\(where_).columns[\(ci)]"
                guard !fields.contains(c.field) else {
                    throw ModelError(.inconsistent, field: cw, value: c.field, reason: "repeats a field")
                }
                let m = c.rows.count
                let csite = c.site ?? Array(repeating: 0, count: m)
                guard c.values.count == m, c.hlc.count == m, csite.count == m else {
                    throw ModelError(.inconsistent, field: cw, reason: "rows, values, hlc and site must have the same length")
                }
                let fi = fields.count
                fields.append(c.field)
                var r = -1
                for k in 0..<m {
                    // The first position is absolute (≥ 0), each later one a step forward (≥ 1).
                    let step = c.rows[k]
                    guard step >= (k == 0 ? 0 : 1), step < (k == 0 ? n : n - r) else {
                        throw ModelError.invalid("\(cw).rows[\(k)]", String(step), "points outside the table's rows or not after the previous one")
                    }
                    r = k == 0 ? step : r + step
                    guard sites.indices.contains(csite[k]) else {
                        throw ModelError.invalid("\(cw).site[\(k)]", String(csite[k]), "is not an index into sites")
                    }
                    guard rows[r].cl % 2 == 1 else {
                        throw ModelError(.inconsistent, field: "\(cw).rows[\(k)]", reason: "a deleted row (even cl) carries no fields")
                    }
                    let (hlc, overflow) = rows[r].hlc.addingReportingOverflow(c.hlc[k])
                    guard !overflow, WireLimits.isClock(hlc) else {
                        throw ModelError.invalid("\(cw).hlc[\(k)]", String(c.hlc[k]), "does not give a clock (row clock plus offset must stay positive, without overflow)")
                    }
                    rows[r].fields.append(FieldChange(field: fi, value: c.values[k], hlc: hlc, site: csite[k]))
                }
            }
            out.tables.append(TableChanges(table: t.table, fields: fields, rows: rows))
        }
        return out
    }
}

/// Front coding of ids: how many leading Unicode scalars an id shares with the previous one,
/// and the rest of it.
enum FrontCoding {
    static func split(_ id: String, after previous: String) -> (shared: Int, suffix: String) {
        let a = id.unicodeScalars, b = previous.unicodeScalars
        var i = a.startIndex, j = b.startIndex
        var n = 0
        while i < a.endIndex, j < b.endIndex, a[i] == b[j] {
            a.formIndex(after: &i)
            b.formIndex(after: &j)
            n += 1
        }
        return (n, n == 0 ? id : String(a[i...]))
    }

    /// The first `shared` scalars of `previous` followed by `suffix`; nil when `previous` is shorter.
    static func join(_ previous: String, shared: Int, suffix: String) -> String? {
        guard shared >= 0 else { return nil }
        if shared == 0 { return suffix }
        let b = previous.unicodeScalars
        guard let end = b.index(b.startIndex, offsetBy: shared, limitedBy: b.endIndex) else { return nil }
        return String(b[..<end]) + suffix
    }
}

/// Delta coding: the encoder wraps, so any Int64 sequence round-trips; the decoder refuses a sum
/// that overflows (no clock a peer may send needs one).
struct DeltaEncoder {
    var out: [Int64] = []
    var last: Int64 = 0
    mutating func append(_ v: Int64) {
        out.append(v &- last)
        last = v
    }
}

struct DeltaDecoder {
    var last: Int64 = 0
    /// The next value, or nil when adding the delta overflows.
    mutating func next(_ d: Int64) -> Int64? {
        let (v, overflow) = last.addingReportingOverflow(d)
        if overflow { return nil }
        last = v
        return v
    }
}
