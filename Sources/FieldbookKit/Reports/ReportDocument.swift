import CSV
import Foundation

/// A report as tables and bar charts, whatever it reports: the terminal, CSV and HTML forms
/// are made from this (JSON is the report's own structure).
public struct ReportDocument: Sendable, Equatable {
    public struct Section: Sendable, Equatable {
        public var title: String
        public var columns: [String]
        public var rows: [[String]]
        /// Bars to draw: a label and a value each (and a second value for a second series).
        public var chart: Chart?
        public var empty: String
        /// Columns of counts (right-aligned in HTML).
        public var numeric: Set<Int> = []
    }

    public struct Chart: Sendable, Equatable {
        public var title: String
        public var series: [String]
        public var bars: [(label: String, values: [Int])]

        public static func == (a: Chart, b: Chart) -> Bool {
            a.title == b.title && a.series == b.series && a.bars.map(\.label) == b.bars.map(\.label) && a.bars.map(\.values) == b.bars.map(\.values)
        }
    }

    public var title: String
    /// Lines under the title: the date, the filters, how to read it.
    public var notes: [String]
    public var sections: [Section]
    /// The one table CSV carries (a report's rows with a column saying which list each is on).
    public var csvColumns: [String]
    public var csvRows: [[String]]

    /// CSV (RFC 4180, CRLF). A cell that a spreadsheet would run as a formula (`=`, `+`, `-`,
    /// `@`, tab or carriage return first) is written with a leading apostrophe: names and
    /// descriptions come from the field, and a report is opened by people who trust it.
    public func csv() throws -> Data {
        let stream = OutputStream(toMemory: ())
        stream.open()
        let writer = try CSVWriter(stream: stream, newline: .crlf)
        try writer.write(row: csvColumns)
        for r in csvRows { try writer.write(row: r.map(Self.defused)) }
        writer.stream.close()
        let data = stream.property(forKey: .dataWrittenToMemoryStreamKey) as? Data ?? Data()
        return data.isEmpty || data.last == 0x0A ? data : data + Data("\r\n".utf8)
    }

    static func defused(_ cell: String) -> String {
        guard let f = cell.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(f) else { return cell }
        return "'" + cell
    }
}

extension PrisonerReport {
    static let columns = ["person_id", "name", "status", "since", "articles", "sentence", "facility", "term_ends", "region", "aliases", "flags"]

    static func cells(_ e: PrisonerEntry) -> [String] {
        [e.person_id, e.name, e.status, e.since, e.articles.joined(separator: "; "), e.sentence ?? "", e.facility ?? "",
         e.term_ends ?? "", e.region, e.aliases.joined(separator: "; "), e.flags.joined(separator: "; ")]
    }

    public var document: ReportDocument {
        func section(_ title: String, _ entries: [PrisonerEntry], empty: String, chart: Bool) -> ReportDocument.Section {
            var byArticle: [String: Int] = [:]
            for e in entries { for a in (e.articles.isEmpty ? ["(no charge recorded)"] : e.articles) { byArticle[a, default: 0] += 1 } }
            let bars = byArticle.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { (label: $0.key, values: [$0.value]) }
            return ReportDocument.Section(
                title: "\(title) (\(entries.count))", columns: ["Name", "Status", "Since", "Articles", "Sentence", "Facility", "Term ends", "Region", "Notes"],
                rows: entries.map { [$0.name, $0.status, $0.since, $0.articles.joined(separator: "; "), $0.sentence ?? "", $0.facility ?? "",
                                     $0.term_ends ?? "", $0.region, $0.flags.joined(separator: "; ")] },
                chart: chart && !bars.isEmpty ? ReportDocument.Chart(title: "\(title) by article", series: ["persons"], bars: bars) : nil,
                empty: empty)
        }
        let all = deprived_of_liberty + restricted_freedom + to_check
        return ReportDocument(
            title: "Persons deprived of liberty on \(as_of)",
            notes: ["Derived from each person's recorded incidents (persons merged as one). Uncertain dates are flagged under Notes, never resolved silently.",
                    "\(deprived_of_liberty.count) deprived of liberty, \(restricted_freedom.count) under restricted freedom, \(to_check.count) to check."],
            sections: [section("Deprived of liberty", deprived_of_liberty, empty: "No one recorded as deprived of liberty on this date.", chart: true),
                       section("Restricted freedom", restricted_freedom, empty: "No one recorded under restricted freedom on this date.", chart: false),
                       section("To check: the records leave it open", to_check, empty: "Nothing to check.", chart: false)],
            csvColumns: ["list"] + Self.columns, csvRows: all.map { [$0.list] + Self.cells($0) })
    }
}

extension CountReport {
    public var document: ReportDocument {
        let range = [from.map { "from \($0)" }, to.map { "to \($0)" }].compactMap { $0 }.joined(separator: " ")
        return ReportDocument(
            title: "Incidents and persons by \(by.rawValue)" + (range.isEmpty ? "" : ", \(range)"),
            notes: ["\(total_incidents) incidents concerning \(total_persons) persons (persons merged as one; an incident with several charges counts under each article)."],
            sections: [ReportDocument.Section(
                title: "By \(by.rawValue)", columns: [by.rawValue.capitalized, "Incidents", "Persons"],
                rows: rows.map { [$0.key, String($0.incidents), String($0.persons)] } + [["Total", String(total_incidents), String(total_persons)]],
                chart: rows.isEmpty ? nil : ReportDocument.Chart(title: "Incidents and persons by \(by.rawValue)", series: ["incidents", "persons"],
                                                                  bars: rows.map { (label: $0.key, values: [$0.incidents, $0.persons]) }),
                empty: "No incident in this range.", numeric: [1, 2])],
            csvColumns: [by.rawValue, "incidents", "persons"], csvRows: rows.map { [$0.key, String($0.incidents), String($0.persons)] })
    }
}
