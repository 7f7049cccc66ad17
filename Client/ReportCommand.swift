import ArgumentParser
import FieldbookKit
import Foundation

/// `fieldbook report …`: the lists and counts coordinators publish.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Lists and counts to publish: who is deprived of liberty, incidents and persons by region, article, kind, year or month.",
        subcommands: [Prisoners.self, Counts.self])

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, csv, json, html }

    struct Output: ParsableArguments {
        @Option(help: "table (default), csv, json or html (one self-contained page with bar charts).") var format: Format = .table
        @Option(help: "Write to this file instead of standard output.") var out: String?

        func write(_ doc: ReportDocument, json: some Encodable) throws {
            let data: Data
            switch format {
            case .table:
                var text = doc.title + "\n" + doc.notes.joined(separator: "\n") + "\n"
                for s in doc.sections {
                    text += "\n" + s.title + "\n"
                    if s.rows.isEmpty { text += s.empty + "\n"; continue }
                    text += Table(header: s.columns, rows: s.rows.map { $0.map { cell($0, max: 70) } }).render() + "\n"
                }
                data = Data(text.utf8)
            case .csv: data = try doc.csv()
            case .json:
                let e = JSONEncoder()
                e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                data = try e.encode(json) + Data("\n".utf8)
            case .html: data = Data(HTMLReport.render(doc).utf8)
            }
            if let out {
                do { try PrivateFile.write(data, to: out) } catch {
                    throw FieldbookError(.failure, "--out \(out): \(error)")
                }
            } else {
                FileHandle.standardOutput.write(data)
            }
        }
    }

    struct Prisoners: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Persons deprived of liberty on a date, with articles, sentence, facility and since when; restricted freedom listed apart.",
            discussion: "Derived from each person's incidents (persons merged as one); uncertain dates are flagged, never resolved silently. docs/REPORTS.md gives the rules.")
        @OptionGroup var replica: ReplicaOptions
        @Option(help: "The day of the list, YYYY-MM-DD (default: today, UTC).") var asOf: String?
        @Option(help: "Only persons of this region.") var region: String?
        @OptionGroup var output: Output

        func run() throws {
            try FieldbookCLI.run {
                let report = try replica.open().prisonerReport(asOf: asOf, region: region)
                try output.write(report.document, json: report)
            }
        }
    }

    struct Counts: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Counts of incidents and of distinct persons (after merges) by region, article, kind, year or month.")
        @OptionGroup var replica: ReplicaOptions
        @Option(help: "region, article, kind, year or month.") var by: CountReport.Dimension
        @Option(help: "Only incidents that may fall on or after this date (EDTF).") var from: String?
        @Option(help: "Only incidents that may fall on or before this date (EDTF).") var to: String?
        @Option(help: "Only incidents of this region.") var region: String?
        @OptionGroup var output: Output

        func run() throws {
            try FieldbookCLI.run {
                let report = try replica.open().countReport(by: by, from: from, to: to, region: region)
                try output.write(report.document, json: report)
            }
        }
    }
}

extension CountReport.Dimension: ExpressibleByArgument {}
