import ArgumentParser
import FieldbookKit

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a new replica with a new site id.")

    @OptionGroup var replica: ReplicaOptions
    @Option(help: "The region (regional team) this replica records for, e.g. almaty.") var region: String
    @Option(help: "A name for this device, shown in history.") var device: String?

    func run() throws {
        try FieldbookCLI.run {
            let store = try FieldbookStore.create(path: replica.path, region: region, device: device)
            print("created \(replica.path): region \(store.region), site \(store.replica.info.site)")
        }
    }
}
