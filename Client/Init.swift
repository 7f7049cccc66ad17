import ArgumentParser
import FieldbookKit
import ReplicaStore
import SyncClient

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a new replica with a new site id, encrypted under a passphrase (asked twice on a terminal; FIELDBOOK_PASSPHRASE or --passphrase-file in scripts).")

    @OptionGroup var replica: ReplicaOptions
    @Option(help: "The region (regional team) this replica records for, e.g. almaty.") var region: String
    @Option(help: "A name for this device, shown in history.") var device: String?
    @Flag(help: "A plain, unencrypted SQLite file: for demos and benchmarks only.") var unencrypted = false

    func run() throws {
        try FieldbookCLI.run {
            let protection: ReplicaProtection = unencrypted
                ? .none : .passphrase(try Passphrase.new(file: replica.passphraseFile, what: "passphrase"), cost: try Passphrase.cost())
            let store = try FieldbookStore.create(path: replica.path, region: region, device: device, protection: protection)
            // The device's key pairs (sealed sync), kept only inside this replica.
            _ = try KeyStore.deviceKeys(store.replica)
            print("created \(replica.path): region \(store.region), site \(store.replica.info.site)\(unencrypted ? " (NOT encrypted)" : ", encrypted")")
        }
    }
}
