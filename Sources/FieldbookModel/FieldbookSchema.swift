/// The five record tables of Fieldbook, as registered with the sync engine.
///
/// Every table has a UUID `id` (the engine's primary key) and a `region`: the regional team that
/// owns the record and whose devices may sync it. It is set at creation and never changes.
public enum FieldbookSchema {
    /// The version of these tables and fields. 2 added `person.merged_into` and `distinct_pair`.
    /// Every table and column says which version added it (`since`); docs/PROTOCOL.md states
    /// the rules for adding more.
    public static let version = 2
    /// The oldest version whose clients a server of this version still serves (they are sent
    /// only what they know: `Changeset.restricted(toVersion:of:)`).
    public static let oldestServedVersion = 1

    public static let person = TableSchema(
        name: "person",
        columns: [
            ColumnSchema("region", required: true, check: Checks.region),
            ColumnSchema("name", required: true, check: Checks.line),
            ColumnSchema("born", check: Checks.edtf),
            ColumnSchema("sex", check: Checks.vocabulary(Sex.self)),
            ColumnSchema("occupation", check: Checks.line),
            ColumnSchema("affiliation", check: Checks.line),
            ColumnSchema("notes", check: Checks.text),
            // The person this one is the same as (`fieldbook persons merge`): an ordinary field,
            // so a merge syncs, shows in the history and is undone by clearing it.
            ColumnSchema("merged_into", since: 2, check: Checks.uuid),
        ],
        immutable: ["region"],
        indexed: ["name", "merged_into"],
        partition: "region",
        idCheck: Checks.uuid
    )

    public static let alias = TableSchema(
        name: "alias",
        columns: [
            ColumnSchema("region", required: true, check: Checks.region),
            ColumnSchema("person_id", required: true, check: Checks.uuid),
            ColumnSchema("name", required: true, check: Checks.line),
        ],
        immutable: ["region", "person_id"],
        indexed: ["person_id", "name"],
        partition: "region",
        idCheck: Checks.uuid,
        parent: ("person_id", "person")
    )

    public static let incident: TableSchema = TableSchema(
        name: "incident",
        columns: [
            ColumnSchema("region", required: true, check: Checks.region),
            ColumnSchema("person_id", required: true, check: Checks.uuid),
            ColumnSchema("kind", required: true, check: Checks.vocabulary(IncidentKind.self)),
            ColumnSchema("date", required: true, check: Checks.edtf),
            ColumnSchema("date_text", check: Checks.text),
            ColumnSchema("place_region", check: Checks.line),
            ColumnSchema("settlement", check: Checks.line),
            ColumnSchema("facility", check: Checks.line),
            ColumnSchema("authority", check: Checks.vocabulary(Authority.self)),
            ColumnSchema("sentence_kind", check: Checks.vocabulary(SentenceKind.self)),
            ColumnSchema("sentence_term", check: Checks.duration),
            ColumnSchema("fine_amount", check: Checks.decimal),
            ColumnSchema("fine_unit", check: Checks.vocabulary(FineUnit.self)),
            ColumnSchema("description", check: Checks.text),
            ColumnSchema("verification", check: Checks.vocabulary(Verification.self)),
            ColumnSchema("ref", check: Checks.line),
        ],
        immutable: ["region", "person_id"],
        indexed: ["person_id", "ref"],
        partition: "region",
        idCheck: Checks.uuid,
        parent: ("person_id", "person"),
        rowCheck: { v throws(ModelError) in try checkFine(amount: v[incidentFineAmount], unit: v[incidentFineUnit]) }
    )

    public static let charge = TableSchema(
        name: "charge",
        columns: [
            ColumnSchema("region", required: true, check: Checks.region),
            ColumnSchema("incident_id", required: true, check: Checks.uuid),
            ColumnSchema("code", required: true, check: Checks.vocabulary(LegalCode.self)),
            ColumnSchema("article", required: true, check: Checks.article),
            ColumnSchema("part", check: Checks.part),
        ],
        immutable: ["region", "incident_id"],
        indexed: ["incident_id"],
        partition: "region",
        idCheck: Checks.uuid,
        parent: ("incident_id", "incident")
    )

    public static let source: TableSchema = TableSchema(
        name: "source",
        columns: [
            ColumnSchema("region", required: true, check: Checks.region),
            ColumnSchema("incident_id", required: true, check: Checks.uuid),
            ColumnSchema("outlet", check: Checks.line),
            ColumnSchema("url", check: Checks.url),
            ColumnSchema("published", check: Checks.edtf),
            ColumnSchema("reliability", check: Checks.vocabulary(Reliability.self)),
        ],
        immutable: ["region", "incident_id"],
        indexed: ["incident_id"],
        partition: "region",
        idCheck: Checks.uuid,
        parent: ("incident_id", "incident"),
        rowCheck: { v throws(ModelError) in try checkSource(outlet: v[sourceOutlet], url: v[sourceURL]) }
    )

    /// A coordinator's judgement that two persons are different people (`fieldbook persons
    /// distinct`), so the pair is not proposed again. One row per pair: `person_id` is the
    /// lower of the two ids (the row lives in that person's region), `other_id` the higher,
    /// and the row's id is derived from both (name-based), so that two
    /// coordinators who judge the same pair write the same row.
    public static let distinctPair = TableSchema(
        name: "distinct_pair",
        columns: [
            ColumnSchema("region", required: true, since: 2, check: Checks.region),
            ColumnSchema("person_id", required: true, since: 2, check: Checks.uuid),
            ColumnSchema("other_id", required: true, since: 2, check: Checks.uuid),
        ],
        immutable: ["region", "person_id", "other_id"],
        indexed: ["person_id", "other_id"],
        partition: "region",
        idCheck: Checks.uuid,
        parent: ("person_id", "person"),
        since: 2
    )

    /// All record tables, parents before children.
    public static let tables: [TableSchema] = [person, alias, incident, charge, source, distinctPair]

    /// The record tables as a server keeps them: regions and parent ids clear, every other field sealed.
    public static let sealedTables: [TableSchema] = tables.map(\.sealedForm)

    public static func sealedTable(named name: String) throws(ModelError) -> TableSchema {
        if let t = sealedTables.first(where: { $0.name == name }) { return t }
        throw ModelError(.unknownTable, field: name,
                         reason: "is not a record table; tables: \(tables.map(\.name).joined(separator: ", "))")
    }

    public static func table(named name: String) throws(ModelError) -> TableSchema {
        if let t = tables.first(where: { $0.name == name }) { return t }
        throw ModelError(.unknownTable, field: name,
                         reason: "is not a record table; tables: \(tables.map(\.name).joined(separator: ", "))")
    }

    /// Checks that hold across fields of one incident (run on local writes and imports, and on
    /// apply where the whole row is known: `TableSchema.checkRow`).
    public static func checkIncident(_ values: [String: Value]) throws(ModelError) {
        try checkFine(amount: values["fine_amount"] ?? .null, unit: values["fine_unit"] ?? .null)
    }

    static let incidentFineAmount: Int = incident.columnNames.firstIndex(of: "fine_amount")!
    static let incidentFineUnit: Int = incident.columnNames.firstIndex(of: "fine_unit")!
    static let sourceOutlet: Int = source.columnNames.firstIndex(of: "outlet")!
    static let sourceURL: Int = source.columnNames.firstIndex(of: "url")!

    static func checkFine(amount: Value, unit: Value) throws(ModelError) {
        if amount.isNull != unit.isNull {
            throw ModelError(.inconsistent, field: amount.isNull ? "incident.fine_amount" : "incident.fine_unit",
                             reason: "fine_amount and fine_unit go together: give both or neither")
        }
    }

    /// A source must say where the fact comes from: an outlet or a URL.
    public static func checkSource(_ values: [String: Value]) throws(ModelError) {
        try checkSource(outlet: values["outlet"] ?? .null, url: values["url"] ?? .null)
    }

    static func checkSource(outlet: Value, url: Value) throws(ModelError) {
        if outlet.isNull && url.isNull {
            throw ModelError(.missingField, field: "source.outlet", reason: "a source needs an outlet or a URL")
        }
    }
}
