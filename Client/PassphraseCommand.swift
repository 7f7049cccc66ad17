import ArgumentParser
import FieldbookKit
import Foundation
import ReplicaStore

struct PassphraseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passphrase", abstract: "Manage the passphrases of an encrypted replica (only its key slots are rewritten).",
        subcommands: [Change.self, Add.self, Remove.self])

    /// The replica must be encrypted; returns its current passphrase.
    static func current(_ replica: ReplicaOptions) throws -> String {
        guard FileManager.default.fileExists(atPath: replica.path) else { throw FieldbookError(.replica, "no replica at \(replica.path)") }
        guard Replica.isEncrypted(path: replica.path) else {
            throw FieldbookError(.invalidInput, "\(replica.path) is not encrypted; encrypt it first with `fieldbook encrypt`")
        }
        guard let p = try Passphrase.current(file: replica.passphraseFile, prompt: "Current passphrase of \(replica.path): ") else {
            throw FieldbookError(.locked, "give the current passphrase (FIELDBOOK_PASSPHRASE, FIELDBOOK_PASSPHRASE_FILE or --passphrase-file)")
        }
        // A duress passphrase does here what it does anywhere: the replica is replaced (as an
        // open replaces it), and the command goes on on the new one, as if nothing happened.
        // Any other passphrase leaves the file untouched until the command's own work.
        if try Replica.isDuress(path: replica.path, passphrase: p) { _ = try FieldbookStore.open(path: replica.path, passphrase: p) }
        return p
    }

    struct Change: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace the passphrase you give by a new one.")
        @OptionGroup var replica: ReplicaOptions
        @Option(help: "A file holding the new passphrase (else asked twice on a terminal).") var newPassphraseFile: String?

        func run() throws {
            try FieldbookCLI.run {
                let old = try PassphraseCommand.current(replica)
                let new = try Passphrase.new(file: newPassphraseFile, what: "new passphrase")
                let change = try Replica.changePassphrase(path: replica.path, old: old, new: new, cost: try Passphrase.cost())
                if change.costRaised {
                    print("passphrase changed; the key slots were below the standard cost and were made anew at it")
                    if change.droppedPassphrases + change.droppedDuress > 0 {
                        warn("\(change.droppedPassphrases) other passphrase(s) and \(change.droppedDuress) duress passphrase(s) were removed with the weak slots: add them again with `fieldbook passphrase add`")
                    }
                } else {
                    print("passphrase changed")
                }
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add another passphrase (a coordinator's recovery passphrase, say), or with --duress one that destroys every key slot when it is used.")
        @OptionGroup var replica: ReplicaOptions
        @Option(help: "A file holding the passphrase to add (else asked twice on a terminal).") var newPassphraseFile: String?
        @Flag(help: "Opening the replica with this passphrase silently destroys every key slot and shows a fresh, empty replica of the same region.")
        var duress = false

        func run() throws {
            try FieldbookCLI.run {
                let existing = try PassphraseCommand.current(replica)
                let store = try FieldbookStore.open(path: replica.path, passphrase: existing)
                let new = try Passphrase.new(file: newPassphraseFile, what: duress ? "duress passphrase" : "additional passphrase")
                let created = try store.replica.createdAt()
                try Replica.addPassphrase(path: replica.path, existing: existing, new: new, duress: duress,
                                          region: store.region, device: store.replica.info.device, created: created)
                print(duress ? "duress passphrase added" : "passphrase added")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the passphrase you give (never the last one), or with --duress every duress passphrase.")
        @OptionGroup var replica: ReplicaOptions
        @Flag(help: "Remove the duress passphrases (give a real passphrase).") var duress = false

        func run() throws {
            try FieldbookCLI.run {
                try Replica.removePassphrase(path: replica.path, passphrase: try PassphraseCommand.current(replica), duress: duress)
                print(duress ? "duress passphrases removed" : "passphrase removed")
            }
        }
    }
}

struct Wipe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Destroy the replica's key slots and delete its files: nothing is recoverable afterwards, with any passphrase.")
    @OptionGroup var replica: ReplicaOptions
    @Flag(help: "Do not ask for confirmation.") var yes = false

    func run() throws {
        try FieldbookCLI.run {
            let path = replica.path
            guard FileManager.default.fileExists(atPath: path) else { throw FieldbookError(.replica, "no replica at \(path)") }
            if !yes {
                guard isatty(STDIN_FILENO) != 0 else { throw FieldbookError(.invalidInput, "wipe asks for confirmation; give --yes in scripts") }
                FileHandle.standardError.write(Data("Destroy \(path) for good? Type \"wipe\" to confirm: ".utf8))
                guard readLine()?.trimmingCharacters(in: .whitespaces) == "wipe" else { throw FieldbookError(.invalidInput, "not confirmed; nothing was changed") }
            }
            try Replica.wipe(path: path)
            print("wiped \(path)")
            warn("its key slots were overwritten and its files deleted; \(Scrub.caveat)")
        }
    }
}

struct Encrypt: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encrypt an unencrypted replica in place (atomically: a crash leaves the old file as it was).")
    @OptionGroup var replica: ReplicaOptions
    @Flag(help: "Rewrite a replica encrypted in an older format (format 1: WAL frame headers in clear) in the current one; every passphrase keeps opening it. Run it while no other fieldbook command uses the replica.")
    var upgrade = false

    func run() throws {
        try FieldbookCLI.run {
            guard FileManager.default.fileExists(atPath: replica.path) else { throw FieldbookError(.replica, "no replica at \(replica.path)") }
            if upgrade {
                let p = try PassphraseCommand.current(replica)
                try Replica.upgradeEncryption(path: replica.path, passphrase: p)
                print("upgraded \(replica.path) to encryption format \(KeySlots.currentVersion)")
                return
            }
            // A replica, not some other file — read only: a full open would fold a WAL left by a
            // crash into the file and delete it before `encrypt` could overwrite its blocks.
            try Replica.probe(path: replica.path)
            let p = try Passphrase.new(file: replica.passphraseFile, what: "passphrase")
            try Replica.encrypt(path: replica.path, passphrase: p, cost: try Passphrase.cost())
            print("encrypted \(replica.path)")
            warn("the clear file's blocks were overwritten before it went; \(Scrub.caveat)")
        }
    }
}

struct Decrypt: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a plain, unencrypted copy of the replica, on purpose.")
    @OptionGroup var replica: ReplicaOptions
    @Option(help: "The plain copy to write (must not exist).") var out: String

    func run() throws {
        try FieldbookCLI.run {
            try Replica.decrypt(path: replica.path, passphrase: try PassphraseCommand.current(replica), out: out)
            warn("\(out) is NOT encrypted: anyone holding it can read every record and the sync tokens")
            print("wrote \(out)")
        }
    }
}
