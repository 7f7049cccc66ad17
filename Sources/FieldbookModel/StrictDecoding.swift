/// Decoding that refuses unknown keys (Foundation's decoder ignores them), so that a message
/// with a misspelt or foreign field is rejected with the field named.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

func rejectUnknownKeys(_ decoder: any Decoder, known: Set<String>) throws {
    let c = try decoder.container(keyedBy: AnyKey.self)
    for k in c.allKeys where !known.contains(k.stringValue) {
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [k],
                                                debugDescription: "unknown field \"\(k.stringValue)\""))
    }
}

extension WireChangeset {
    private enum Keys: String, CodingKey { case sites, names, tables }
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: ["sites", "names", "tables"])
        let c = try decoder.container(keyedBy: Keys.self)
        sites = try c.decode([SiteID].self, forKey: .sites)
        names = try c.decodeIfPresent([String?].self, forKey: .names)
        tables = try c.decode([WireTable].self, forKey: .tables)
    }
}

extension WireChangeset.WireTable {
    private enum Keys: String, CodingKey { case table, shared, ids, cl, hlc, site, columns }
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: ["table", "shared", "ids", "cl", "hlc", "site", "columns"])
        let c = try decoder.container(keyedBy: Keys.self)
        table = try c.decode(String.self, forKey: .table)
        shared = try c.decode([Int].self, forKey: .shared)
        ids = try c.decode([String].self, forKey: .ids)
        cl = try c.decodeIfPresent([Int64].self, forKey: .cl)
        hlc = try c.decode([Int64].self, forKey: .hlc)
        site = try c.decodeIfPresent([Int].self, forKey: .site)
        columns = try c.decode([WireChangeset.WireColumn].self, forKey: .columns)
    }
}

extension WireChangeset.WireColumn {
    private enum Keys: String, CodingKey { case field, rows, values, hlc, site }
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: ["field", "rows", "values", "hlc", "site"])
        let c = try decoder.container(keyedBy: Keys.self)
        field = try c.decode(String.self, forKey: .field)
        rows = try c.decode([Int].self, forKey: .rows)
        values = try c.decode([Value].self, forKey: .values)
        hlc = try c.decode([Int64].self, forKey: .hlc)
        site = try c.decodeIfPresent([Int].self, forKey: .site)
    }
}

extension PushRequest {
    private enum Keys: String, CodingKey { case site, from, to, changes }
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: ["site", "from", "to", "changes"])
        let c = try decoder.container(keyedBy: Keys.self)
        site = try c.decode(SiteID.self, forKey: .site)
        from = try c.decode(Int64.self, forKey: .from)
        to = try c.decode(Int64.self, forKey: .to)
        changes = try c.decode(WireChangeset.self, forKey: .changes)
    }
}
