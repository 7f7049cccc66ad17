import CSV
import FieldbookModel
import Foundation
import GRDB
import ReplicaStore

/// What an import did.
public struct ImportReport: Sendable, Equatable, CustomStringConvertible {
    public var rows = 0
    public var personsCreated = 0
    public var personsMatched = 0
    public var incidentsCreated = 0
    /// Rows whose `ref` was already in the replica.
    public var incidentsUnchanged = 0
    public var aliasesAdded = 0
    public var warnings: [String] = []

    public var description: String {
        "\(rows) rows: \(incidentsCreated) incidents added, \(incidentsUnchanged) already present (same ref), "
            + "\(personsCreated) persons added, \(personsMatched) matched to existing persons, \(aliasesAdded) aliases added"
    }
}

/// One parsed, validated CSV row.
struct CSVRow {
    var line: Int
    var cells: [String: String]
    var aliases: [String]
    var articles: [String]
    var hasIncident: Bool
}

extension FieldbookStore {
    /// Imports a "fieldbook CSV" file in one transaction. A bad row stops the import with its
    /// line, column and problem, and nothing of the file is written.
    public func importCSV(path: String, region: String? = nil) throws -> ImportReport {
        let name = (path as NSString).lastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FieldbookError(.invalidInput, "\(path): cannot read the file")
        }
        // Read whole and decoded strictly: invalid UTF-8 is refused, not replaced.
        guard let text = String(data: data, encoding: .utf8) else {
            throw FieldbookError(.invalidInput, "\(name): not valid UTF-8; save the file as UTF-8 and import it again")
        }
        let rows = try Self.parseCSV(text: text, name: name)
        let region = region ?? self.region
        try Checks.region("--region", region)
        return try write { w in try importRows(w, rows, region: region, name: name) }
    }

    static func parseCSV(text: String, name: String) throws -> [CSVRow] {
        let reader: CSVReader
        do { reader = try CSVReader(string: text, hasHeaderRow: true) } catch {
            throw FieldbookError(.invalidInput, "\(name): cannot read a header row (\(error))")
        }
        var header = reader.headerRow ?? []
        if let first = header.first, first.hasPrefix("\u{FEFF}") { header[0] = String(first.dropFirst()) }
        for c in CSVFormat.columns where !header.contains(c) {
            throw FieldbookError(.invalidInput, "\(name):1: the header has no column \"\(c)\"; expected: \(CSVFormat.columns.joined(separator: ","))")
        }
        for c in header where !CSVFormat.columns.contains(c) {
            throw FieldbookError(.invalidInput, "\(name):1: unknown column \"\(c)\"; expected: \(CSVFormat.columns.joined(separator: ","))")
        }
        if Set(header).count != header.count { throw FieldbookError(.invalidInput, "\(name):1: a column appears twice in the header") }

        var out: [CSVRow] = []
        var line = 2
        while let fields = reader.next() {
            let start = line
            line += 1 + fields.reduce(0) { $0 + $1.reduce(0) { $0 + ($1 == "\n" || $1 == "\r\n" || $1 == "\r" ? 1 : 0) } }
            if fields.count == 1 && fields[0].isEmpty { continue }  // blank line
            guard fields.count == header.count else {
                throw FieldbookError(.invalidInput, "\(name):\(start): expected \(header.count) fields, found \(fields.count) (a missing comma, or an unterminated quote?)")
            }
            var cells: [String: String] = [:]
            for (i, c) in header.enumerated() { cells[c] = fields[i].trimmingCharacters(in: .whitespaces) }
            out.append(try validateRow(cells, line: start, name: name))
        }
        if let e = reader.error { throw FieldbookError(.invalidInput, "\(name):\(line): cannot read the file (\(e))") }
        return out
    }

    /// Checks every cell of a row with the shared model's rules.
    static func validateRow(_ cells: [String: String], line: Int, name: String) throws -> CSVRow {
        func fail(_ column: String, _ e: ModelError) -> FieldbookError {
            let v = e.value.map { "\"\($0)\" " } ?? ""
            return FieldbookError(.invalidInput, "\(name):\(line): column \(column): \(v)\(e.reason)")
        }
        func check(_ column: String, _ table: TableSchema, _ field: String) throws {
            do { try table.validate(.textOrNull(cells[column]), at: try table.index(of: field)) } catch { throw fail(column, error) }
        }
        try check("person_name", FieldbookSchema.person, "name")
        for (c, f) in CSVFormat.personFields { try check(c, FieldbookSchema.person, f) }
        let aliases = CSVFormat.list(cells["person_aliases"] ?? "")
        for a in aliases {
            do { try Checks.line("person_aliases", a) } catch { throw fail("person_aliases", error) }
        }
        let incidentColumns = CSVFormat.incidentFields.map(\.column) + CSVFormat.sourceColumns + ["articles"]
        let hasIncident = incidentColumns.contains { !(cells[$0] ?? "").isEmpty }
        var articles: [String] = []
        if hasIncident {
            for (c, f) in CSVFormat.incidentFields { try check(c, FieldbookSchema.incident, f) }
            let amount = cells["fine_amount"] ?? "", unit = cells["fine_unit"] ?? ""
            if amount.isEmpty != unit.isEmpty {
                throw FieldbookError(.invalidInput, "\(name):\(line): column \(amount.isEmpty ? "fine_amount" : "fine_unit"): fine_amount and fine_unit go together: give both or neither")
            }
            for a in CSVFormat.list(cells["articles"] ?? "") {
                do { _ = try ChargeRef(a, field: "articles") } catch { throw fail("articles", error) }
                articles.append(a)
            }
            try check("source_outlet", FieldbookSchema.source, "outlet")
            try check("source_url", FieldbookSchema.source, "url")
            try check("source_date", FieldbookSchema.source, "published")
            try check("reliability", FieldbookSchema.source, "reliability")
        }
        return CSVRow(line: line, cells: cells, aliases: aliases, articles: articles, hasIncident: hasIncident)
    }

    func importRows(_ w: ReplicaWriter, _ rows: [CSVRow], region: String, name: String) throws -> ImportReport {
        var report = ImportReport()
        report.rows = rows.count
        // Every spelling known so far → the persons who bear it (persons already in the replica,
        // then those this file adds): namesakes are several.
        var byKey: [String: [String]] = [:]
        func remember(_ spelling: String, _ id: String) {
            let k = CSVFormat.nameKey(spelling)
            if !(byKey[k]?.contains(id) ?? false) { byKey[k, default: []].append(id) }
        }
        for r in try Row.fetchAll(w.db, sql: "SELECT id, name FROM person ORDER BY id") { remember(r["name"], r["id"]) }
        for r in try Row.fetchAll(w.db, sql: "SELECT person_id, name FROM alias ORDER BY id") { remember(r["name"], r["person_id"]) }
        var refLines: [String: Int] = [:]
        var matched = Set<String>()
        for row in rows {
            let c = row.cells
            if let ref = c["ref"], !ref.isEmpty {
                if let first = refLines[ref] {
                    throw FieldbookError(.invalidInput, "\(name):\(row.line): column ref: \"\(ref)\" is already used on line \(first)")
                }
                refLines[ref] = row.line
                if try incidentID(ref: ref, w.db) != nil {
                    report.incidentsUnchanged += 1
                    continue
                }
            }
            let spellings = [c["person_name"]!] + row.aliases
            let personID: String
            // Joined only to a person of the same name (or alias) whose other facts agree; a
            // namesake born in other years, or of the other sex, is another person (shown by
            // `fieldbook persons duplicates`).
            var namesakes: [String] = []
            for s in spellings { for id in byKey[CSVFormat.nameKey(s)] ?? [] where !namesakes.contains(id) { namesakes.append(id) } }
            var existing: String? = nil
            var whyNot: [String] = []
            for id in namesakes {
                if let why = try disagreement(w, id: id, row: row) { whyNot.append(why) } else {
                    existing = id
                    break
                }
            }
            if existing == nil && !whyNot.isEmpty {
                report.warnings.append("\(name):\(row.line): \"\(c["person_name"]!)\" has the name of a person already recorded, but \(whyNot.joined(separator: "; ")): recorded as another person (`fieldbook persons duplicates` shows the pair)")
            }
            if let existing {
                personID = existing
                if !matched.contains(existing) { report.personsMatched += 1 }
                report.aliasesAdded += try mergePerson(w, id: existing, row: row, name: name, warnings: &report.warnings)
            } else {
                var fields = ["name": c["person_name"]!]
                for (col, f) in CSVFormat.personFields where !(c[col] ?? "").isEmpty { fields[f] = c[col]! }
                let distinct = uniqueSpellings(row.aliases, excluding: [c["person_name"]!])
                // Derived ids: the same file imported on another laptop makes the same records.
                personID = try addPerson(w, fields: fields, aliases: distinct, region: region,
                                         seed: "\(region)|\(CSVFormat.nameKey(c["person_name"]!))|\(c["person_born"] ?? "")")
                report.personsCreated += 1
                report.aliasesAdded += distinct.count
                matched.insert(personID)
            }
            for s in spellings { remember(s, personID) }
            matched.insert(personID)
            guard row.hasIncident else { continue }
            var fields: [String: String] = [:]
            for (col, f) in CSVFormat.incidentFields where !(c[col] ?? "").isEmpty { fields[f] = c[col]! }
            let source = SourceInput(outlet: c["source_outlet"], url: c["source_url"], published: c["source_date"], reliability: c["reliability"])
            do {
                _ = try addIncident(w, personID: personID, fields: fields, articles: row.articles,
                                    sources: source.isEmpty ? [] : [.init(outlet: c["source_outlet"].flatMap { $0.isEmpty ? nil : $0 },
                                                                          url: c["source_url"].flatMap { $0.isEmpty ? nil : $0 },
                                                                          published: c["source_date"].flatMap { $0.isEmpty ? nil : $0 },
                                                                          reliability: c["reliability"].flatMap { $0.isEmpty ? nil : $0 })],
                                    region: nil,
                                    seed: (c["ref"] ?? "").isEmpty
                                        ? "\(region)|\(personID)|" + CSVFormat.columns.map { c[$0] ?? "" }.joined(separator: "\u{1F}")
                                        : "\(region)|ref|\(c["ref"]!)")
            } catch {
                let e = FieldbookError.from(error)
                throw FieldbookError(e.kind, "\(name):\(row.line): \(e.message)")
            }
            report.incidentsCreated += 1
        }
        return report
    }

    /// Why the row's person is not the recorded person `id` (birth dates that do not overlap,
    /// another sex), or nil when nothing known tells them apart.
    func disagreement(_ w: ReplicaWriter, id: String, row: CSVRow) throws -> String? {
        guard let person = try w.values("person", id: id) else { return "it is not on this replica" }
        if let a = row.cells["person_born"], !a.isEmpty, let b = person.text("born"), !b.isEmpty,
           let x = try? FuzzyDate(a, field: "person_born"), let y = try? FuzzyDate(b, field: "born"),
           x.latest < y.earliest || y.latest < x.earliest {
            return "born \(a), not \(b)"
        }
        if let a = row.cells["person_sex"], !a.isEmpty, let b = person.text("sex"), !b.isEmpty, a != b {
            return "of sex \(a), not \(b)"
        }
        return nil
    }

    /// Adds the row's spellings as aliases and fills the person's empty fields; returns the aliases added.
    func mergePerson(_ w: ReplicaWriter, id: String, row: CSVRow, name: String, warnings: inout [String]) throws -> Int {
        guard let person = try w.values("person", id: id) else { return 0 }
        let known = try String.fetchAll(w.db, sql: "SELECT name FROM alias WHERE person_id = ?", arguments: [id]) + [person.text("name") ?? ""]
        let new = uniqueSpellings([row.cells["person_name"]!] + row.aliases, excluding: known)
        for a in new { try addAlias(w, personID: id, name: a, region: person.text("region") ?? region, derived: true) }
        var fill: [String: Value] = [:]
        for (col, f) in CSVFormat.personFields {
            let v = row.cells[col] ?? ""
            guard !v.isEmpty else { continue }
            let current = person.text(f) ?? ""
            if current.isEmpty { fill[f] = .text(v) }
            else if current != v {
                warnings.append("\(name):\(row.line): column \(col): \"\(v)\" differs from \"\(current)\" already recorded for \(person.text("name") ?? id); kept \"\(current)\"")
            }
        }
        if !fill.isEmpty { try w.update("person", id: id, values: fill) }
        return new.count
    }

    func uniqueSpellings(_ names: [String], excluding: [String]) -> [String] {
        var seen = Set(excluding.map(CSVFormat.nameKey))
        return names.filter { seen.insert(CSVFormat.nameKey($0)).inserted }
    }
}
