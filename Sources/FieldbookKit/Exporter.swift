import CSV
import FieldbookModel
import Foundation

/// The JSON export: every person with aliases, incidents, charges and sources.
public struct JSONExport: Codable, Sendable {
    public var format = "fieldbook-export"
    public var version = 1
    public var region: String
    public var site: String
    public var persons: [PersonView]
    /// Records whose parent this replica does not hold (see `OrphanView`); kept, never dropped.
    public var orphans: [OrphanView] = []
}

extension FieldbookStore {
    /// Exports every record as "fieldbook CSV": one row per incident (a person without
    /// incidents gets one row with empty incident columns). Rows are ordered by content, not
    /// by id, so that importing an export into a fresh replica and exporting again gives
    /// identical bytes. Returns the bytes and warnings for data the format cannot hold.
    public func exportCSV() throws -> (data: Data, warnings: [String]) {
        var rows: [(key: [String], cells: [String])] = []
        var warnings: [String] = []
        for p in try persons() {
            let personCells: [String: String] = [
                "person_name": p.name, "person_aliases": p.aliases.joined(separator: "; "), "person_born": p.born ?? "",
                "person_sex": p.sex ?? "", "person_occupation": p.occupation ?? "", "person_affiliation": p.affiliation ?? "",
            ]
            if p.notes?.isEmpty == false {
                warnings.append("person \(p.id) (\(p.name)): notes are not part of the CSV format; use --format json to keep them")
            }
            if p.incidents.isEmpty {
                let cells = CSVFormat.columns.map { personCells[$0] ?? "" }
                rows.append((sortKey(cells, day: ""), cells))
            }
            for i in p.incidents {
                var c = personCells
                c["ref"] = i.ref ?? ""
                c["incident_kind"] = i.kind
                c["date"] = i.date
                c["date_text"] = i.date_text ?? ""
                c["place_region"] = i.place_region ?? ""
                c["settlement"] = i.settlement ?? ""
                c["facility"] = i.facility ?? ""
                c["authority"] = i.authority ?? ""
                c["articles"] = i.charges.joined(separator: "; ")
                c["sentence_kind"] = i.sentence_kind ?? ""
                c["sentence_term"] = i.sentence_term ?? ""
                c["fine_amount"] = i.fine_amount ?? ""
                c["fine_unit"] = i.fine_unit ?? ""
                c["description"] = i.description ?? ""
                c["verification"] = i.verification ?? ""
                if let s = i.sources.first {
                    c["source_outlet"] = s.outlet ?? ""
                    c["source_url"] = s.url ?? ""
                    c["source_date"] = s.published ?? ""
                    c["reliability"] = s.reliability ?? ""
                }
                if i.sources.count > 1 {
                    warnings.append("incident \(i.id): \(i.sources.count) sources, CSV holds one per incident; use --format json to keep all")
                }
                let cells = CSVFormat.columns.map { c[$0] ?? "" }
                let day = (try? FuzzyDate(i.date)).map { String(format: "%08d", $0.earliest + 1_000_000) } ?? ""
                rows.append((sortKey(cells, day: day), cells))
            }
        }
        for o in try orphans() {
            warnings.append("\(o.table) \(o.id) belongs to \(o.parent_table) \(o.parent_id), which \(o.parent_deleted ? "was deleted" : "this replica does not hold"): not in the CSV; see `fieldbook check`, or use --format json")
        }
        rows.sort { $0.key.lexicographicallyPrecedes($1.key) }

        let stream = OutputStream.toMemory()
        let writer = try CSVWriter(stream: stream, newline: .crlf)
        try writer.write(row: CSVFormat.columns)
        for r in rows { try writer.write(row: r.cells) }
        writer.stream.close()
        var data = (stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data) ?? Data()
        data.append(contentsOf: Array("\r\n".utf8))
        return (data, warnings)
    }

    /// Orders rows by person, then date, then every cell.
    private func sortKey(_ cells: [String], day: String) -> [String] {
        let idx = Dictionary(uniqueKeysWithValues: CSVFormat.columns.enumerated().map { ($1, $0) })
        let person = ["person_name", "person_born", "person_sex", "person_occupation", "person_affiliation", "person_aliases"].map { cells[idx[$0]!] }
        return person + [day] + cells
    }

    /// Exports every record as JSON (see README).
    public func exportJSON() throws -> Data {
        let export = JSONExport(region: region, site: replica.info.site.description, persons: try persons(), orphans: try orphans())
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try e.encode(export)
    }
}
