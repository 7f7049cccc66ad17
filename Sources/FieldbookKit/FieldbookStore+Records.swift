import FieldbookModel
import GRDB
import ReplicaStore

/// A source to attach to an incident.
public struct SourceInput: Sendable, Equatable {
    public var outlet: String?
    public var url: String?
    public var published: String?
    public var reliability: String?

    public init(outlet: String? = nil, url: String? = nil, published: String? = nil, reliability: String? = nil) {
        self.outlet = outlet
        self.url = url
        self.published = published
        self.reliability = reliability
    }

    public var isEmpty: Bool { [outlet, url, published, reliability].allSatisfy { ($0 ?? "").isEmpty } }
}

extension FieldbookStore {
    // MARK: Adding

    /// Adds a person with aliases in one transaction; returns the new id.
    public func addPerson(fields: [String: String], aliases: [String] = [], region: String? = nil) throws -> String {
        try write { w in try addPerson(w, fields: fields, aliases: aliases, region: region ?? self.region) }
    }

    /// - Parameter seed: for an import, what identifies the person in it: the id (and the ids of
    ///   its aliases) are then derived from it (`NameBasedID`), else random.
    func addPerson(_ w: ReplicaWriter, fields: [String: String], aliases: [String], region: String, seed: String? = nil) throws -> String {
        let id = seed.map { NameBasedID.make("person|\($0)") } ?? Self.newID()
        var values = try Self.values(fields, table: FieldbookSchema.person, allowed: ["name", "born", "sex", "occupation", "affiliation", "notes"])
        values["region"] = .text(region)
        try w.insert("person", id: id, values: values)
        for a in aliases { try addAlias(w, personID: id, name: a, region: region, derived: seed != nil) }
        return id
    }

    func addAlias(_ w: ReplicaWriter, personID: String, name: String, region: String, derived: Bool = false) throws {
        let id = derived ? NameBasedID.make("alias|\(personID)|\(CSVFormat.nameKey(name))") : Self.newID()
        try w.insert("alias", id: id, values: ["region": .text(region), "person_id": .text(personID), "name": .text(name)])
    }

    /// Adds an incident with its charges and sources in one transaction; returns the new id.
    public func addIncident(personID: String, fields: [String: String], articles: [String] = [], sources: [SourceInput] = [],
                            region: String? = nil) throws -> String {
        try write { w in try addIncident(w, personID: personID, fields: fields, articles: articles, sources: sources, region: region) }
    }

    func addIncident(_ w: ReplicaWriter, personID: String, fields: [String: String], articles: [String], sources: [SourceInput],
                     region: String?, seed: String? = nil) throws -> String {
        let pid = personID.lowercased()
        guard let person = try w.values("person", id: pid) else {
            throw FieldbookError(.notFound, "person: no person with id \(personID)")
        }
        let incidentFields = FieldbookSchema.incident.columnNames.filter { $0 != "region" && $0 != "person_id" }
        var values = try Self.values(fields, table: FieldbookSchema.incident, allowed: Set(incidentFields))
        values["region"] = .text(region ?? person.text("region") ?? self.region)
        values["person_id"] = .text(pid)
        try FieldbookSchema.checkIncident(values)
        if let ref = values["ref"]?.text, let other = try incidentID(ref: ref, w.db) {
            throw FieldbookError(.invalidInput, "incident.ref: \"\(ref)\" is already used by incident \(other)")
        }
        let id = seed.map { NameBasedID.make("incident|\($0)") } ?? Self.newID()
        let derived = seed != nil
        let owner = values["region"]?.text ?? self.region
        try w.insert("incident", id: id, values: values)
        for a in articles { try addCharge(w, incidentID: id, article: a, region: owner, derived: derived) }
        for s in sources where !s.isEmpty { try addSource(w, incidentID: id, source: s, region: owner, derived: derived) }
        return id
    }

    func addCharge(_ w: ReplicaWriter, incidentID: String, article: String, region: String, derived: Bool = false) throws {
        let c = try ChargeRef(article, field: "charge.article")
        let id = derived ? NameBasedID.make("charge|\(incidentID)|\(c.description)") : Self.newID()
        try w.insert("charge", id: id, values: [
            "region": .text(region), "incident_id": .text(incidentID), "code": .text(c.code.rawValue),
            "article": .text(c.article), "part": .textOrNull(c.part),
        ])
    }

    func addSource(_ w: ReplicaWriter, incidentID: String, source s: SourceInput, region: String, derived: Bool = false) throws {
        let values: [String: Value] = [
            "region": .text(region), "incident_id": .text(incidentID), "outlet": .textOrNull(s.outlet),
            "url": .textOrNull(s.url), "published": .textOrNull(s.published), "reliability": .textOrNull(s.reliability),
        ]
        try FieldbookSchema.checkSource(values)
        let id = derived ? NameBasedID.make("source|\(incidentID)|\(s.outlet ?? "")|\(s.url ?? "")|\(s.published ?? "")") : Self.newID()
        try w.insert("source", id: id, values: values)
    }

    func incidentID(ref: String, _ db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT id FROM incident WHERE ref = ?", arguments: [ref])
    }

    // MARK: Editing

    /// What `edit` should change.
    public struct Edit: Sendable {
        public var set: [(field: String, value: String)] = []
        public var addAliases: [String] = []
        public var addArticles: [String] = []
        public var addSources: [SourceInput] = []
        /// Ids of child records (aliases, charges, sources) to remove.
        public var remove: [String] = []
        public init() {}
    }

    /// Edits a record in one transaction, validated exactly like `add`.
    public func edit(id: String, _ e: Edit) throws {
        let table = try self.table(of: id)
        let id = id.lowercased()
        try write { w in
            let schema = try FieldbookSchema.table(named: table)
            if !e.set.isEmpty {
                var changes: [String: Value] = [:]
                for (k, v) in e.set {
                    if k == "merged_into" {
                        throw FieldbookError(.invalidInput, "person.merged_into: set by `fieldbook persons merge KEEP OTHER` and cleared by `fieldbook persons unmerge OTHER`, which check the merge")
                    }
                    guard schema.hasColumn(k), k != "person_id", k != "incident_id" else {
                        let editable = schema.columnNames.filter { !schema.immutable.contains($0) }
                        throw FieldbookError(.invalidInput, "\(table).\(k): not a field you can set; fields: \(editable.joined(separator: ", "))")
                    }
                    changes[k] = Self.value(v)
                }
                var merged = try w.values(table, id: id) ?? [:]
                for (k, v) in changes { merged[k] = v }
                if table == "incident" {
                    try FieldbookSchema.checkIncident(merged)
                    if let ref = changes["ref"]?.text, let other = try incidentID(ref: ref, w.db), other != id {
                        throw FieldbookError(.invalidInput, "incident.ref: \"\(ref)\" is already used by incident \(other)")
                    }
                }
                if table == "source" { try FieldbookSchema.checkSource(merged) }
                try w.update(table, id: id, values: changes)
            }
            let region = try w.values(table, id: id)?.text("region") ?? self.region
            if !e.addAliases.isEmpty {
                guard table == "person" else { throw FieldbookError(.invalidInput, "--add-alias: \(id) is a \(table), not a person") }
                for a in e.addAliases { try addAlias(w, personID: id, name: a, region: region) }
            }
            if !e.addArticles.isEmpty || !e.addSources.isEmpty {
                guard table == "incident" else { throw FieldbookError(.invalidInput, "--add-article/--add-source: \(id) is a \(table), not an incident") }
                for a in e.addArticles { try addCharge(w, incidentID: id, article: a, region: region) }
                for s in e.addSources { try addSource(w, incidentID: id, source: s, region: region) }
            }
            for child in e.remove.map({ $0.lowercased() }) {
                let parentColumn: String
                let childTable: String
                if try w.values("alias", id: child) != nil { (childTable, parentColumn) = ("alias", "person_id") }
                else if try w.values("charge", id: child) != nil { (childTable, parentColumn) = ("charge", "incident_id") }
                else if try w.values("source", id: child) != nil { (childTable, parentColumn) = ("source", "incident_id") }
                else { throw FieldbookError(.notFound, "--remove: no alias, charge or source with id \(child)") }
                guard try w.values(childTable, id: child)?.text(parentColumn) == id else {
                    throw FieldbookError(.invalidInput, "--remove: \(childTable) \(child) does not belong to \(table) \(id)")
                }
                try w.delete(childTable, id: child)
            }
        }
    }

    // MARK: Deleting

    /// Deletes a record and its child records in one transaction; returns how many records were deleted.
    @discardableResult
    public func delete(id: String) throws -> Int {
        let table = try self.table(of: id)
        let id = id.lowercased()
        return try write { w in try cascadeDelete(w, table: table, id: id) }
    }

    func cascadeDelete(_ w: ReplicaWriter, table: String, id: String) throws -> Int {
        var count = 0
        func children(_ t: String, _ column: String) throws -> [String] {
            try String.fetchAll(w.db, sql: "SELECT id FROM \"\(t)\" WHERE \"\(column)\" = ?", arguments: [id])
        }
        switch table {
        case "person":
            for a in try children("alias", "person_id") { try w.delete("alias", id: a); count += 1 }
            for i in try children("incident", "person_id") { count += try cascadeDelete(w, table: "incident", id: i) }
        case "incident":
            for c in try children("charge", "incident_id") { try w.delete("charge", id: c); count += 1 }
            for s in try children("source", "incident_id") { try w.delete("source", id: s); count += 1 }
        default: break
        }
        try w.delete(table, id: id)
        return count + 1
    }

    // MARK: Restoring

    /// Re-creates a deleted record with the values it had when it was deleted (its child
    /// records are restored one by one). The re-creation wins over the delete on every replica.
    public func restore(id: String) throws -> String {
        let norm = id.lowercased()
        if (try? table(of: norm)) != nil { throw FieldbookError(.invalidInput, "\(id) exists; only a deleted record can be restored") }
        guard let table = try replica.loggedTable(of: norm), let values = try replica.valuesAtDeletion(table: table, id: norm) else {
            throw FieldbookError(.notFound, "no deleted record with id \(id)")
        }
        try write { w in
            for (column, parent) in [("person_id", "person"), ("incident_id", "incident")] {
                if let pid = values[column]?.text, try w.values(parent, id: pid) == nil {
                    throw FieldbookError(.invalidInput, "\(table) \(norm) belongs to \(parent) \(pid), which is deleted; restore that first")
                }
            }
            if table == "incident", let ref = values["ref"]?.text, let other = try incidentID(ref: ref, w.db) {
                throw FieldbookError(.invalidInput, "incident.ref: \"\(ref)\" is used by incident \(other) now")
            }
            try w.insert(table, id: norm, values: values)
        }
        return table
    }

    // MARK: Helpers

    /// Converts text fields to values, checking each against the schema.
    static func values(_ fields: [String: String], table: TableSchema, allowed: Set<String>) throws -> [String: Value] {
        var out: [String: Value] = [:]
        for (k, v) in fields {
            guard allowed.contains(k) else {
                throw FieldbookError(.invalidInput, "\(table.name).\(k): not a field of \(table.name); fields: \(allowed.sorted().joined(separator: ", "))")
            }
            let value = value(v)
            try table.validate(value, at: try table.index(of: k))
            out[k] = value
        }
        for c in table.columns where c.required && allowed.contains(c.name) && (out[c.name] ?? .null).isNull {
            throw FieldbookError(.invalidInput, "\(table.name).\(c.name): is required")
        }
        return out
    }
}
