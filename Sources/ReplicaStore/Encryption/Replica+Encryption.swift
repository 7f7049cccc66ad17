@preconcurrency import Crypto
import Foundation
import GRDB
import GRDBSQLite

/// How a new replica file is protected.
public enum ReplicaProtection: Sendable {
    /// A plain SQLite file (demos, benchmarks).
    case none
    /// Encrypted; the data key is wrapped under this passphrase with scrypt of this cost.
    case passphrase(String, cost: KeySlots.Cost = .standard)
}

extension Replica {
    /// Whether the replica file at `path` is encrypted.
    public static func isEncrypted(path: String) -> Bool { KeySlots.isEncrypted(path: path) }

    public var isEncrypted: Bool { Self.isEncrypted(path: path) }

    /// Writes the key slots of a new encrypted file (mode 0600) and an empty SQLite database
    /// behind them whose pages keep `PageCipher.reserve` bytes free, in WAL mode; registers
    /// its key with the VFS.
    static func createEncryptedFile(path: String, passphrase: String, cost: KeySlots.Cost) throws {
        let fd = Foundation.open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw ReplicaError(.alreadyInitialized, "cannot create \(path): \(String(cString: strerror(errno)))") }
        close(fd)
        var slots = KeySlots(cost: cost)
        let dataKey = SymmetricKey(size: .bits256)
        try slots.add(.key, payload: dataKey.withUnsafeBytes { Array($0) }, kek: try slots.derive(passphrase))
        try slots.write(path: path)
        EncryptingVFS.register(path: path, key: dataKey)
        // The reserve is fixed by the first page written, so it is written here, on a connection
        // of our own, before GRDB opens the file.
        var db: OpaquePointer?
        defer { sqlite3_close_v2(db) }
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK else {
            throw ReplicaError(.database, "cannot create \(path): \(String(cString: sqlite3_errmsg(db)))")
        }
        var reserve = Int32(PageCipher.reserve)
        sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve)
        let sql = "PRAGMA page_size = \(EncryptingVFS.pageSize); PRAGMA journal_mode = WAL; CREATE TABLE _fb_init (x); DROP TABLE _fb_init;"
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
            throw ReplicaError(.database, "cannot create \(path): \(String(cString: sqlite3_errmsg(db)))")
        }
    }

    /// Finds what `passphrase` opens in the key slots of the encrypted file at `path`.
    static func unlock(path: String, passphrase: String?) throws -> (KeySlots, KeySlots.Unlocked) {
        guard let passphrase else {
            throw ReplicaError(.locked, "\(path) is encrypted: give its passphrase (FIELDBOOK_PASSPHRASE, FIELDBOOK_PASSPHRASE_FILE or --passphrase-file)")
        }
        let slots = try KeySlots.read(path: path)
        guard let unlocked = slots.unlock(try slots.derive(passphrase)) else {
            throw ReplicaError(.locked, "the passphrase does not open \(path)")
        }
        return (slots, unlocked)
    }

    /// What a duress slot remembers, to create a fresh replica in place of the destroyed one.
    struct DuressPayload: Codable {
        var region: String
        var device: String?
    }

    /// Destroys every key slot of `path` and deletes the replica's files (`fieldbook wipe`).
    /// Afterwards no passphrase recovers anything; the time does not grow with the file.
    public static func wipe(path: String) throws {
        EncryptingVFS.unregister(path: path)
        if KeySlots.isEncrypted(path: path) { try KeySlots.destroy(path: path) }
        for suffix in ["", "-wal", "-shm", "-journal"] where FileManager.default.fileExists(atPath: path + suffix) {
            do { try FileManager.default.removeItem(atPath: path + suffix) } catch {
                throw ReplicaError(.database, "cannot delete \(path + suffix): \(error.localizedDescription)")
            }
        }
    }

    /// Adds a passphrase (after checking `existing`): another key slot, or with `duress` a slot
    /// that destroys every slot when it is used. Rewrites the key slots only.
    public static func addPassphrase(path: String, existing: String, new: String, duress: Bool = false,
                                     region: String, device: String?) throws {
        var (slots, unlocked) = try unlock(path: path, passphrase: existing)
        guard case let .key(key, _) = unlocked else { throw ReplicaError(.locked, "the passphrase does not open \(path)") }
        let kek = try slots.derive(new)
        if slots.unlock(kek) != nil { throw ReplicaError(.invalid, "that passphrase is already one of \(path)'s") }
        if duress {
            let payload = try JSONEncoder().encode(DuressPayload(region: region, device: device))
            try slots.add(.duress, payload: Array(payload), kek: kek)
        } else {
            try slots.add(.key, payload: key.withUnsafeBytes { Array($0) }, kek: kek)
        }
        try slots.write(path: path)
    }

    /// Replaces the passphrase `old` by `new` in its slot. Rewrites the key slots only, so its
    /// time does not depend on the size of the replica.
    public static func changePassphrase(path: String, old: String, new: String) throws {
        var (slots, unlocked) = try unlock(path: path, passphrase: old)
        guard case let .key(key, slot) = unlocked else { throw ReplicaError(.locked, "the passphrase does not open \(path)") }
        let kek = try slots.derive(new)
        if slots.unlock(kek) != nil { throw ReplicaError(.invalid, "that passphrase is already one of \(path)'s") }
        slots.remove(slot: slot)
        try slots.add(.key, payload: key.withUnsafeBytes { Array($0) }, kek: kek)
        try slots.write(path: path)
    }

    /// Removes a passphrase; refuses to remove the last one that opens the replica.
    public static func removePassphrase(path: String, passphrase: String) throws {
        var (slots, unlocked) = try unlock(path: path, passphrase: passphrase)
        switch unlocked {
        case let .key(_, slot):
            guard slots.keySlots > 1 else {
                throw ReplicaError(.invalid, "that is the last passphrase of \(path); add another before removing it")
            }
            slots.remove(slot: slot)
        case let .duress(_, slot):
            slots.remove(slot: slot)
        }
        try slots.write(path: path)
    }

    /// The key slots of an encrypted replica (for `status`).
    public static func keySlots(path: String) throws -> KeySlots { try KeySlots.read(path: path) }
}
