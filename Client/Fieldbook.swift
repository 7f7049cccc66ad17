import ArgumentParser

@main
struct Fieldbook: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fieldbook",
        abstract: "Record detentions and other incidents offline, in a local replica that syncs later.",
        discussion: """
            Exit codes: 0 ok, 64 usage error, 65 invalid data (nothing written), 66 no such record,
            67 replica missing or already present, 70 failure.
            """,
        version: "0.1.0",
        subcommands: [Init.self, PersonCommand.self, IncidentCommand.self, List.self, Show.self, Edit.self, Delete.self,
                      History.self, Import.self, Export.self]
    )
}
