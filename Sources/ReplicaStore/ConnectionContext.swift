import FieldbookModel
import GRDB

/// What lives as long as the replica's one SQLite connection: the capture buffer that
/// `fb_setclock` fills, and the statements the writer prepared (kept across transactions).
/// Used only inside the database queue, which serializes all access.
final class ConnectionContext: @unchecked Sendable {
    let capture = ClockCapture()
    var statements: [ReplicaWriter.StatementKey: RawStatement] = [:]
    /// What the last committed write transaction left, valid while `PRAGMA data_version` shows
    /// that no other connection has committed since (then a writer need not read it again).
    var snapshot: WriterSnapshot?

    /// The single-column local updates, by table index and column (the hot path of local edits).
    private var columnUpdates: [[RawStatement?]] = []

    func columnUpdate(_ db: Database, _ h: TableHandle, column c: Int, site: Int32) throws -> RawStatement {
        let t = Int(h.index)
        if t < columnUpdates.count, c < columnUpdates[t].count, let s = columnUpdates[t][c] { return s }
        while columnUpdates.count <= t { columnUpdates.append([]) }
        if columnUpdates[t].count < h.columnCount { columnUpdates[t] += Array(repeating: nil, count: h.columnCount - columnUpdates[t].count) }
        let s = try RawStatement(db, sql: h.localUpdateSQL(mask: 1 << c, site: site))
        columnUpdates[t][c] = s
        return s
    }

    func statement(_ db: Database, _ key: ReplicaWriter.StatementKey, _ sql: @autoclosure () -> String) throws -> RawStatement {
        if let s = statements[key] { return s }
        let s = try RawStatement(db, sql: sql())
        statements[key] = s
        return s
    }

    /// Forgets every prepared statement and the writer snapshot (the local site changed, and
    /// some statements name it).
    func reset() {
        statements = [:]
        columnUpdates = []
        snapshot = nil
    }

    /// SQLite's `data_version`: changes when another connection commits.
    func dataVersion(_ db: Database) throws -> Int64 {
        let s = try statement(db, .init(table: -2, kind: 0, mask: 0), "PRAGMA data_version")
        defer { s.reset() }
        return try s.next() ? s.int64(0) : -1
    }
}

/// The per-replica state a writer starts from.
struct WriterSnapshot {
    var dataVersion: Int64
    var clock: Int64
    var siteIDs: [Int32: SiteID]
    var siteIndex: [SiteID: Int32]
    var localSite: Int32
    var nextSeq: Int64
    var hasTombstones: Bool
}
