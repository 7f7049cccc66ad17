import ArgumentParser
import FieldbookKit
import Foundation

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a \"fieldbook CSV\" file in one transaction; a bad row names its line and column and nothing is imported.")

    @OptionGroup var replica: ReplicaOptions
    @Argument(help: "The CSV file.") var file: String
    @Option(help: "Owning region of the imported records (default: the replica's).") var region: String?

    func run() throws {
        try FieldbookCLI.run {
            let report = try replica.open().importCSV(path: file, region: region)
            for w in report.warnings { warn(w) }
            print(report)
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Export every record as fieldbook CSV or JSON.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case csv, json }

    @OptionGroup var replica: ReplicaOptions
    @Option(help: "csv or json.") var format: Format
    @Option(help: "Write to this file instead of standard output.") var out: String?

    func run() throws {
        try FieldbookCLI.run {
            let store = try replica.open()
            let data: Data
            switch format {
            case .csv:
                let (d, warnings) = try store.exportCSV()
                for w in warnings { warn(w) }
                data = d
            case .json:
                data = try store.exportJSON() + Data("\n".utf8)
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
}
