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
    /// Whether `passphrase` is one of the duress passphrases of the encrypted file at `path`
    /// (one key derivation; nothing written).
    public static func isDuress(path: String, passphrase: String) throws -> Bool {
        let slots = try KeySlots.read(path: path)
        if case .duress = slots.unlock(try slots.derive(passphrase)) { return true }
        return false
    }

    /// Throws unless `path` is a replica (encrypted or not), reading it only: `.notAReplica`
    /// for another file, `.damaged` or `.database` when it cannot be read as one.
    public static func probe(path: String) throws { try ReplicaFile.check(path: path) }

    /// Whether the replica file at `path` is encrypted.
    public static func isEncrypted(path: String) -> Bool { KeySlots.isEncrypted(path: path) }

    public var isEncrypted: Bool { Self.isEncrypted(path: path) }

    /// Writes the key slots of a new encrypted file (mode 0600) and an empty SQLite database
    /// behind them whose pages keep `PageCipher.reserve` bytes free, in WAL mode; registers
    /// its key with the VFS.
    static func createEncryptedFile(path: String, slots: KeySlots, kek: SymmetricKey, decoys: Int = 0) throws {
        try startEncryptedFile(path: path, slots: slots, kek: kek, decoys: decoys)
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

    /// Creates `path` (mode 0600, refusing an existing file) holding only key slots: a new random
    /// data key in one slot under `kek` (the key of a passphrase derived with `slots`' salt and
    /// cost), `decoys` more slots of random bytes, the map of slot kinds; registers the key with
    /// the VFS, so that SQLite's pages written behind the slots are sealed.
    static func startEncryptedFile(path: String, slots base: KeySlots, kek: SymmetricKey, decoys: Int = 0) throws {
        let fd = Foundation.open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw ReplicaError(.alreadyInitialized, "cannot create \(path): \(String(cString: strerror(errno)))") }
        close(fd)
        removeStaleLog(path)
        var slots = base
        let dataKey = SymmetricKey(size: .bits256)
        let slot = try slots.add(.key, payload: dataKey.withUnsafeBytes { Array($0) }, kek: kek)
        slots.addDecoys(decoys)
        var kinds = [KeySlots.Kind](repeating: .empty, count: KeySlots.slotCount)
        kinds[slot] = .key
        try slots.sealKinds(kinds, dataKey: dataKey)
        try slots.write(path: path)
        EncryptingVFS.register(path: path, key: dataKey, fileID: slots.boundFileID)
    }

    /// Finds what `passphrase` opens in the key slots of the encrypted file at `path`; also
    /// gives the key derived from the passphrase.
    static func unlock(path: String, passphrase: String?) throws -> (KeySlots, KeySlots.Unlocked, SymmetricKey) {
        guard let passphrase else {
            throw ReplicaError(.locked, "\(path) is encrypted: give its passphrase (FIELDBOOK_PASSPHRASE, FIELDBOOK_PASSPHRASE_FILE or --passphrase-file)")
        }
        let slots = try KeySlots.read(path: path)
        let kek = try slots.derive(passphrase)
        guard let unlocked = slots.unlock(kek) else {
            throw ReplicaError(.locked, "the passphrase does not open \(path)")
        }
        return (slots, unlocked, kek)
    }

    /// What a duress slot remembers, to create a replica in place of the destroyed one that
    /// looks like the same device's.
    struct DuressPayload: Codable {
        var region: String
        var device: String?
        /// When the destroyed replica was created (ISO 8601), shown as the new one's.
        var created: String?
    }

    /// Destroys every key slot of `path` and deletes the replica's files (`fieldbook wipe`).
    /// Afterwards no passphrase recovers anything; the time does not grow with the file.
    public static func wipe(path: String) throws {
        EncryptingVFS.unregister(path: path)
        if KeySlots.isEncrypted(path: path) { try KeySlots.destroy(path: path) }
        for suffix in ["", "-wal", "-shm", "-journal", "-keyslots"] where FileManager.default.fileExists(atPath: path + suffix) {
            do { try FileManager.default.removeItem(atPath: path + suffix) } catch {
                throw ReplicaError(.database, "cannot delete \(path + suffix): \(error.localizedDescription)")
            }
        }
    }

    /// Adds a passphrase (after checking `existing`): another key slot, or with `duress` a slot
    /// that destroys every slot when it is used. Rewrites the key slots only.
    public static func addPassphrase(path: String, existing: String, new: String, duress: Bool = false,
                                     region: String, device: String?, created: String? = nil) throws {
        var (slots, key, _, kinds) = try unlockWithKey(path: path, passphrase: existing)
        let kek = try slots.derive(new)
        if slots.unlock(kek) != nil { throw ReplicaError(.invalid, "that passphrase is already one of \(path)'s") }
        // Where the map is known, decoy slots (left by a duress wipe) are free to take.
        let map = slots.kinds(dataKey: key) != nil ? kinds : nil
        let slot: Int
        if duress {
            var payload = try JSONEncoder().encode(DuressPayload(region: region, device: device, created: created))
            if payload.count > KeySlots.slotPlaintext - 2 {
                // The creation time is the first to go; a name too long for a slot is refused.
                payload = try JSONEncoder().encode(DuressPayload(region: region, device: device, created: nil))
            }
            guard payload.count <= KeySlots.slotPlaintext - 2 else {
                throw ReplicaError(.invalid, "the region and device name are too long to remember in a duress slot (\(payload.count) bytes; at most \(KeySlots.slotPlaintext - 2))")
            }
            slot = try slots.add(.duress, payload: Array(payload), kek: kek, kinds: map)
        } else {
            slot = try slots.add(.key, payload: key.withUnsafeBytes { Array($0) }, kek: kek, kinds: map)
        }
        kinds[slot] = duress ? .duress : .key
        try slots.sealKinds(kinds, dataKey: key)
        try slots.replace(path: path)
    }

    /// Replaces the passphrase `old` by `new` in its slot. Rewrites the key slots only, so its
    /// time does not depend on the size of the replica.
    ///
    /// When the slots' cost is below `cost` (a file made under a test setting, or an older
    /// standard), the key slots are made anew at `cost` with a new salt: they share one salt
    /// and cost, so the other passphrases — whose keys cannot be derived without them — are
    /// dropped and counted in the result, to be added again.
    @discardableResult
    public static func changePassphrase(path: String, old: String, new: String, cost: KeySlots.Cost = .standard) throws -> PassphraseChange {
        var (slots, key, slot, kinds) = try unlockWithKey(path: path, passphrase: old)
        var change = PassphraseChange()
        if slots.cost.logN < cost.logN || slots.cost.r < cost.r {
            change.costRaised = true
            change.droppedPassphrases = kinds.enumerated().filter { $0.offset != slot && $0.element == .key }.count
            change.droppedDuress = kinds.filter { $0 == .duress }.count
            var fresh = KeySlots(cost: cost)
            fresh.version = slots.version
            fresh.fileID = slots.fileID
            slots = fresh
            kinds = [KeySlots.Kind](repeating: .empty, count: KeySlots.slotCount)
        } else {
            slots.remove(slot: slot)
            kinds[slot] = .empty
        }
        let kek = try slots.derive(new)
        if slots.unlock(kek) != nil { throw ReplicaError(.invalid, "that passphrase is already one of \(path)'s") }
        let added = try slots.add(.key, payload: key.withUnsafeBytes { Array($0) }, kek: kek, kinds: change.costRaised || slots.kinds(dataKey: key) != nil ? kinds : nil)
        kinds[added] = .key
        try slots.sealKinds(kinds, dataKey: key)
        try slots.replace(path: path)
        return change
    }

    /// What `changePassphrase` did beyond replacing the passphrase.
    public struct PassphraseChange: Sendable, Equatable {
        /// The slots were made anew at a higher cost.
        public var costRaised = false
        /// Other passphrases and duress passphrases dropped with the old slots.
        public var droppedPassphrases = 0
        public var droppedDuress = 0
    }

    /// Removes the passphrase given (never the last one that opens the replica), or with
    /// `duress` every duress passphrase (given a real one).
    public static func removePassphrase(path: String, passphrase: String, duress: Bool = false) throws {
        var (slots, key, slot, kinds) = try unlockWithKey(path: path, passphrase: passphrase)
        if duress {
            for (i, k) in kinds.enumerated() where k == .duress {
                slots.remove(slot: i)
                kinds[i] = .empty
            }
        } else {
            guard kinds.filter({ $0 == .key }).count > 1 else {
                throw ReplicaError(.invalid, "that is the last passphrase of \(path); add another before removing it")
            }
            slots.remove(slot: slot)
            kinds[slot] = .empty
        }
        try slots.sealKinds(kinds, dataKey: key)
        try slots.replace(path: path)
    }

    /// Unlocks with a real passphrase (a duress one destroys the slots, as opening would): the
    /// slots, the data key, the slot it opened, and the map of what each slot holds.
    static func unlockWithKey(path: String, passphrase: String) throws -> (KeySlots, SymmetricKey, Int, [KeySlots.Kind]) {
        let (slots, unlocked, _) = try unlock(path: path, passphrase: passphrase)
        switch unlocked {
        case let .key(key, slot):
            if slots.version >= 2 && slots.kinds(dataKey: key) == nil { throw KeySlots.alteredHeader(path) }
            var kinds = slots.kinds(dataKey: key) ?? [KeySlots.Kind](repeating: .empty, count: KeySlots.slotCount)
            kinds[slot] = .key
            return (slots, key, slot, kinds)
        case .duress:
            try KeySlots.destroy(path: path)
            throw ReplicaError(.locked, "the passphrase does not open \(path)")
        }
    }

    /// Reads every page of the encrypted database file (free pages included) and authenticates
    /// it; returns the number of pages, or throws `.damaged` naming the first page that fails.
    public func verifyPages() throws -> Int {
        guard let cipher = EncryptingVFS.cipher(forPath: path) else { return 0 }
        let fd = Foundation.open(path, O_RDONLY)
        guard fd >= 0 else { throw ReplicaError(.database, "cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: EncryptingVFS.pageSize, alignment: 16)
        defer { page.deallocate() }
        var n: Int64 = 0
        while true {
            let got = pread(fd, page.baseAddress, EncryptingVFS.pageSize, off_t(EncryptingVFS.headerSize + n * Int64(EncryptingVFS.pageSize)))
            if got == 0 { break }
            guard got == EncryptingVFS.pageSize else { throw ReplicaError(.damaged, "\(path) is damaged: its last page is cut short (truncated?)") }
            n += 1
            guard cipher.open(page, at: .page(n)) else {
                throw ReplicaError(.damaged, "\(path) is damaged or was tampered with: page \(n) does not authenticate")
            }
        }
        return Int(n)
    }

    /// The key slots of an encrypted replica (for `status`).
    public static func keySlots(path: String) throws -> KeySlots { try KeySlots.read(path: path) }

    /// What weakens the protection of the encrypted file at `path`, each with what to do
    /// (`status` and `check` show them): key slots below the standard cost, the format of
    /// version 1. Empty for a sound file and for an unencrypted one (said elsewhere).
    public static func protectionWarnings(path: String) -> [String] {
        guard isEncrypted(path: path), let slots = try? KeySlots.read(path: path) else { return [] }
        var out: [String] = []
        if slots.cost.isWeak {
            let factor = 1 << max(0, Int(KeySlots.Cost.standard.logN) - Int(slots.cost.logN))
            out.append("weak key slots: scrypt 2^\(slots.cost.logN) (the standard is 2^\(KeySlots.Cost.standard.logN)): passphrases can be tried \(factor) times faster; run `fieldbook passphrase change` to make the slots anew at the standard cost")
        }
        if slots.version >= 2 && slots.hasUnevenSlots {
            out.append("key slots kept from format 1 have other lengths than format-2 slots, which tells a duress slot from a key slot: remove and add the passphrases again (`fieldbook passphrase add`, then `remove`)")
        }
        if slots.version < KeySlots.currentVersion {
            out.append("encrypted in format \(slots.version): the WAL's frame headers (SQLite's checksums of clear pages) are written in clear and pages are not bound to this file; run `fieldbook encrypt --upgrade` (with no other fieldbook command using this replica) to rewrite it in format \(KeySlots.currentVersion)")
        }
        return out
    }
}
