import FieldbookModel
import Foundation

/// One person on a prisoners' list.
public struct PrisonerEntry: Codable, Sendable, Equatable {
    public var person_id: String
    public var name: String
    public var aliases: [String]
    public var region: String
    /// deprived_of_liberty, restricted_freedom or to_check (`CustodyTimeline.Standing`).
    public var list: String
    public var status: String
    public var since: String
    public var articles: [String]
    public var sentence: String?
    public var facility: String?
    public var term_ends: String?
    /// What is uncertain or inferred about this entry, in words.
    public var flags: [String]
}

/// `fieldbook report prisoners`: who was deprived of liberty on a date, who was under
/// restricted freedom (listed apart), and whose standing the records leave open.
public struct PrisonerReport: Codable, Sendable, Equatable {
    public var as_of: String
    public var deprived_of_liberty: [PrisonerEntry]
    public var restricted_freedom: [PrisonerEntry]
    public var to_check: [PrisonerEntry]
}

extension FieldbookStore {
    /// The prisoners' list on `asOf` (a day, `YYYY-MM-DD`; default today), over the persons as
    /// merged (`persons()`), optionally of one region.
    public func prisonerReport(asOf: String? = nil, region: String? = nil) throws -> PrisonerReport {
        let day = try Self.reportDay(asOf, option: "--as-of")
        try Self.checkRegionOption(region)
        var f = RecordFilter()
        f.region = region
        var report = PrisonerReport(as_of: FuzzyDate.isoString(day), deprived_of_liberty: [], restricted_freedom: [], to_check: [])
        for p in try persons(f) {
            guard let found = CustodyTimeline.standing(of: p.incidents, on: day) else { continue }
            let entry = PrisonerEntry(person_id: p.id, name: p.name, aliases: p.aliases, region: p.region, list: found.standing.rawValue,
                                      status: found.status, since: found.since, articles: found.articles, sentence: found.sentence,
                                      facility: found.facility, term_ends: found.termEnds, flags: found.flags)
            switch found.standing {
            case .deprivedOfLiberty: report.deprived_of_liberty.append(entry)
            case .restrictedFreedom: report.restricted_freedom.append(entry)
            case .toCheck: report.to_check.append(entry)
            }
        }
        let order = { (a: PrisonerEntry, b: PrisonerEntry) -> Bool in
            let (x, y) = ((try? FuzzyDate(a.since))?.earliest ?? 0, (try? FuzzyDate(b.since))?.earliest ?? 0)
            return (x, a.name, a.person_id) < (y, b.name, b.person_id)
        }
        report.deprived_of_liberty.sort(by: order)
        report.restricted_freedom.sort(by: order)
        report.to_check.sort(by: order)
        return report
    }

    /// A report's day: `YYYY-MM-DD` exactly, or today (UTC) when nil.
    static func reportDay(_ text: String?, option: String) throws -> DayNumber {
        guard let text else { return Int(Date().timeIntervalSince1970 / 86_400) }
        let date: FuzzyDate
        do { date = try FuzzyDate(text, field: option) } catch { throw FieldbookError(.invalidInput, error.description) }
        guard date.earliest == date.latest, !date.approximate, !date.uncertain else {
            throw FieldbookError(.invalidInput, "\(option) \(text): give one day, YYYY-MM-DD (the list is of one day)")
        }
        return date.earliest
    }
}
