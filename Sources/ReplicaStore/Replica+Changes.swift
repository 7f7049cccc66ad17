import FieldbookModel
import Foundation
import GRDB

/// A page of changes after a cursor.
public struct ChangeBatch: Sendable {
    public var changeset: Changeset
    /// The cursor to pass next time: the last log position this batch covers.
    public var cursor: Int64
    /// Whether more log entries follow this batch.
    public var hasMore: Bool
}

extension Replica {
    /// The current state of every row changed after `cursor` (a local log position), reading at
    /// most `limit` log entries. Each row is sent once with its current winners, however often it
    /// changed; deleted rows are sent as deletes.
    public func changes(since cursor: Int64, limit: Int = 10_000) throws -> ChangeBatch {
        try dbQueue.read { db in try Self.changes(db: db, since: cursor, limit: limit, handles: handles, order: tableOrder) }
    }

    /// The highest log position (0 when nothing was ever written).
    public func lastSequence() throws -> Int64 {
        try dbQueue.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM _fb_log") ?? 0 }
    }

    static func changes(db: Database, since cursor: Int64, limit: Int, handles: [String: TableHandle], order: [String]) throws -> ChangeBatch {
        let byIndex = Dictionary(uniqueKeysWithValues: handles.values.map { ($0.index, $0) })
        struct Key: Hashable { var tbl: Int64; var id: String }
        var masks: [Key: Int64] = [:]
        var keys: [Key] = []
        var last = cursor
        var scanned = 0
        let rows = try Row.fetchCursor(db, sql: "SELECT seq, tbl, row_id, fields FROM _fb_log WHERE seq > ? ORDER BY seq LIMIT ?",
                                       arguments: [cursor, limit])
        while let r = try rows.next() {
            let k = Key(tbl: r[1], id: r[2])
            if let m = masks[k] { masks[k] = m | r[3] } else { masks[k] = r[3]; keys.append(k) }
            last = r[0]
            scanned += 1
        }
        var hasMore = false
        if scanned == limit {
            hasMore = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM _fb_log WHERE seq > ?)", arguments: [last]) ?? false
        }

        var siteOut: [Int32: Int] = [:]
        var siteList: [SiteID] = []
        let siteRows = try Row.fetchAll(db, sql: "SELECT idx, site FROM _fb_site")
        var siteByIdx: [Int32: SiteID] = [:]
        for r in siteRows { siteByIdx[r["idx"]] = SiteID(bytes: [UInt8](r["site"] as Data)) }
        func out(_ idx: Int32) -> Int {
            if let i = siteOut[idx] { return i }
            siteList.append(siteByIdx[idx] ?? SiteID(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))))
            siteOut[idx] = siteList.count - 1
            return siteList.count - 1
        }

        var tables: [Int64: TableChanges] = [:]
        for k in keys {
            guard let h = byIndex[k.tbl] else { continue }
            let n = h.columnCount
            var rc: RowChange
            if let row = try Row.fetchOne(db.cachedStatement(sql: h.rowSQL), arguments: [k.id]) {
                let clocks = ClockVector(data: row[n + 1], count: n + 1)
                rc = RowChange(id: k.id, cl: row[n], hlc: clocks.hlc[0], site: out(clocks.site[0]))
                let mask = masks[k]!
                for c in 0..<n where mask & (1 << c) != 0 && clocks.hlc[c + 1] != 0 {
                    rc.fields.append(FieldChange(field: c, value: Value.fromDatabaseValue(row[c]) ?? .null,
                                                 hlc: clocks.hlc[c + 1], site: out(clocks.site[c + 1])))
                }
            } else if let t = try Row.fetchOne(db.cachedStatement(sql: "SELECT cl, hlc, site FROM _fb_tombstone WHERE tbl = ? AND row_id = ?"),
                                               arguments: [k.tbl, k.id]) {
                rc = RowChange(id: k.id, cl: t[0], hlc: t[1], site: out(t[2]))
            } else {
                continue
            }
            tables[k.tbl, default: TableChanges(table: h.schema.name, fields: h.schema.columnNames)].rows.append(rc)
        }
        let ordered = order.compactMap { name in handles[name].flatMap { tables[$0.index] } }
        return ChangeBatch(changeset: Changeset(sites: siteList, tables: ordered), cursor: last, hasMore: hasMore)
    }
}
