import FieldbookModel

/// `fieldbook report counts`: incidents and distinct persons (after merges) per region,
/// article, kind, year or month.
public struct CountReport: Codable, Sendable, Equatable {
    public enum Dimension: String, CaseIterable, Codable, Sendable { case region, article, kind, year, month }

    public struct Row: Codable, Sendable, Equatable {
        public var key: String
        public var incidents: Int
        public var persons: Int
    }

    public var by: Dimension
    public var from: String?
    public var to: String?
    public var rows: [Row]
    /// Every incident counted once and every person once, whatever the rows.
    public var total_incidents: Int
    public var total_persons: Int
}

extension FieldbookStore {
    /// Counts of the incidents whose dates may overlap [from, to] (EDTF; open when nil).
    /// An incident with several charges counts under each article; a date too coarse or too
    /// uncertain for a year or month is counted under a key that says so, never guessed.
    public func countReport(by: CountReport.Dimension, from: String? = nil, to: String? = nil, region: String? = nil) throws -> CountReport {
        func date(_ s: String?, _ option: String) throws -> FuzzyDate? {
            guard let s else { return nil }
            do { return try FuzzyDate(s, field: option) } catch { throw FieldbookError(.invalidInput, error.description) }
        }
        let (lo, hi) = (try date(from, "--from"), try date(to, "--to"))
        if let lo, let hi, lo.earliest > hi.latest { throw FieldbookError(.invalidInput, "--from \(lo.text) is after --to \(hi.text)") }
        try Self.checkRegionOption(region)
        var incidents: [String: Set<String>] = [:]
        var persons: [String: Set<String>] = [:]
        var allIncidents = Set<String>(), allPersons = Set<String>()
        for p in try self.persons() {
            for i in p.incidents {
                if let region, i.region != region { continue }
                guard let d = try? FuzzyDate(i.date) else { continue }
                if let lo, d.latest < lo.earliest { continue }
                if let hi, d.earliest > hi.latest { continue }
                allIncidents.insert(i.id)
                allPersons.insert(p.id)
                for key in Self.keys(i, d, by) {
                    incidents[key, default: []].insert(i.id)
                    persons[key, default: []].insert(p.id)
                }
            }
        }
        var rows = incidents.map { CountReport.Row(key: $0.key, incidents: $0.value.count, persons: persons[$0.key]!.count) }
        if by == .year || by == .month {
            rows.sort { $0.key < $1.key }
        } else {
            rows.sort { ($1.incidents, $0.key) < ($0.incidents, $1.key) }
        }
        return CountReport(by: by, from: lo?.text, to: hi?.text, rows: rows, total_incidents: allIncidents.count, total_persons: allPersons.count)
    }

    static func keys(_ i: IncidentView, _ d: FuzzyDate, _ by: CountReport.Dimension) -> [String] {
        let (a, b) = (FuzzyDate.isoString(d.earliest), FuzzyDate.isoString(d.latest))
        switch by {
        case .region: return [i.region]
        case .kind: return [i.kind]
        case .article: return i.charges.isEmpty ? ["(no charge)"] : i.charges
        case .year:
            return [a.prefix(4) == b.prefix(4) ? String(a.prefix(4)) : "\(a.prefix(4))–\(b.prefix(4)) (year uncertain)"]
        case .month:
            if a.prefix(7) == b.prefix(7) { return [String(a.prefix(7))] }
            if a.prefix(4) == b.prefix(4) { return ["\(a.prefix(4)) (month unknown)"] }
            return ["\(a.prefix(4))–\(b.prefix(4)) (year uncertain)"]
        }
    }
}
