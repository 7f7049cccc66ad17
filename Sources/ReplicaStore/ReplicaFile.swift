import Foundation
import GRDBSQLite

/// What a file claims to be, read from its first bytes before anything opens it: a file that
/// is neither an encrypted replica nor a SQLite database holding a replica (a CSV, a JSON
/// export, an empty file, another program's database) is "not a Fieldbook replica", never
/// "damaged or tampered with" — that alarm is kept for files that are replicas.
enum ReplicaFile {
    static let sqliteMagic = Array("SQLite format 3\0".utf8)

    /// Throws `.notAReplica` unless `path` starts like an encrypted replica or like a SQLite
    /// database with a replica's tables. Opens nothing for writing.
    static func check(path: String) throws {
        let notAReplica = ReplicaError(.notAReplica, "\(path) is not a Fieldbook replica")
        let fd = Foundation.open(path, O_RDONLY)
        guard fd >= 0 else { throw ReplicaError(.notAReplica, "cannot open \(path): \(String(cString: strerror(errno)))") }
        var head = [UInt8](repeating: 0, count: 16)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 16, 0) }
        close(fd)
        if n >= KeySlots.magic.count && Array(head[0..<KeySlots.magic.count]) == KeySlots.magic { return }
        guard n == 16, head == sqliteMagic else { throw notAReplica }
        // Replicas are in WAL mode (header bytes 18 and 19 are 2): such a file is opened as usual,
        // and that open refuses it if it lacks the replica's tables (a WAL database's schema may
        // be in its WAL, which only a normal open reads). A rollback-journal database is another
        // program's unless it has the identity table: looked up read-only, outside GRDB, so that
        // it is not put in WAL mode by a mistake.
        var mode = [UInt8](repeating: 0, count: 2)
        let fd2 = Foundation.open(path, O_RDONLY)
        let m = fd2 < 0 ? 0 : mode.withUnsafeMutableBytes { pread(fd2, $0.baseAddress, 2, 18) }
        if fd2 >= 0 { close(fd2) }
        if m == 2 && mode == [2, 2] { return }
        var db: OpaquePointer?
        defer { sqlite3_close_v2(db) }
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK else { throw notAReplica }
        var stmt: OpaquePointer?
        defer { sqlite3_finalize(stmt) }
        let sql = "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '_fb_replica'"
        let rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nil)
        if rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT || rc & 0xFF == SQLITE_IOERR {
            // It says it is a SQLite database but its schema cannot be read: a damaged file.
            throw ReplicaError(.damaged, "\(path) is damaged: \(String(cString: sqlite3_errmsg(db)))")
        }
        guard rc == SQLITE_OK else { return }  // busy or locked: let the real open report it
        let step = sqlite3_step(stmt)
        if step == SQLITE_ROW && sqlite3_column_int64(stmt, 0) == 0 { throw notAReplica }
        if step == SQLITE_NOTADB || step == SQLITE_CORRUPT || step & 0xFF == SQLITE_IOERR {
            throw ReplicaError(.damaged, "\(path) is damaged: \(String(cString: sqlite3_errmsg(db)))")
        }
    }
}
