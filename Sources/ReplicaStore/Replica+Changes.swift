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
    /// The current state of every row changed after `cursor` (a local log position), reading log
    /// chunks until at least `limit` entries are read (a chunk holds up to `ChangeLog.chunkSize`).
    /// Each row is sent once with its current winners, however often it changed; deleted rows
    /// are sent as deletes.
    ///
    /// - Parameters:
    ///   - excludingOrigin: skip entries received from this peer (see `apply(_:origin:)`), so that
    ///     a change is not sent back where it came from.
    ///   - partitions: only rows whose partition column (the region) is one of these; nil for all.
    public func changes(since cursor: Int64, limit: Int = 10_000, excludingOrigin: Int64? = nil,
                        partitions: Set<String>? = nil) throws -> ChangeBatch {
        try dbQueue.read { db in
            try Self.changes(db: db, since: cursor, limit: limit, handles: handles, order: tableOrder, context: context,
                             excludingOrigin: excludingOrigin, partitions: partitions)
        }
    }

    /// The highest log position (0 when nothing was ever written).
    public func lastSequence() throws -> Int64 {
        try dbQueue.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM _fb_log") ?? 0 }
    }

    static func changes(db: Database, since cursor: Int64, limit: Int, handles: [String: TableHandle], order: [String],
                        context: ConnectionContext, excludingOrigin: Int64? = nil, partitions: Set<String>? = nil) throws -> ChangeBatch {
        func statement(_ key: ReplicaWriter.StatementKey, _ sql: String) throws -> RawStatement {
            try context.statement(db, key, sql)
        }
        let byIndex = Dictionary(uniqueKeysWithValues: handles.values.map { ($0.index, $0) })
        struct Key: Hashable { var tbl: Int64; var id: String }
        var masks: [Key: Int64] = [:]
        var keys: [Key] = []
        var last = cursor
        var scanned = 0
        let chunks = try statement(.init(table: -4, kind: 0, mask: 0), "SELECT seq, body FROM _fb_log WHERE seq > ? ORDER BY seq")
        chunks.bind(1, cursor)
        while scanned < limit, try chunks.next() {
            last = chunks.int64(0)
            try chunks.withBlob(1) { body in
                try ChangeLog.forEach(in: body, seq: last) { e in
                    scanned += 1
                    if let x = excludingOrigin, e.origin == x { return }
                    let k = Key(tbl: e.table, id: e.rowID)
                    if let m = masks[k] { masks[k] = m | e.fields } else { masks[k] = e.fields; keys.append(k) }
                }
            }
        }
        chunks.reset()
        let more = try statement(.init(table: -4, kind: 1, mask: 0), "SELECT EXISTS (SELECT 1 FROM _fb_log WHERE seq > ?)")
        more.bind(1, last)
        let hasMore = try more.next() && more.int64(0) != 0
        more.reset()

        var siteOut: [Int32: Int] = [:]
        var siteList: [SiteID] = []
        var siteByIdx: [Int32: SiteID] = [:]
        var nameByIdx: [Int32: String] = [:]
        let sites = try statement(.init(table: -4, kind: 3, mask: 0), "SELECT idx, site, name FROM _fb_site")
        while try sites.next() {
            let idx = Int32(sites.int64(0))
            siteByIdx[idx] = SiteID(bytes: [UInt8](sites.data(1)))
            nameByIdx[idx] = sites.value(2).text
        }
        var siteNames: [String?] = []
        func out(_ idx: Int32) -> Int {
            if let i = siteOut[idx] { return i }
            siteList.append(siteByIdx[idx] ?? SiteID(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))))
            siteNames.append(nameByIdx[idx])
            siteOut[idx] = siteList.count - 1
            return siteList.count - 1
        }

        var tables: [Int64: TableChanges] = [:]
        for k in keys {
            guard let h = byIndex[k.tbl] else { continue }
            let n = h.columnCount
            var rc: RowChange
            let row = try statement(.init(table: h.index, kind: 5, mask: 0), h.rowSQL)
            row.bind(1, k.id)
            if try row.next() {
                if let partitions, let pc = h.partitionColumn, !partitions.contains(row.value(Int32(pc)).text ?? "") {
                    row.reset()
                    continue
                }
                let clocks = ClockVector(data: row.data(Int32(n + 1)), count: n + 1)
                rc = RowChange(id: k.id, cl: row.int64(Int32(n)), hlc: clocks.hlc[0], site: out(clocks.site[0]))
                let mask = masks[k]!
                for c in 0..<n where mask & (1 << c) != 0 && clocks.hlc[c + 1] != 0 {
                    rc.fields.append(FieldChange(field: c, value: row.value(Int32(c)), hlc: clocks.hlc[c + 1], site: out(clocks.site[c + 1])))
                }
                row.reset()
            } else if let t = try Row.fetchOne(db.cachedStatement(sql: "SELECT cl, hlc, site, part FROM _fb_tombstone WHERE tbl = ? AND row_id = ?"),
                                               arguments: [k.tbl, k.id]) {
                if let partitions, h.partitionColumn != nil, !partitions.contains((t[3] as String?) ?? "") { continue }
                rc = RowChange(id: k.id, cl: t[0], hlc: t[1], site: out(t[2]))
            } else {
                continue
            }
            tables[k.tbl, default: TableChanges(table: h.schema.name, fields: h.schema.columnNames)].rows.append(rc)
        }
        let ordered = order.compactMap { name in handles[name].flatMap { tables[$0.index] } }
        return ChangeBatch(changeset: Changeset(sites: siteList, tables: ordered, siteNames: siteNames), cursor: last, hasMore: hasMore)
    }
}
