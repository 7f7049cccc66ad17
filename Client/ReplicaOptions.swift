import FieldbookModel
import ArgumentParser
import FieldbookKit
import Foundation
import ReplicaStore

/// `--db PATH` and `--passphrase-file FILE`, shared by every command.
struct ReplicaOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The replica file (env FIELDBOOK_DB; default $XDG_DATA_HOME/fieldbook/replica.sqlite, else ~/.local/share/fieldbook/replica.sqlite).", valueName: "path"))
    var db: String?

    @Option(name: .long, help: ArgumentHelp("A file holding the replica's passphrase (env FIELDBOOK_PASSPHRASE_FILE; or FIELDBOOK_PASSPHRASE; else a prompt on a terminal).", valueName: "file"))
    var passphraseFile: String?

    var path: String {
        if let db { return db }
        let env = ProcessInfo.processInfo.environment
        if let p = env["FIELDBOOK_DB"], !p.isEmpty { return p }
        if let x = env["XDG_DATA_HOME"], !x.isEmpty { return x + "/fieldbook/replica.sqlite" }
        return (env["HOME"] ?? NSHomeDirectory()) + "/.local/share/fieldbook/replica.sqlite"
    }

    /// Opens the replica, asking for its passphrase when it is encrypted.
    func open() throws -> FieldbookStore {
        let encrypted = Replica.isEncrypted(path: path)
        return try FieldbookStore.open(path: path, passphrase: encrypted ? try Passphrase.current(file: passphraseFile, prompt: "Passphrase of \(path): ") : nil)
    }
}

/// Where passphrases come from: a file (`--passphrase-file`, `FIELDBOOK_PASSPHRASE_FILE`), the
/// environment (`FIELDBOOK_PASSPHRASE`), or a prompt without echo on a terminal — the habits of
/// restic and age. Nil when none is given and there is no terminal.
enum Passphrase {
    static func current(file: String?, prompt: String) throws -> String? {
        let env = ProcessInfo.processInfo.environment
        if let f = file ?? env["FIELDBOOK_PASSPHRASE_FILE"].flatMap({ $0.isEmpty ? nil : $0 }) { return try read(file: f) }
        if let p = env["FIELDBOOK_PASSPHRASE"], !p.isEmpty { return p }
        return ask(prompt)
    }

    /// The first line of `file` (a trailing newline is not part of the passphrase).
    static func read(file: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw FieldbookError(.invalidInput, "cannot read the passphrase file \(file)")
        }
        let line = String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        let p = line.hasSuffix("\r") ? String(line.dropLast()) : line
        guard !p.isEmpty else { throw FieldbookError(.invalidInput, "the passphrase file \(file) is empty") }
        return p
    }

    /// A prompt without echo, when standard input is a terminal.
    static func ask(_ prompt: String) -> String? {
        guard isatty(STDIN_FILENO) != 0, let p = getpass(prompt) else { return nil }
        let s = String(cString: p)
        return s.isEmpty ? nil : s
    }

    /// A new passphrase: from the file or environment, else asked twice on a terminal.
    static func new(file: String?, what: String) throws -> String {
        let env = ProcessInfo.processInfo.environment
        if let f = file { return try check(try read(file: f)) }
        if file == nil, what == "passphrase" {
            if let f = env["FIELDBOOK_PASSPHRASE_FILE"], !f.isEmpty { return try check(try read(file: f)) }
            if let p = env["FIELDBOOK_PASSPHRASE"], !p.isEmpty { return try check(p) }
        }
        guard let first = ask("New \(what): ") else {
            throw FieldbookError(.locked, "no \(what) given: set FIELDBOOK_PASSPHRASE or FIELDBOOK_PASSPHRASE_FILE, or run on a terminal")
        }
        guard ask("Repeat the \(what): ") == first else { throw FieldbookError(.invalidInput, "the two \(what)s differ") }
        return try check(first)
    }

    static func check(_ p: String) throws -> String {
        guard p.count >= 8 else { throw FieldbookError(.invalidInput, "a passphrase needs at least 8 characters (several words are best)") }
        return p
    }

    /// The scrypt cost for new key slots: the standard one, unless `FIELDBOOK_KDF_LOGN` lowers
    /// it (for tests, with `FIELDBOOK_TESTING_WEAK_KDF=1`; refused otherwise).
    static func cost() throws -> KeySlots.Cost { try KeySlots.Cost.fromEnvironment() }
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
        case .damaged: return 74
        case .locked: return 78
        }
    }
}

func warn(_ s: String) {
    FileHandle.standardError.write(Data("fieldbook: warning: \(Terminal.safe(s))\n".utf8))
}
