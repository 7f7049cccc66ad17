import FieldbookModel
import GRDB
import ReplicaStore

/// Filters for listing records.
public struct RecordFilter: Sendable {
    public var region: String?
    public var kind: String?
    public var personID: String?
    /// Incidents whose date range overlaps [from.earliest, to.latest].
    public var from: FuzzyDate?
    public var to: FuzzyDate?
    public init() {}
}

extension FieldbookStore {
    static func fields(_ row: Row, _ names: [String]) -> [String: Value] {
        var out: [String: Value] = [:]
        for n in names { out[n] = Value.fromDatabaseValue(row[n]) ?? .null }
        return out
    }

    /// Incidents matching the filter, ordered by date then id.
    public func incidents(_ f: RecordFilter = RecordFilter()) throws -> [IncidentView] {
        if let k = f.kind { _ = try IncidentKind.parse(k, field: "--kind") }
        return try read { db in
            var sql = "SELECT incident.*, person.name AS person_name FROM incident LEFT JOIN person ON person.id = incident.person_id WHERE 1"
            var args: [(any DatabaseValueConvertible)?] = []
            if let r = f.region { sql += " AND incident.region = ?"; args.append(r) }
            if let k = f.kind { sql += " AND incident.kind = ?"; args.append(k) }
            if let p = f.personID { sql += " AND incident.person_id = ?"; args.append(p.lowercased()) }
            var views = try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map { try incidentView(db, $0) }
            views = views.filter { v in
                guard let d = try? FuzzyDate(v.date) else { return true }
                if let from = f.from, d.latest < from.earliest { return false }
                if let to = f.to, d.earliest > to.latest { return false }
                return true
            }
            return views.sorted { a, b in
                let da = (try? FuzzyDate(a.date))?.earliest ?? 0, dbb = (try? FuzzyDate(b.date))?.earliest ?? 0
                return (da, a.date, a.id) < (dbb, b.date, b.id)
            }
        }
    }

    /// Persons matching the filter (region), ordered by name then id; with incidents. Persons
    /// merged into another are shown as that one (`MergeGraph`): its names and aliases, every
    /// incident of them all; the region filter and `personID` go by the canonical person.
    public func persons(_ f: RecordFilter = RecordFilter()) throws -> [PersonView] {
        try read { db in
            let graph = try mergeGraph(db)
            var sql = "SELECT * FROM person WHERE 1"
            var args: [(any DatabaseValueConvertible)?] = []
            if let r = f.region { sql += " AND region = ?"; args.append(r) }
            if let p = f.personID { sql += " AND id = ?"; args.append(graph.canonical(of: p.lowercased())) }
            sql += " ORDER BY name, id"
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args))
                .filter { graph.isCanonical($0["id"]) }
                .map { try mergedView(db, $0, graph) }
        }
    }

    /// The person `row` (canonical) with every person merged into it.
    func mergedView(_ db: Database, _ row: Row, _ graph: MergeGraph) throws -> PersonView {
        var view = try personView(db, row)
        let others = graph.members(of: view.id).filter { $0 != view.id }
        guard !others.isEmpty else { return view }
        var seen = Set([view.name] + view.aliases)
        for id in others {
            guard let r = try Row.fetchOne(db, sql: "SELECT * FROM person WHERE id = ?", arguments: [id]) else { continue }
            let m = try personView(db, r)
            for (name, nameID) in [(m.name, m.id)] + Array(zip(m.aliases, m.alias_ids)) where seen.insert(name).inserted {
                view.aliases.append(name)
                view.alias_ids.append(nameID)
            }
            view.born = view.born ?? m.born
            view.sex = view.sex ?? m.sex
            view.occupation = view.occupation ?? m.occupation
            view.affiliation = view.affiliation ?? m.affiliation
            view.notes = view.notes ?? m.notes
            view.incidents += m.incidents
        }
        view.incidents.sort(by: Self.incidentOrder)
        view.merged = others
        return view
    }

    static func incidentOrder(_ a: IncidentView, _ b: IncidentView) -> Bool {
        let da = (try? FuzzyDate(a.date))?.earliest ?? 0, dbb = (try? FuzzyDate(b.date))?.earliest ?? 0
        return (da, a.date, a.kind, a.ref ?? "", a.id) < (dbb, b.date, b.kind, b.ref ?? "", b.id)
    }

    /// One person (with aliases and incidents) or one incident.
    public enum Shown: Sendable {
        case person(PersonView)
        case incident(IncidentView)
    }

    public func show(id: String) throws -> Shown {
        let table = try self.table(of: id)
        let id = id.lowercased()
        return try read { db in
            switch table {
            case "person":
                let graph = try mergeGraph(db)
                let row = try Row.fetchOne(db, sql: "SELECT * FROM person WHERE id = ?", arguments: [graph.canonical(of: id)])!
                return .person(try mergedView(db, row, graph))
            case "incident":
                let row = try Row.fetchOne(db, sql: "SELECT incident.*, person.name AS person_name FROM incident LEFT JOIN person ON person.id = incident.person_id WHERE incident.id = ?", arguments: [id])!
                return .incident(try incidentView(db, row))
            default:
                let parent = table == "alias" ? "person_id" : "incident_id"
                let pid = try String.fetchOne(db, sql: "SELECT \(parent) FROM \"\(table)\" WHERE id = ?", arguments: [id])!
                throw FieldbookError(.invalidInput, "\(id) is a \(table) of \(pid); show \(pid) instead")
            }
        }
    }

    func personView(_ db: Database, _ row: Row) throws -> PersonView {
        let id: String = row["id"]
        let aliases = try Row.fetchAll(db, sql: "SELECT id, name FROM alias WHERE person_id = ? ORDER BY name, id", arguments: [id])
        let incidents = try Row.fetchAll(db, sql: "SELECT incident.*, ? AS person_name FROM incident WHERE person_id = ?",
                                         arguments: [row["name"] as String?, id])
            .map { try incidentView(db, $0) }
            .sorted(by: Self.incidentOrder)
        return PersonView(id: id, region: row["region"], name: row["name"] ?? "", aliases: aliases.map { $0["name"] },
                          alias_ids: aliases.map { $0["id"] }, born: row["born"], sex: row["sex"], occupation: row["occupation"],
                          affiliation: row["affiliation"], notes: row["notes"], incidents: incidents)
    }

    func incidentView(_ db: Database, _ row: Row) throws -> IncidentView {
        let id: String = row["id"]
        let charges = try Row.fetchAll(db, sql: "SELECT id, code, article, part FROM charge WHERE incident_id = ?", arguments: [id])
            .map { r -> (String, String) in
                let c = ChargeRef(code: LegalCode(rawValue: r["code"] ?? "") ?? .CC, article: r["article"] ?? "", part: r["part"])
                return (c.description, r["id"])
            }
            .sorted { $0 < $1 }
        let sources = try Row.fetchAll(db, sql: "SELECT * FROM source WHERE incident_id = ?", arguments: [id])
            .map { SourceView(id: $0["id"], outlet: $0["outlet"], url: $0["url"], published: $0["published"], reliability: $0["reliability"]) }
            .sorted { ($0.outlet ?? "", $0.published ?? "", $0.url ?? "", $0.id) < ($1.outlet ?? "", $1.published ?? "", $1.url ?? "", $1.id) }
        return IncidentView(
            id: id, region: row["region"], person_id: row["person_id"], person_name: row["person_name"], kind: row["kind"] ?? "",
            date: row["date"] ?? "", date_text: row["date_text"], place_region: row["place_region"], settlement: row["settlement"],
            facility: row["facility"], authority: row["authority"], sentence_kind: row["sentence_kind"],
            sentence_term: row["sentence_term"], fine_amount: row["fine_amount"], fine_unit: row["fine_unit"],
            description: row["description"], verification: row["verification"], ref: row["ref"],
            charges: charges.map(\.0), charge_ids: charges.map(\.1), sources: sources)
    }

    /// The history of every field of a record (see `Replica.history`).
    public func history(id: String) throws -> (table: String, entries: [HistoryEntry]) {
        let norm = id.lowercased()
        var table: String? = nil
        do { table = try self.table(of: norm) } catch {
            // A deleted record still has a history: look for it in the log.
            do { table = try replica.loggedTable(of: norm) } catch { throw FieldbookError.from(error) }
        }
        guard let table else { throw FieldbookError(.notFound, "no record with id \(id), now or in the history") }
        do { return (table, try replica.history(table: table, id: norm)) } catch { throw FieldbookError.from(error) }
    }
}
