import FieldbookModel
import ArgumentParser
import FieldbookKit
import Foundation
import Logging
import ReplicaStore
import SealedSync
import SyncClient

/// `fieldbook bundle export|import`: changes carried on a USB stick when the network is down.
struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle", abstract: "Offline bundles: pending changes, sealed and signed, in a file to carry when the network is down.",
        subcommands: [Export.self, Import.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the changes pending for a remote to a file (sealed values, signed by this device, no token inside).")
        @OptionGroup var replica: ReplicaOptions
        @Option(help: "The file to write (refused if it exists).") var out: String
        @Option(help: "The remote the changes are pending for (default: the only one).") var remote: String?
        @Flag(help: "Every change of the remote's regions, not only those pending (when the server may lack earlier ones).") var all = false

        func run() throws {
            try SyncCLI.run {
                let r = try replica.open().replica
                let target = try Remotes.pick(r, remote)
                guard !FileManager.default.fileExists(atPath: out) else { throw SyncClientError(.invalidInput, "\(out) exists already; choose another file") }
                let (bytes, n) = try Bundles.export(r, remote: target, all: all)
                do { try PrivateFile.write(Data(bytes), to: out, existing: .refuse) } catch { throw SyncClientError(.local, "\(error)") }
                print("wrote \(n) change\(n == 1 ? "" : "s") for \(target.name) to \(out)")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply a bundle to this replica (its values open with this replica's keys; the rest is kept aside). Applying it twice changes nothing.")
        @OptionGroup var replica: ReplicaOptions
        @Argument(help: "The bundle file.") var file: String

        func run() throws {
            try SyncCLI.run {
                let r = try replica.open().replica
                guard let data = FileManager.default.contents(atPath: file) else { throw SyncClientError(.invalidInput, "cannot read \(file)") }
                var logger = Logger(label: "fieldbook")
                logger.logLevel = .error
                let (bundle, report) = try Bundles.importBundle([UInt8](data), into: r, logger: logger)
                print("bundle from \(Terminal.safe(bundle.device)): applied \(report.applied), ignored \(report.ignored)\(report.setAside == 0 ? "" : ", \(report.setAside) kept aside (see `fieldbook check`)")")
            }
        }
    }
}
