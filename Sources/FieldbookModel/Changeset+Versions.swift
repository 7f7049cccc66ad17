extension Changeset {
    /// What a peer of schema `version` knows of this changeset: the tables and fields added
    /// after it are left out, and so is a row change that carried only such fields (a peer
    /// would otherwise read it as a bare re-creation). Tables that `tables` does not list pass
    /// unchanged. A peer that later moves to a newer version pulls again from the start
    /// (docs/PROTOCOL.md, "Adding tables and fields").
    public func restricted(toVersion version: Int, of tables: [TableSchema]) -> Changeset {
        var out = self
        out.tables = []
        for t in self.tables {
            guard let schema = tables.first(where: { $0.name == t.table }) else {
                out.tables.append(t)
                continue
            }
            if schema.since > version { continue }
            let known = t.fields.map { f in schema.columns.first { $0.name == f }.map { $0.since <= version } ?? true }
            if known.allSatisfy({ $0 }) {
                out.tables.append(t)
                continue
            }
            var position: [Int?] = []
            var fields: [String] = []
            for (i, f) in t.fields.enumerated() {
                position.append(known[i] ? fields.count : nil)
                if known[i] { fields.append(f) }
            }
            var kept = TableChanges(table: t.table, fields: fields)
            for r in t.rows {
                var row = r
                row.fields = r.fields.compactMap { f in
                    guard f.field < position.count, let p = position[f.field] else { return nil }
                    var g = f
                    g.field = p
                    return g
                }
                if row.fields.isEmpty && !r.fields.isEmpty { continue }
                kept.rows.append(row)
            }
            if !kept.rows.isEmpty { out.tables.append(kept) }
        }
        return out
    }
}
