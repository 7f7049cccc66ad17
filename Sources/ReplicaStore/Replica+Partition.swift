import GRDB

extension ReplicaWriter {
    /// The partition (region) of a row this replica holds or held, in the write's transaction.
    public func partition(of table: String, id: String) throws -> String? {
        try replica.partition(of: table, id: id, in: db)
    }
}

extension Replica {
    /// The partition (region) of a row this replica holds or held, read in `db` (any
    /// transaction, reads only); nil for a row never seen or a table without partitions.
    public func partition(of table: String, id: String, in db: Database) throws -> String? {
        guard let h = handles[table], let column = h.schema.partition else { return nil }
        if let live = try String.fetchOne(db.cachedStatement(sql: "SELECT \(ReplicaSchema.quote(column)) FROM \(h.quoted) WHERE id = ?"),
                                          arguments: [id]) {
            return live
        }
        return try String.fetchOne(db.cachedStatement(sql: "SELECT part FROM _fb_tombstone WHERE tbl = ? AND row_id = ?"), arguments: [h.index, id])
    }
}
