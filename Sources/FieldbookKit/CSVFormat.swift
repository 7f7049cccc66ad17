import Foundation

/// The "fieldbook CSV" format (../shared/fixtures/README.md): UTF-8, RFC 4180 quoting, CRLF
/// records, a header row, 25 fields per record; one row per incident, person fields repeated.
/// A row with every incident and source column empty records a person without incidents.
public enum CSVFormat {
    public static let columns = [
        "ref", "person_name", "person_aliases", "person_born", "person_sex", "person_occupation", "person_affiliation",
        "incident_kind", "date", "date_text", "place_region", "settlement", "facility", "authority", "articles",
        "sentence_kind", "sentence_term", "fine_amount", "fine_unit", "description", "source_outlet", "source_url",
        "source_date", "reliability", "verification",
    ]

    /// Person columns → person fields.
    static let personFields: [(column: String, field: String)] = [
        ("person_born", "born"), ("person_sex", "sex"), ("person_occupation", "occupation"),
        ("person_affiliation", "affiliation"),
    ]

    /// Incident columns → incident fields.
    static let incidentFields: [(column: String, field: String)] = [
        ("incident_kind", "kind"), ("date", "date"), ("date_text", "date_text"), ("place_region", "place_region"),
        ("settlement", "settlement"), ("facility", "facility"), ("authority", "authority"),
        ("sentence_kind", "sentence_kind"), ("sentence_term", "sentence_term"), ("fine_amount", "fine_amount"),
        ("fine_unit", "fine_unit"), ("description", "description"), ("verification", "verification"), ("ref", "ref"),
    ]

    static let sourceColumns = ["source_outlet", "source_url", "source_date", "reliability"]

    /// Splits a `; `-separated list, dropping empty items.
    static func list(_ s: String) -> [String] {
        s.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The key under which two spellings of a name are the same: Unicode-normalised,
    /// case-folded, with runs of white space collapsed.
    static func nameKey(_ s: String) -> String {
        s.precomposedStringWithCanonicalMapping.lowercased()
            .split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }
}
