@preconcurrency import Crypto
import Foundation
import GRDB
import GRDBSQLite

extension Replica {
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
        try replace(path, withSealedCopy: target)
        EncryptingVFS.register(path: path, key: key, fileID: upgraded.boundFileID)
    }

    /// Copies `path` into the sealed file `target` (`VACUUM INTO`), checks that the source's WAL
    /// is gone, syncs, and renames the copy over `path`; a failure before the rename removes
    /// the copy and leaves `path` as it was.
    static func replace(_ path: String, withSealedCopy target: String) throws {
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
    }
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
        try replace(path, withSealedCopy: target)
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
