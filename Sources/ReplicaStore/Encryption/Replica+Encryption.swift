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

    /// Rewrites an encrypted replica of format 1 in the current format, atomically: a sealed copy
    /// (`VACUUM INTO`) under the same data key and key slots (every passphrase keeps opening
    /// it) with a new file id, synced, renamed over the original. Refused while another
    /// connection writes; other programs must not hold the replica open meanwhile.
    public static func upgradeEncryption(path: String, passphrase: String) throws {
        let (slots, unlocked, _) = try unlock(path: path, passphrase: passphrase)
        guard case let .key(key, _) = unlocked else { throw ReplicaError(.locked, "the passphrase does not open \(path)") }
        guard slots.version < KeySlots.currentVersion else { throw ReplicaError(.invalid, "\(path) is in the current format already") }
        EncryptingVFS.install()
        EncryptingVFS.register(path: path, key: key, fileID: slots.boundFileID)
        let target = path + ".upgrading"
        for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: target + suffix) }
        var upgraded = slots
        upgraded.version = KeySlots.currentVersion
        upgraded.fileID = KeySlots(cost: slots.cost).fileID
        // The map, now bound to the whole new header; without one (files older than the map),
        // every used slot is marked a key, so none is ever taken as free.
        let kinds = slots.kinds(dataKey: key) ?? slots.slots.map { $0.kind == .empty ? .empty : .key }
        try upgraded.sealKinds(kinds, dataKey: key)
        let fd = Foundation.open(target, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw ReplicaError(.database, "cannot create \(target): \(String(cString: strerror(errno)))") }
        close(fd)
        try upgraded.write(path: target)
        EncryptingVFS.register(path: target, key: key, fileID: upgraded.boundFileID)
        defer { EncryptingVFS.unregister(path: target) }
        do {
            try vacuum(from: path, into: target, reserve: PageCipher.reserve)
            try requireEmptyLog(path)
            try syncFile(target)
        } catch {
            for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: target + suffix) }
            throw error
        }
        guard rename(target, path) == 0 else { throw ReplicaError(.database, "cannot replace \(path): \(String(cString: strerror(errno)))") }
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        EncryptingVFS.register(path: path, key: key, fileID: upgraded.boundFileID)
        try syncFile((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent)
    }
}

extension Replica {
    /// Converts the unencrypted replica at `path` into an encrypted one, atomically: the
    /// encrypted copy is written beside it (`VACUUM INTO` through the sealing VFS, never a clear
    /// page on disk), synced, then renamed over the original. A crash midway leaves the old file
    /// as it was and at most a sealed partial copy, removed by the next attempt.
    public static func encrypt(path: String, passphrase: String, cost: KeySlots.Cost = .standard) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw ReplicaError(.notAReplica, "no replica at \(path)") }
        guard !isEncrypted(path: path) else { throw ReplicaError(.invalid, "\(path) is encrypted already") }
        EncryptingVFS.install()
        let target = path + ".encrypting"
        for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: target + suffix) }
        let slots = KeySlots(cost: cost)
        try startEncryptedFile(path: target, slots: slots, kek: try slots.derive(passphrase))
        defer { EncryptingVFS.unregister(path: target) }
        // The clear file and its WAL stay reachable through these descriptors after SQLite
        // deletes the WAL and the rename replaces the file: their blocks are overwritten once the
        // encrypted copy is in place (a crash before leaves the old file as it was).
        let clear: [Int32] = [path, path + "-wal"].map { (p: String) in Foundation.open(p, O_RDWR) }
        defer { for fd in clear where fd >= 0 { close(fd) } }
        do {
            try vacuum(from: path, into: target, reserve: PageCipher.reserve)
            try requireEmptyLog(path)
            try syncFile(target)
        } catch {
            for suffix in ["", "-wal", "-shm", "-journal"] { try? FileManager.default.removeItem(atPath: target + suffix) }
            throw error
        }
        guard rename(target, path) == 0 else { throw ReplicaError(.database, "cannot replace \(path): \(String(cString: strerror(errno)))") }
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        try syncFile((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent)
        for fd in clear where fd >= 0 { Scrub.overwrite(fd) }
    }

    /// Writes a plain, unencrypted copy of the replica at `path` (opened with `passphrase`) to
    /// `out`, on purpose (`fieldbook decrypt --out`). Refuses to overwrite `out`.
    public static func decrypt(path: String, passphrase: String, out: String) throws {
        guard !FileManager.default.fileExists(atPath: out) else { throw ReplicaError(.alreadyInitialized, "\(out) exists; refusing to overwrite it") }
        let (slots, unlocked, _) = try unlock(path: path, passphrase: passphrase)
        guard case let .key(key, _) = unlocked else { throw ReplicaError(.locked, "the passphrase does not open \(path)") }
        EncryptingVFS.register(path: path, key: key, fileID: slots.boundFileID)
        let fd = Foundation.open(out, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw ReplicaError(.database, "cannot create \(out): \(String(cString: strerror(errno)))") }
        close(fd)
        try vacuum(from: path, into: out, reserve: nil)
    }

    /// `VACUUM INTO` on a connection of our own, optionally asking for `reserve` bytes per page
    /// in the copy (SQLite's way to add reserved bytes to an existing database).
    static func vacuum(from path: String, into target: String, reserve: Int?) throws {
        var db: OpaquePointer?
        defer { sqlite3_close_v2(db) }
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK else {
            throw ReplicaError(.database, "cannot open \(path): \(String(cString: sqlite3_errmsg(db)))")
        }
        if var r = reserve.map(Int32.init) { sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &r) }
        sqlite3_busy_timeout(db, 5000)
        let quoted = target.replacingOccurrences(of: "'", with: "''")
        // When this connection closes (the last one, unless another program holds the file),
        // SQLite folds the source's WAL into it and deletes it — without truncating first, so a
        // descriptor kept on the WAL (`encrypt`) can still overwrite its blocks. Callers then
        // check the WAL is gone (`requireEmptyLog`): one left beside the file that replaces the
        // source would be read as its own.
        let rc = sqlite3_exec(db, "PRAGMA temp_store = MEMORY; VACUUM INTO '\(quoted)'", nil, nil, nil)
        guard rc == SQLITE_OK else {
            let message = String(cString: sqlite3_errmsg(db))
            if rc & 0xFF == SQLITE_IOERR || rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT {
                throw ReplicaError(.damaged, "\(path) is damaged or was tampered with: \(message)")
            }
            throw ReplicaError(.database, "cannot copy \(path) to \(target): \(message)")
        }
    }

    /// Refuses to replace `path` while its WAL still holds frames (another program has the
    /// replica open and kept the checkpoint from emptying it).
    static func requireEmptyLog(_ path: String) throws {
        let size = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? NSNumber)?.int64Value ?? 0
        guard size == 0 else {
            throw ReplicaError(.database, "\(path) is open in another program (its WAL could not be emptied): close every fieldbook command using it and try again")
        }
    }

    /// Removes a `-wal` and `-shm` left beside a file just created (a crash's or another
    /// file's): they are not this file's.
    static func removeStaleLog(_ path: String) {
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    static func syncFile(_ path: String) throws {
        let fd = Foundation.open(path, O_RDONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        fsync(fd)
    }
}
