import FieldbookModel

/// A registered table with its SQL prepared once.
public final class TableHandle: Sendable {
    public let schema: TableSchema
    /// The table's index in `_fb_table` (used by the log).
    let index: Int64
    let quoted: String
    let insertSQL: String
    /// `insertSQL` that does nothing when the id is already in the table.
    let insertIfNewSQL: String
    let rowSQL: String
    let immutableColumns: [Int]
    /// The partition column's index, if the table has one.
    let partitionColumn: Int?
    /// Columns whose values need more than a type check.
    let checked: [Bool]

    init(schema: TableSchema, index: Int64) {
        self.schema = schema
        self.index = index
        quoted = ReplicaSchema.quote(schema.name)
        let names = schema.columns.map { ReplicaSchema.quote($0.name) }
        let marks = Array(repeating: "?", count: names.count + 3).joined(separator: ",")
        insertSQL = "INSERT INTO \(quoted) (id,\(names.joined(separator: ",")),_cl,_clocks) VALUES (\(marks))"
        insertIfNewSQL = insertSQL + " ON CONFLICT (id) DO NOTHING"
        immutableColumns = schema.columns.indices.filter { schema.immutable.contains(schema.columns[$0].name) }
        partitionColumn = schema.partition.flatMap { p in schema.columns.firstIndex { $0.name == p } }
        checked = schema.columns.map { $0.check != nil || $0.required || $0.type != .text }
        rowSQL = "SELECT \(names.joined(separator: ",")), _cl, _clocks FROM \(quoted) WHERE id = ?"
    }

    var columnCount: Int { schema.columns.count }

    /// One `UPDATE` for any set of columns: ?1 is the mask, ?2… the values (column i at ?(i+2),
    /// ignored when not in the mask), then the causal length, the clocks and the id.
    var updateAnySQL: String {
        var sets: [String] = []
        for i in 0..<columnCount {
            let q = ReplicaSchema.quote(schema.columns[i].name)
            sets.append("\(q)=CASE WHEN (?1>>\(i))&1 THEN ?\(i + 2) ELSE \(q) END")
        }
        sets.append("_cl=?\(columnCount + 2)")
        sets.append("_clocks=?\(columnCount + 3)")
        return "UPDATE \(quoted) SET \(sets.joined(separator: ",")) WHERE id=?\(columnCount + 4)"
    }

    /// `UPDATE … SET` for the columns of `mask`, patching the clocks in SQL (local writes): the
    /// values of the columns in order, then the HLC, then the id. The mask and the local site
    /// are literals, so that a statement binds only what changes.
    func localUpdateSQL(mask: Int64, site: Int32) -> String {
        var sets: [String] = []
        var old: [String] = []
        for i in 0..<columnCount where mask & (1 << i) != 0 {
            let q = ReplicaSchema.quote(schema.columns[i].name)
            sets.append("\(q)=?")
            old.append(q)
        }
        sets.append("_clocks=fb_setclock(_clocks,\(mask),?,\(site),_cl,\(old.joined(separator: ",")))")
        return "UPDATE \(quoted) SET \(sets.joined(separator: ",")) WHERE id=?"
    }
}
