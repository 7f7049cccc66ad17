/// The binary form of the sync messages: the same columnar changeset as the JSON form, written
/// with varints instead of text (docs/PROTOCOL.md, "Binary bodies"). Decoding checks the bytes
/// and then runs the same checks as the JSON form (`WireChangeset.changeset()`).
extension SyncProtocol {
    /// The media type of binary push bodies and pull responses.
    public static let binaryMediaType = "application/vnd.fieldbook.v1+binary"
    static let pushMagic = "FBP1"
    static let pullMagic = "FBL1"
}

extension WireChangeset {
    func write(to w: inout BinaryWriter) {
        w.count(sites.count)
        for s in sites { w.raw(s.bytes) }
        if let names {
            w.byte(1)
            for n in names {
                if let n { w.byte(1); w.string(n) } else { w.byte(0) }
            }
        } else {
            w.byte(0)
        }
        w.count(tables.count)
        for t in tables {
            w.string(t.table)
            w.count(t.ids.count)
            for s in t.shared { w.count(s) }
            for id in t.ids { w.string(id) }
            w.byte(t.cl == nil ? 0 : 1)
            for c in t.cl ?? [] { w.signed(c) }
            for h in t.hlc { w.signed(h) }
            w.byte(t.site == nil ? 0 : 1)
            for s in t.site ?? [] { w.count(s) }
            w.count(t.columns.count)
            for c in t.columns {
                w.string(c.field)
                w.count(c.rows.count)
                for r in c.rows { w.signed(Int64(r)) }
                for v in c.values { w.value(v) }
                for h in c.hlc { w.signed(h) }
                w.byte(c.site == nil ? 0 : 1)
                for s in c.site ?? [] { w.count(s) }
            }
        }
    }

    init(from r: inout BinaryReader) throws(ModelError) {
        let siteCount = try r.count("sites", minBytes: 16)
        try r.spend(siteCount, "sites")
        sites = []
        for i in 0..<siteCount {
            guard let s = SiteID(bytes: try r.raw(16, "sites[\(i)]")) else { throw r.fail("sites[\(i)]", "is not a site id") }
            sites.append(s)
        }
        if try r.flag("names") {
            var list: [String?] = []
            for i in 0..<siteCount { list.append(try r.flag("names[\(i)]") ? try r.string("names[\(i)]") : nil) }
            names = list
        } else {
            names = nil
        }
        let tableCount = try r.count("tables")
        tables = []
        for ti in 0..<tableCount {
            let at = "tables[\(ti)]"
            let name = try r.string("\(at).table")
            let n = try r.count("\(at).ids", minBytes: 3)
            try r.spend(n, "\(at).ids")
            let (sharedWhat, idsWhat, clWhat, hlcWhat, siteWhat) = ("\(at).shared", "\(at).ids", "\(at).cl", "\(at).hlc", "\(at).site")
            let shared = try r.list(n) { r throws(ModelError) in try r.index(sharedWhat) }
            let ids = try r.list(n) { r throws(ModelError) in try r.string(idsWhat) }
            let cl = try r.flag(clWhat) ? try r.list(n) { r throws(ModelError) in try r.signed(clWhat) } : nil
            let hlc = try r.list(n) { r throws(ModelError) in try r.signed(hlcWhat) }
            let site = try r.flag(siteWhat) ? try r.list(n) { r throws(ModelError) in try r.index(siteWhat) } : nil
            let columnCount = try r.count("\(at).columns")
            var columns: [WireColumn] = []
            for ci in 0..<columnCount {
                let cat = "\(at).columns[\(ci)]"
                let field = try r.string("\(cat).field")
                let (rowsWhat, valuesWhat, hlcWhat, siteWhat) = ("\(cat).rows", "\(cat).values", "\(cat).hlc", "\(cat).site")
                let m = try r.count(rowsWhat, minBytes: 3)
                try r.spend(m, rowsWhat)
                let rows = try r.list(m) { r throws(ModelError) in
                    let d = try r.signed(rowsWhat)
                    // Positions only move forward: a step is 0 (first) or more, never near Int64's ends.
                    guard (0...Int64(Int32.max)).contains(d) else { throw r.fail(rowsWhat, "is \(d), out of range") }
                    return Int(d)
                }
                let values = try r.list(m) { r throws(ModelError) in try r.value(valuesWhat) }
                let chlc = try r.list(m) { r throws(ModelError) in try r.signed(hlcWhat) }
                let csite = try r.flag(siteWhat) ? try r.list(m) { r throws(ModelError) in try r.index(siteWhat) } : nil
                columns.append(WireColumn(field: field, rows: rows, values: values, hlc: chlc, site: csite))
            }
            tables.append(WireTable(table: name, shared: shared, ids: ids, cl: cl, hlc: hlc, site: site, columns: columns))
        }
    }

    /// The changeset alone in binary form (the body of neither request; for measuring and tests).
    public func binary() -> [UInt8] {
        var w = BinaryWriter()
        write(to: &w)
        return w.bytes
    }

    public init(binary bytes: [UInt8]) throws(ModelError) {
        var r = BinaryReader(bytes, name: "changes")
        try self.init(from: &r)
        try r.end()
    }
}

extension PushRequest {
    /// `"FBP1"`, the site's 16 bytes, `from` and `to` (zigzag varints), the changeset.
    public func binary() -> [UInt8] {
        var w = BinaryWriter()
        w.raw(SyncProtocol.pushMagic.utf8)
        w.raw(site.bytes)
        w.signed(from)
        w.signed(to)
        changes.write(to: &w)
        return w.bytes
    }

    /// - Parameter maxChanges: refuse (`ModelError.Kind.tooLarge`) a body holding more than
    ///   this many changes, counted before they are decoded (rows plus field writes may reach
    ///   twice the number of changes).
    public init(binary bytes: [UInt8], maxChanges: Int = .max) throws(ModelError) {
        var r = BinaryReader(bytes, name: "body", maxItems: maxChanges > Int.max / 2 ? .max : 2 * maxChanges)
        try r.magic(SyncProtocol.pushMagic)
        guard let s = SiteID(bytes: try r.raw(16, "site")) else { throw r.fail("site", "is not a site id") }
        let from = try r.signed("from")
        let to = try r.signed("to")
        let changes = try WireChangeset(from: &r)
        try r.end()
        self.init(site: s, from: from, to: to, changes: changes)
    }
}

extension PullResponse {
    /// `"FBL1"`, the cursor (string), `more` (0 or 1), the changeset.
    public func binary() -> [UInt8] {
        var w = BinaryWriter()
        w.raw(SyncProtocol.pullMagic.utf8)
        w.string(cursor)
        w.byte(more ? 1 : 0)
        changes.write(to: &w)
        return w.bytes
    }

    public init(binary bytes: [UInt8]) throws(ModelError) {
        var r = BinaryReader(bytes, name: "body")
        try r.magic(SyncProtocol.pullMagic)
        let cursor = try r.string("cursor")
        guard cursor.utf8.count <= WireLimits.maxCursorBytes else { throw r.fail("cursor", "is longer than \(WireLimits.maxCursorBytes) bytes") }
        let more = try r.flag("more")
        let changes = try WireChangeset(from: &r)
        try r.end()
        self.init(changes: changes, cursor: cursor, more: more)
    }
}
