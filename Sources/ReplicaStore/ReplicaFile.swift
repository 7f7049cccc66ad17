import Foundation
import GRDBSQLite

/// What a file claims to be, read from its first bytes before anything opens it: a file that
/// is neither an encrypted replica nor a SQLite database holding a replica (a CSV, a JSON
/// export, an empty file, another program's database) is "not a Fieldbook replica", never
/// "damaged or tampered with" — that alarm is kept for files that are replicas. Nothing is
/// opened for writing: another program's database is left as it was.
enum ReplicaFile {
    static let sqliteMagic = Array("SQLite format 3\0".utf8)

    /// Throws `.notAReplica` unless `path` starts like an encrypted replica or is a SQLite
    /// database with a replica's identity table; `.database` when it cannot be read at all.
    static func check(path: String) throws {
        let notAReplica = ReplicaError(.notAReplica, "\(path) is not a Fieldbook replica")
        KeySlots.completeInterruptedWrite(path: path)
        let fd = Foundation.open(path, O_RDONLY)
        guard fd >= 0 else {
            let why = String(cString: strerror(errno))
            throw ReplicaError(errno == ENOENT ? .notAReplica : .database, "cannot open \(path): \(why)")
        }
        var head = [UInt8](repeating: 0, count: 20)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 20, 0) }
        close(fd)
        if n >= KeySlots.magic.count && Array(head[0..<KeySlots.magic.count]) == KeySlots.magic { return }
        guard n == 20, Array(head[0..<16]) == sqliteMagic else { throw notAReplica }
        // A SQLite file: a replica only if it has the identity table, looked up read-only. A
        // WAL database without a WAL beside it is read as immutable (no -wal or -shm made, no
        // checkpoint on close); one with a WAL is read through it (its schema may be there).
        let wal = head[18] == 2 && head[19] == 2
        let hasWAL = FileManager.default.fileExists(atPath: path + "-wal")
        var db: OpaquePointer?
        defer { sqlite3_close_v2(db) }
        let name = wal && !hasWAL ? "file:\(uriPath(path))?immutable=1" : path
        let flags = SQLITE_OPEN_READONLY | (name.hasPrefix("file:") ? SQLITE_OPEN_URI : 0)
        guard sqlite3_open_v2(name, &db, flags, nil) == SQLITE_OK else {
            throw ReplicaError(.database, "cannot read \(path): \(String(cString: sqlite3_errmsg(db)))")
        }
        sqlite3_busy_timeout(db, 5000)
        var stmt: OpaquePointer?
        defer { sqlite3_finalize(stmt) }
        let sql = "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '_fb_replica'"
        var rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nil)
        if rc == SQLITE_OK { rc = sqlite3_step(stmt) }
        if rc == SQLITE_ROW {
            if sqlite3_column_int64(stmt, 0) == 0 { throw notAReplica }
            return
        }
        if rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT || rc & 0xFF == SQLITE_IOERR {
            // It says it is a SQLite database but its schema cannot be read: a damaged file.
            throw ReplicaError(.damaged, "\(path) is damaged: \(String(cString: sqlite3_errmsg(db)))")
        }
        // Busy, locked, no access: no verdict, and no read-write open of a file not known to be
        // a replica.
        throw ReplicaError(.database, "cannot read \(path) now: \(String(cString: sqlite3_errmsg(db))) (another program may hold it; try again)")
    }

    /// `path` as a URI filename's path part (RFC 3986: `%`, `?` and `#` escaped).
    static func uriPath(_ path: String) -> String {
        var out = ""
        for b in path.utf8 {
            switch b {
            case UInt8(ascii: "%"), UInt8(ascii: "?"), UInt8(ascii: "#"), 0x00...0x20, 0x7F...0xFF:
                out += String(format: "%%%02X", b)
            default: out.append(Character(UnicodeScalar(b)))
            }
        }
        return out
    }
}
