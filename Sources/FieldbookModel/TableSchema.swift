/// The storage type of a column.
public enum ColumnType: String, Sendable {
    case text = "TEXT"
    case integer = "INTEGER"
    case real = "REAL"
    /// A sealed cell (`Value.sealed`): the form in which a server keeps every field it cannot read.
    case sealed = "BLOB"
}

/// One synced column of a table: its name, type, whether it must be present, and the check
/// its text values must pass. The same checks run on local writes, on import, and on changes
/// that arrive from another replica.
public struct ColumnSchema: Sendable {
    public var name: String
    public var type: ColumnType
    public var required: Bool
    /// Throws a `ModelError` naming the field when a (non-null) text value is not acceptable.
    public var check: (@Sendable (String, String) throws(ModelError) -> Void)?
    /// The schema version that added the column (docs/PROTOCOL.md, "Adding tables and fields"):
    /// replicas and stores of earlier versions gain it when opened, and clients of earlier
    /// versions are never sent it.
    public var since: Int

    public init(_ name: String, _ type: ColumnType = .text, required: Bool = false, since: Int = 1,
                check: (@Sendable (String, String) throws(ModelError) -> Void)? = nil) {
        self.name = name
        self.type = type
        self.required = required
        self.since = since
        self.check = check
    }
}

/// A table the sync engine keeps: a text primary key `id` plus the synced columns.
///
/// Tables are registered with the engine (the domain model registers its five record tables; a
/// benchmark can register a plain table).
public struct TableSchema: Sendable {
    public var name: String
    public var columns: [ColumnSchema]
    /// Columns that never change once the row exists (for example the owning region).
    public var immutable: Set<String>
    /// Columns to index for lookups (not unique: uniqueness across replicas cannot be enforced by SQLite).
    public var indexed: [String]
    /// The column that partitions rows between sync peers (the owning region), if any. Pulls
    /// can be limited to some partitions; a deleted row remembers its partition.
    public var partition: String?
    /// The check a row id must pass besides `WireLimits.checkID` (record tables: a UUID).
    public var idCheck: (@Sendable (String, String) throws(ModelError) -> Void)?
    /// The parent of each row, when the table is a child table: the column holding the parent's
    /// id and the parent's table. A child belongs to its parent's partition.
    public var parent: (column: String, table: String)?
    /// A rule across the fields of one row (values in column order), run where the whole row is
    /// known: local writes, and a row that arrives whole from one write (`checkRow`).
    public var rowCheck: (@Sendable ([Value]) throws(ModelError) -> Void)?
    /// The schema version that added the table (see `ColumnSchema.since`).
    public var since: Int
    private let positions: [String: Int]

    public init(name: String, columns: [ColumnSchema], immutable: Set<String> = [], indexed: [String] = [],
                partition: String? = nil, idCheck: (@Sendable (String, String) throws(ModelError) -> Void)? = nil,
                parent: (column: String, table: String)? = nil, since: Int = 1,
                rowCheck: (@Sendable ([Value]) throws(ModelError) -> Void)? = nil) {
        precondition(columns.allSatisfy { $0.since >= since } && !columns.contains { $0.required && $0.since > since },
                     "a column is as new as its table or newer, and a column added later is never required")
        self.since = since
        self.rowCheck = rowCheck
        self.partition = partition
        self.idCheck = idCheck
        self.parent = parent
        precondition(columns.count <= 62, "a table may have at most 62 synced columns")
        self.name = name
        self.columns = columns
        self.immutable = immutable
        self.indexed = indexed
        var p: [String: Int] = [:]
        for (i, c) in columns.enumerated() { p[c.name] = i }
        self.positions = p
    }

    public var columnNames: [String] { columns.map(\.name) }

    /// Checks a row id: bounded, no control characters, and the table's own id check.
    public func validateID(_ id: String) throws(ModelError) {
        try WireLimits.checkID(id, field: "\(name).id")
        try idCheck?("\(name).id", id)
    }

    /// The position of `field`, or an error naming the table and listing its fields.
    public func index(of field: String) throws(ModelError) -> Int {
        if let i = positions[field] { return i }
        throw ModelError(.unknownField, field: "\(name).\(field)",
                         reason: "is not a field of \(name); fields: \(columnNames.joined(separator: ", "))")
    }

    public func hasColumn(_ field: String) -> Bool { positions[field] != nil }

    /// The columns a server must read to authorise and merge: the partition (region) and the
    /// parent's id. Every other column travels sealed (docs/SECURITY.md, "What the server sees").
    public var clearColumns: Set<String> {
        Set([partition, parent?.column].compactMap { $0 })
    }

    /// This table as a server keeps it: the clear columns as they are, every other column a
    /// sealed cell (no value check, nothing required, no rule across fields: the server cannot
    /// read them; the receiving replicas check them when they open them).
    public var sealedForm: TableSchema {
        let clear = clearColumns
        return TableSchema(
            name: name,
            columns: columns.map { clear.contains($0.name) ? $0 : ColumnSchema($0.name, .sealed, since: $0.since) },
            immutable: immutable.intersection(clear), indexed: indexed.filter { clear.contains($0) },
            partition: partition, idCheck: idCheck, parent: parent, since: since, rowCheck: nil)
    }

    /// The columns a peer of schema `version` knows, by position.
    public func knownColumns(atVersion version: Int) -> [Bool] { columns.map { $0.since <= version } }

    /// Whether this is the server's form of a table (some column holds sealed cells).
    public var isSealedForm: Bool { columns.contains { $0.type == .sealed } }

    /// Checks a whole row (values in column order): every required field is present and, when
    /// `crossField`, the table's `rowCheck` holds. A row merged from concurrent writes is checked
    /// without `crossField`: each write passed the rules where it was made, and their
    /// combination may break a rule across fields that no one could have prevented (shown by
    /// `fieldbook check` instead).
    public func checkRow(_ values: [Value], crossField: Bool = true) throws(ModelError) {
        for (i, c) in columns.enumerated() where c.required {
            let v = i < values.count ? values[i] : .null
            if v.isNull || v.text == "" { throw ModelError(.missingField, field: "\(name).\(c.name)", reason: "is required") }
        }
        guard crossField, let rowCheck, values.count == columns.count else { return }
        try rowCheck(values)
    }

    /// Checks one value for the column at `index`: type, presence, and the column's own check.
    public func validate(_ value: Value, at index: Int) throws(ModelError) {
        let col = columns[index]
        let field = "\(name).\(col.name)"
        switch (value, col.type) {
        case (.sealed(let b), .sealed):
            guard SealedForm.header(of: b) != nil else {
                throw ModelError.invalid(field, value.display,
                    "is not a sealed cell (version 1, a key epoch of 1 to 2^32-1, whole 16-byte blocks and a tag; \(SealedForm.minCellBytes) to \(WireLimits.maxSealedBytes) bytes)")
            }
        case (.sealed, _):
            throw ModelError(.sealedValue, field: field,
                             reason: "is sealed; a replica opens a value with its region's key before it keeps it (a sealed value where a clear one belongs)")
        case (_, .sealed):
            throw ModelError(.notSealed, field: field,
                             reason: "is not sealed; this server keeps only sealed values (the device that sent it is out of date or broken, and has just shown this value to the network's operator)")
        case (.null, _):
            if col.required { throw ModelError(.missingField, field: field, reason: "is required") }
        case (.text(let s), .text):
            if col.required && s.isEmpty { throw ModelError(.missingField, field: field, reason: "is required") }
            // Every text, whatever its own check, fits a sealed cell (a URL has no length of its own).
            guard s.utf8.count <= WireLimits.maxTextBytes else {
                throw ModelError.invalid(field, String(s.prefix(40)) + "…", "is longer than \(WireLimits.maxTextBytes) bytes in UTF-8")
            }
            try col.check?(field, s)
        case (.integer, .integer), (.integer, .real), (.real, .real):
            break
        default:
            throw ModelError.invalid(field, value.display, "has the wrong type; expected \(col.type.rawValue.lowercased())")
        }
    }
}
