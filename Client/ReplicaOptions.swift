import ArgumentParser
import FieldbookKit
import Foundation

/// `--db PATH`, shared by every command.
struct ReplicaOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The replica file (env FIELDBOOK_DB; default $XDG_DATA_HOME/fieldbook/replica.sqlite, else ~/.local/share/fieldbook/replica.sqlite).", valueName: "path"))
    var db: String?

    var path: String {
        if let db { return db }
        let env = ProcessInfo.processInfo.environment
        if let p = env["FIELDBOOK_DB"], !p.isEmpty { return p }
        if let x = env["XDG_DATA_HOME"], !x.isEmpty { return x + "/fieldbook/replica.sqlite" }
        return (env["HOME"] ?? NSHomeDirectory()) + "/.local/share/fieldbook/replica.sqlite"
    }

    func open() throws -> FieldbookStore { try FieldbookStore.open(path: path) }
}

enum FieldbookCLI {
    /// Runs a command body, printing errors to stderr with the documented exit codes.
    static func run(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as ExitCode {
            throw e
        } catch {
            let e = FieldbookError.from(error)
            FileHandle.standardError.write(Data("fieldbook: error: \(Terminal.safe(e.message))\n".utf8))
            throw ExitCode(exitCode(e.kind))
        }
    }

    static func exitCode(_ k: FieldbookError.Kind) -> Int32 {
        switch k {
        case .invalidInput: return 65
        case .notFound: return 66
        case .replica: return 67
        case .failure: return 70
        }
    }
}

func warn(_ s: String) {
    FileHandle.standardError.write(Data("fieldbook: warning: \(Terminal.safe(s))\n".utf8))
}
