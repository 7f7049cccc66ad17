import ArgumentParser
import CProcessHardening

@main
struct Fieldbook: AsyncParsableCommand {
    /// No core file, whatever the shell's limit: one would hold records, the data key and the
    /// passphrase in clear.
    static func main() async {
        _ = fieldbook_disable_core_dumps()
        await main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "fieldbook",
        abstract: "Record detentions and other incidents offline, in a local replica that syncs later.",
        discussion: """
            Exit codes: 0 ok, 64 usage error, 65 invalid data (nothing written), 66 no such record,
            67 replica missing or already present, 69 server unreachable, 70 failure, 74 replica damaged or tampered with,
            75 waiting for a coordinator's approval (sync), 77 refused by the server, 78 passphrase missing or wrong; 1 from `check`: something found.
            """,
        version: "0.1.0",
        subcommands: [Init.self, PersonCommand.self, IncidentCommand.self, List.self, Show.self, Edit.self, Delete.self, Restore.self,
                      History.self, Import.self, Export.self, Check.self, RemoteCommand.self, Sync.self, Status.self,
                      PassphraseCommand.self, Wipe.self, Encrypt.self, Decrypt.self, KeysCommand.self, BundleCommand.self, PersonsCommand.self, ReportCommand.self]
    )
}
