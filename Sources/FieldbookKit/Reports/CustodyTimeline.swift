import FieldbookModel

/// Where one person stood on a date, read from their incidents: deprived of liberty (and how,
/// since when, under which articles and sentence, where), under restricted freedom, or neither.
/// A pure function of the incidents and the date; `PrisonerReport` runs it for every person.
///
/// Dates are EDTF, so an incident may be certainly before the date (its latest day is on or
/// before it), certainly after, or either. The rules (docs/REPORTS.md):
/// - A detention, pre-trial custody, house arrest, administrative arrest, psychiatric
///   confinement, or a custodial sentence (imprisonment, compulsory treatment, administrative
///   arrest) starts custody if it may have happened by the date — flagged when it may not.
/// - A release, a death in custody, or a non-custodial sentence ends custody only when it
///   certainly happened by the date; one that may fall either side is flagged, and the person
///   stays listed. A non-custodial sentence followed by a recorded release ends custody at the release.
/// - A term ends custody at its start plus the term, unless a release is recorded later (then
///   the record wins, flagged); a term that may end either side of the date is flagged; a term
///   over with no release recorded puts the person on the "to check" list, never silently off it.
/// - A transfer, parole denial or solitary confinement with no custody recorded before it
///   shows custody all the same, from that date at least (flagged).
public enum CustodyTimeline {
    public enum Standing: String, Codable, Sendable {
        case deprivedOfLiberty = "deprived_of_liberty"
        case restrictedFreedom = "restricted_freedom"
        /// The records leave it open (a term over with no release recorded).
        case toCheck = "to_check"
    }

    public struct Finding: Sendable, Equatable {
        public var standing: Standing
        /// detained, pre-trial custody, house arrest, administrative arrest, imprisoned,
        /// psychiatric confinement, restricted freedom.
        public var status: String
        /// The date (as recorded) the standing began, and its first possible day.
        public var since: String
        public var sinceDay: DayNumber
        public var articles: [String]
        /// The latest sentence recorded by the date: kind and term (`imprisonment P5Y`).
        public var sentence: String?
        public var facility: String?
        /// When the recorded term ends, as a day or a range of days (`2025-10-01/2025-10-31`).
        public var termEnds: String?
        /// Everything uncertain or inferred, in words.
        public var flags: [String]
    }

    private static let starts: [String: String] = [
        "detention": "detained", "pretrial_custody": "pre-trial custody", "house_arrest": "house arrest",
        "administrative_arrest": "administrative arrest", "psychiatric_confinement": "psychiatric confinement",
    ]
    private static let custodial: [String: String] = [
        "imprisonment": "imprisoned", "compulsory_treatment": "psychiatric confinement", "administrative_arrest": "administrative arrest",
    ]
    private static let sentencing: Set<String> = ["verdict", "appeal_decision", "sentence_change"]
    private static let showsCustody: Set<String> = ["transfer", "parole_denied", "solitary_confinement"]

    struct Dated {
        let incident: IncidentView
        let date: FuzzyDate
    }

    struct Custody {
        var status: String
        var since: FuzzyDate
        var facility: String?
        var term: ISOTerm?
        var flags: [String] = []
    }

    struct Restriction {
        var since: FuzzyDate
        var term: ISOTerm?
    }

    /// The person's standing on `day` (nil when neither deprived of liberty nor restricted).
    public static func standing(of incidents: [IncidentView], on day: DayNumber) -> Finding? {
        var dated: [Dated] = []
        var undated: [String] = []
        for i in incidents {
            if let d = try? FuzzyDate(i.date) { dated.append(Dated(incident: i, date: d)) } else { undated.append(i.id) }
        }
        dated.sort { ($0.date.earliest, $0.date.latest, $0.incident.id) < ($1.date.earliest, $1.date.latest, $1.incident.id) }
        let asOf = FuzzyDate.isoString(day)
        var custody: Custody? = nil
        var restriction: Restriction? = nil
        var pendingEnd: Dated? = nil  // a non-custodial sentence while in custody, waiting for a release
        var articles: [String] = []
        var sentence: String? = nil
        var flags: [String] = undated.map { "incident \($0) has a date that cannot be read; left out" }
        var ended: Dated? = nil       // the event that ended the last custody, if the person is out
        for e in dated where e.date.earliest <= day {
            let i = e.incident
            let certain = e.date.latest <= day
            for c in i.charges where !articles.contains(c) { articles.append(c) }
            if let k = i.sentence_kind { sentence = [label(k), i.sentence_term].compactMap { $0 }.joined(separator: " ") }
            let happened = certain ? "" : " (dated \(i.date): it may fall after \(asOf))"
            if let s = starts[i.kind] {
                if custody == nil {
                    custody = Custody(status: s, since: e.date, facility: i.facility)
                    if !certain { custody!.flags.append("\(label(i.kind)) dated \(i.date) may fall after \(asOf)") }
                } else {
                    if i.kind != "detention" { custody!.status = s }
                    // A day recorded within a vaguer start date says when it began more exactly.
                    let since = custody!.since
                    if e.date.earliest >= since.earliest, e.date.latest <= since.latest, e.date.latest - e.date.earliest < since.latest - since.earliest {
                        custody!.since = e.date
                    }
                }
                if i.kind == "administrative_arrest", let t = i.sentence_term.flatMap(ISOTerm.init) { custody!.term = t }
            } else if sentencing.contains(i.kind), let kind = i.sentence_kind {
                let term = i.sentence_term.flatMap(ISOTerm.init)
                if let s = custodial[kind] {
                    if custody == nil {
                        custody = Custody(status: s, since: e.date, facility: i.facility)
                        if i.kind == "verdict" { custody!.flags.append("custody counted from the verdict of \(i.date): no earlier detention recorded") }
                        if !certain { custody!.flags.append("\(label(i.kind)) dated \(i.date) may fall after \(asOf)") }
                    }
                    custody!.status = s
                    if let term { custody!.term = term } else if custody!.term == nil {
                        custody!.flags.append("\(label(i.kind)) of \(i.date): \(kind) with no term recorded")
                    }
                    pendingEnd = nil
                } else {
                    if kind == "restricted_freedom" {
                        // An appeal or a change that keeps restricted freedom keeps its start.
                        if restriction == nil { restriction = Restriction(since: e.date, term: term) } else if let term { restriction!.term = term }
                    } else if kind != "fine" {
                        restriction = nil
                    }
                    if custody != nil {
                        if certain {
                            // Custody ends here unless a release follows (then at the release).
                            if pendingEnd == nil { pendingEnd = e }
                        } else {
                            custody!.flags.append("a \(kind.replacingOccurrences(of: "_", with: " ")) sentence\(happened) may have ended custody")
                        }
                    }
                }
            } else if i.kind == "release" || i.kind == "death_in_custody" {
                if certain {
                    if custody != nil { ended = e }
                    custody = nil
                    pendingEnd = nil
                    if i.kind == "death_in_custody" { return nil }
                } else if custody != nil {
                    custody!.flags.append("\(label(i.kind))\(happened)")
                }
            } else if showsCustody.contains(i.kind) && custody == nil && ended.map({ $0.date.latest < e.date.earliest }) ?? true {
                custody = Custody(status: "imprisoned", since: e.date, facility: i.facility)
                custody!.flags.append("in custody at least since the \(label(i.kind)) of \(i.date); no detention or verdict recorded")
            }
            if custody != nil, let f = i.facility, starts[i.kind] != nil || sentencing.contains(i.kind) || showsCustody.contains(i.kind) {
                custody!.facility = f
            }
        }
        // A non-custodial sentence with no release after it: custody ended with the sentence.
        if let p = pendingEnd, custody != nil {
            let release = dated.first { $0.date.earliest >= p.date.earliest && $0.incident.kind == "release" && $0.incident.id != p.incident.id }
            if let release {
                if release.date.latest <= day { custody = nil } else {
                    custody!.flags.append("\(label(p.incident.kind)) of \(p.incident.date) changed the sentence to \(p.incident.sentence_kind ?? "a non-custodial one"); released \(release.incident.date)")
                }
            } else {
                custody = nil
                flags.append("custody taken to end with the \(label(p.incident.kind)) of \(p.incident.date) (\(label(p.incident.sentence_kind ?? ""))); no release recorded")
            }
        }
        if var c = custody {
            let later = dated.first { $0.date.earliest > day && ($0.incident.kind == "release" || $0.incident.kind == "death_in_custody") }
            var standing = Standing.deprivedOfLiberty
            var termEnds: String? = nil
            if let t = c.term {
                let (lo, hi) = (t.added(to: c.since.earliest), t.added(to: c.since.latest))
                termEnds = lo == hi ? FuzzyDate.isoString(lo) : "\(FuzzyDate.isoString(lo))/\(FuzzyDate.isoString(hi))"
                if let later, hi < day {
                    c.flags.append("the recorded term (\(t.text) from \(c.since.text)) ended by \(FuzzyDate.isoString(hi)), but a \(label(later.incident.kind)) is recorded on \(later.incident.date)")
                } else if later == nil, hi < day {
                    standing = .toCheck
                    c.flags.append("the recorded term (\(t.text) from \(c.since.text)) ended by \(FuzzyDate.isoString(hi)) and no release is recorded")
                } else if later == nil, lo < day {
                    c.flags.append("the term may have ended already (between \(FuzzyDate.isoString(lo)) and \(FuzzyDate.isoString(hi)))")
                }
            } else if c.status == "detained", !dated.contains(where: { $0.date.earliest > c.since.latest && $0.date.earliest <= day }) {
                c.flags.append("no custody, verdict or release recorded between the detention of \(c.since.text) and \(asOf)")
            }
            if c.since.approximate || c.since.uncertain || c.since.earliest != c.since.latest {
                c.flags.append("start date \(c.since.text) is not a single certain day")
            }
            return Finding(standing: standing, status: c.status, since: c.since.text, sinceDay: c.since.earliest, articles: articles,
                           sentence: sentence, facility: c.facility, termEnds: termEnds, flags: flags + c.flags)
        }
        if let r = restriction {
            var f = flags
            var termEnds: String? = nil
            if let t = r.term {
                let (lo, hi) = (t.added(to: r.since.earliest), t.added(to: r.since.latest))
                if hi < day { return nil }
                termEnds = lo == hi ? FuzzyDate.isoString(lo) : "\(FuzzyDate.isoString(lo))/\(FuzzyDate.isoString(hi))"
                if lo < day { f.append("the term may have ended already (between \(FuzzyDate.isoString(lo)) and \(FuzzyDate.isoString(hi)))") }
            } else {
                f.append("restricted freedom with no term recorded")
            }
            if r.since.approximate || r.since.uncertain || r.since.earliest != r.since.latest {
                f.append("start date \(r.since.text) is not a single certain day")
            }
            return Finding(standing: .restrictedFreedom, status: "restricted freedom", since: r.since.text, sinceDay: r.since.earliest,
                           articles: articles, sentence: sentence, facility: nil, termEnds: termEnds, flags: f)
        }
        return nil
    }

    static func label(_ kind: String) -> String { kind.replacingOccurrences(of: "_", with: " ") }
}

/// A sentence term that can be added to a day: years, months, weeks and days of an ISO 8601
/// duration (hours and smaller are dropped: terms are served in days).
struct ISOTerm: Sendable, Equatable {
    let text: String
    let years: Int, months: Int, days: Int

    init?(_ text: String) {
        guard (try? ISODuration(text)) != nil else { return nil }
        var (y, m, d) = (0, 0, 0)
        var digits = ""
        for ch in text.dropFirst() {
            if ch == "T" { break }
            if ch.isASCII && ch.isNumber { digits.append(ch); continue }
            let n = Int(digits) ?? 0
            digits = ""
            switch ch {
            case "Y": y = n
            case "M": m = n
            case "W": d += 7 * n
            case "D": d += n
            default: return nil
            }
        }
        (self.text, years, months, days) = (text, y, m, d)
    }

    /// `day` plus the term (a month added to the 31st ends on the month's last day).
    func added(to day: DayNumber) -> DayNumber {
        let iso = FuzzyDate.isoString(day)
        let parts = iso.split(separator: "-").map { Int($0)! }
        var (y, m) = (parts[0] + years, parts[1] + months)
        y += (m - 1) / 12
        m = (m - 1) % 12 + 1
        let d = min(parts[2], FuzzyDate.daysInMonth(year: y, month: m))
        return FuzzyDate.dayNumber(year: min(y, 9999), month: m, day: d) + days
    }
}
