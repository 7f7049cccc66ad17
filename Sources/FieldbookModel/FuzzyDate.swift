/// A calendar day as a count of days since 1970-01-01 (proleptic Gregorian), for sorting and filtering.
public typealias DayNumber = Int

/// An EDTF (ISO 8601-2) date of level 0, plus the `~` (approximate) and `?` (uncertain)
/// qualifiers and intervals `A/B`.
///
/// Accepted forms: `2020`, `2020-06`, `2020-06-22`, each optionally followed by `?`, `~` or `%`,
/// and intervals `A/B` whose ends are such dates (unqualified or qualified, of any precision),
/// or `..` / empty for an open end. The original text is kept; `earliest` and `latest` are the
/// first and last day the date may denote.
public struct FuzzyDate: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    public let earliest: DayNumber
    public let latest: DayNumber
    public let approximate: Bool
    public let uncertain: Bool

    public var description: String { text }

    /// Parses `text`; `field` names the field in the error.
    public init(_ text: String, field: String = "date") throws(ModelError) {
        self.text = text
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            let d = try FuzzyDate.parseSingle(Substring(text), field: field, whole: text)
            (earliest, latest, approximate, uncertain) = (d.first, d.last, d.approx, d.uncertain)
        case 2:
            let openStart = parts[0].isEmpty || parts[0] == ".."
            let openEnd = parts[1].isEmpty || parts[1] == ".."
            if openStart && openEnd {
                throw ModelError.invalid(field, text, "is an interval with no start and no end")
            }
            let a = openStart ? nil : try FuzzyDate.parseSingle(parts[0], field: field, whole: text)
            let b = openEnd ? nil : try FuzzyDate.parseSingle(parts[1], field: field, whole: text)
            let first = a?.first ?? FuzzyDate.minDay
            let last = b?.last ?? FuzzyDate.maxDay
            if let a, let b, a.first > b.last {
                throw ModelError.invalid(field, text, "is an interval that runs backwards (its start is after its end)")
            }
            earliest = first
            latest = last
            approximate = (a?.approx ?? false) || (b?.approx ?? false)
            uncertain = (a?.uncertain ?? false) || (b?.uncertain ?? false)
        default:
            throw ModelError.invalid(field, text, "is not an EDTF date (expected YYYY, YYYY-MM, YYYY-MM-DD, optionally with ~ or ?, or an interval A/B)")
        }
    }

    /// Day 0001-01-01 and 9999-12-31: the bounds of an open interval.
    public static let minDay = dayNumber(year: 1, month: 1, day: 1)
    public static let maxDay = dayNumber(year: 9999, month: 12, day: 31)

    private struct Single { var first: DayNumber; var last: DayNumber; var approx: Bool; var uncertain: Bool }

    private static func parseSingle(_ s: Substring, field: String, whole: String) throws(ModelError) -> Single {
        var body = s
        var approx = false
        var uncertain = false
        if let q = body.last, q == "~" || q == "?" || q == "%" {
            body = body.dropLast()
            approx = q != "?"
            uncertain = q != "~"
        }
        let bad = ModelError.invalid(field, whole, "is not an EDTF date (expected YYYY, YYYY-MM, YYYY-MM-DD, optionally with ~ or ?, or an interval A/B)")
        let comps = body.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...3).contains(comps.count) else { throw bad }
        let widths = [4, 2, 2]
        var nums: [Int] = []
        for (i, c) in comps.enumerated() {
            guard c.count == widths[i], c.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(c) else { throw bad }
            nums.append(n)
        }
        let year = nums[0]
        if year == 0 { throw ModelError.invalid(field, whole, "has year 0000, which is not a calendar year here") }
        if nums.count == 1 {
            return Single(first: dayNumber(year: year, month: 1, day: 1),
                          last: dayNumber(year: year, month: 12, day: 31), approx: approx, uncertain: uncertain)
        }
        let month = nums[1]
        guard (1...12).contains(month) else {
            throw ModelError.invalid(field, whole, "has month \(comps[1]); months run from 01 to 12")
        }
        let dim = daysInMonth(year: year, month: month)
        if nums.count == 2 {
            return Single(first: dayNumber(year: year, month: month, day: 1),
                          last: dayNumber(year: year, month: month, day: dim), approx: approx, uncertain: uncertain)
        }
        let day = nums[2]
        guard (1...dim).contains(day) else {
            throw ModelError.invalid(field, whole, "does not exist: \(String(format: "%04d-%02d", year, month)) has \(dim) days")
        }
        let d = dayNumber(year: year, month: month, day: day)
        return Single(first: d, last: d, approx: approx, uncertain: uncertain)
    }

    public static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    public static func dayNumber(year: Int, month: Int, day: Int) -> DayNumber {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// The civil date of a day number, as `YYYY-MM-DD`.
    public static func isoString(_ n: DayNumber) -> String {
        let z = n + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return String(format: "%04d-%02d-%02d", y, m, d)
    }
}
