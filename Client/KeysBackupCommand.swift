import ArgumentParser
import FieldbookKit
import Foundation
import ReplicaStore
import SealedSync
import SyncClient

/// `fieldbook keys export|import`: a coordinator's region keys, sealed under a passphrase of their own.
struct KeysExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write every region key this replica holds to a file sealed under a backup passphrase (--backup-passphrase-file, FIELDBOOK_BACKUP_PASSPHRASE or a prompt).")
    @OptionGroup var replica: ReplicaOptions
    @Option(help: "The file to write (refused if it exists).") var out: String
    @Option(help: "A file holding the backup passphrase.") var backupPassphraseFile: String?

    func run() throws {
        try SyncCLI.run {
            let r = try replica.open().replica
            let ring = try KeyStore.keyRing(r)
            guard !ring.isEmpty else { throw SyncClientError(.invalidInput, "this replica holds no region key; nothing to export") }
            guard !FileManager.default.fileExists(atPath: out) else { throw SyncClientError(.invalidInput, "\(out) exists already; choose another file") }
            let passphrase = try BackupPassphrase.get(file: backupPassphraseFile, new: true)
            let trusted = try r.read { db in try KeyStore.trusted(db).keys.sorted() }
            let bytes = try KeyBackup.seal(ring, trusted: trusted, passphrase: passphrase, logN: try Passphrase.cost().logN)
            do { try PrivateFile.write(Data(bytes), to: out, existing: .refuse) } catch { throw SyncClientError(.local, "\(error)") }
            let n = ring.regions.reduce(0) { $0 + ring.epochs($1).count }
            print("wrote \(n) key\(n == 1 ? "" : "s") of \(ring.regions.count) region\(ring.regions.count == 1 ? "" : "s") to \(out)")
        }
    }
}

struct KeysImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Take the region keys of a file written by `fieldbook keys export` (on a new laptop).")
    @OptionGroup var replica: ReplicaOptions
    @Argument(help: "The backup file.") var file: String
    @Option(help: "A file holding the backup passphrase.") var backupPassphraseFile: String?

    func run() throws {
        try SyncCLI.run {
            let r = try replica.open().replica
            guard let data = FileManager.default.contents(atPath: file) else { throw SyncClientError(.invalidInput, "cannot read \(file)") }
            guard data.count <= KeyBackup.maxBytes else { throw SyncClientError(.invalidInput, "\(file) is larger than any key backup") }
            let passphrase = try BackupPassphrase.get(file: backupPassphraseFile, new: false)
            let (ring, trusted) = try KeyBackup.open([UInt8](data), passphrase: passphrase)
            try r.writeDatabase { db in
                for region in ring.regions {
                    for e in ring.epochs(region) {
                        try KeyStore.add(db, region: region, epoch: e, key: ring.key(region, epoch: e)!, sender: nil, senderFingerprint: "imported")
                    }
                }
                for fp in trusted { try KeyStore.trust(db, fingerprint: fp, name: nil, how: "imported") }
            }
            let n = ring.regions.reduce(0) { $0 + ring.epochs($1).count }
            print("imported \(n) key\(n == 1 ? "" : "s") of \(ring.regions.joined(separator: ", "))")
        }
    }
}

/// The backup's passphrase: `--backup-passphrase-file`, `FIELDBOOK_BACKUP_PASSPHRASE`, a prompt on
/// a terminal, else (scripts) the replica's own `FIELDBOOK_PASSPHRASE`.
enum BackupPassphrase {
    static func get(file: String?, new: Bool) throws -> String {
        let env = ProcessInfo.processInfo.environment
        if let file { return try Passphrase.check(try Passphrase.read(file: file)) }
        if let p = env["FIELDBOOK_BACKUP_PASSPHRASE"], !p.isEmpty { return try Passphrase.check(p) }
        if isatty(STDIN_FILENO) != 0 {
            if new { return try Passphrase.new(file: nil, what: "backup passphrase") }
            if let p = Passphrase.ask("Backup passphrase: ") { return p }
        }
        if let p = env["FIELDBOOK_PASSPHRASE"], !p.isEmpty { return try Passphrase.check(p) }
        throw FieldbookError(.locked, "no backup passphrase: give --backup-passphrase-file, FIELDBOOK_BACKUP_PASSPHRASE, or run on a terminal")
    }
}
