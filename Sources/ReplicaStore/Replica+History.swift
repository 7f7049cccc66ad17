import FieldbookModel
import Foundation
import GRDB
import SyncCore

/// One value a field held (or was offered and lost), or a delete / re-creation of the row.
public struct HistoryEntry: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// Written on this replica.
        case local
        /// Written on another replica.
        case received
        /// Received from another replica but lost to a newer version (or written in an older incarnation).
        case lost
        /// The row was deleted.
        case deleted
        /// The row was created again after a delete.
        case recreated
    }

    /// The field, or nil for a delete / re-creation.
    public var field: String?
    public var value: Value
    public var hlc: HLC
    public var site: SiteID
    /// The device name of the site, where known.
    public var device: String? = nil
    public var kind: Kind
    /// Whether this is the field's current value on this replica.
    public var isCurrent: Bool
    /// Local log position where this replica recorded it (`Int64.max` for current values).
    public var sequence: Int64
}

extension Replica {
    /// Every value each field of the row has held on this replica, oldest first, including the
    /// values that lost a conflict.
    public func history(table: String, id: String) throws -> [HistoryEntry] {
        let h = try handle(table)
        let n = h.columnCount
        return try dbQueue.read { db in
            var sites: [Int32: SiteID] = [:]
            var names: [SiteID: String] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT idx, site, name FROM _fb_site") {
                let s = SiteID(bytes: [UInt8](r["site"] as Data))
                sites[r["idx"]] = s
                if let s, let n = r["name"] as String? { names[s] = n }
            }
            let zero = SiteID(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
            func site(_ i: Int32) -> SiteID { sites[i] ?? zero }
            var out: [HistoryEntry] = []
            func kind(_ s: Int32) -> HistoryEntry.Kind { s == 1 ? .local : .received }
            // Current values.
            if let row = try Row.fetchOne(db, sql: h.rowSQL, arguments: [id]) {
                let clocks = ClockVector(data: row[n + 1], count: n + 1)
                for c in 0..<n where clocks.hlc[c + 1] != 0 {
                    out.append(HistoryEntry(field: h.schema.columns[c].name, value: Value.fromDatabaseValue(row[c]) ?? .null,
                                            hlc: HLC(rawValue: clocks.hlc[c + 1]), site: site(clocks.site[c + 1]),
                                            kind: kind(clocks.site[c + 1]), isCurrent: true, sequence: Int64.max))
                }
            }
            // Values that were overwritten (the log keeps them with their clocks), deletes and re-creations.
            var lastCL: Int64 = 0
            for (seq, e) in try Self.logEntries(db, table: h.index, id: id) {
                let cl = e.cl
                let hlc = HLC(rawValue: e.hlc)
                let s = e.site
                if cl % 2 == 0 {
                    out.append(HistoryEntry(field: nil, value: .null, hlc: hlc, site: site(s), kind: .deleted, isCurrent: false, sequence: seq))
                } else if lastCL % 2 == 0 && lastCL > 0 && cl > lastCL {
                    out.append(HistoryEntry(field: nil, value: .null, hlc: hlc, site: site(s), kind: .recreated, isCurrent: false, sequence: seq))
                }
                lastCL = cl
                for e in ValueCodec.decode(Data(e.payload)) where e.column < n {
                    guard let clock = e.clock, clock.hlc != 0 else { continue }
                    out.append(HistoryEntry(field: h.schema.columns[e.column].name, value: e.value, hlc: HLC(rawValue: clock.hlc),
                                            site: site(clock.site), kind: kind(clock.site), isCurrent: false, sequence: seq))
                }
            }
            let lost = try Row.fetchAll(db, sql: "SELECT field, hlc, site, value, seq FROM _fb_lost WHERE tbl = ? AND row_id = ?",
                                        arguments: [h.index, id])
            for r in lost {
                let c: Int = r[0]
                guard c < n else { continue }
                out.append(HistoryEntry(field: h.schema.columns[c].name, value: Value.fromDatabaseValue(r[3]) ?? .null,
                                        hlc: HLC(rawValue: r[1]), site: site(r[2]), kind: .lost, isCurrent: false, sequence: r[4]))
            }
            // One entry per distinct write; ordered by clock, as every replica would order them.
            var seen = Set<String>()
            out = out.filter { seen.insert("\($0.field ?? "-")|\($0.hlc.rawValue)|\($0.site)|\($0.kind == .lost)|\($0.kind.rawValue)").inserted }
            for i in out.indices { out[i].device = names[out[i].site] }
            return out.sorted { ($0.hlc, $0.sequence) < ($1.hlc, $1.sequence) }
        }
    }

    /// The values a deleted row held when it was deleted (from the log), or nil.
    public func valuesAtDeletion(table: String, id: String) throws -> [String: Value]? {
        let h = try handle(table)
        return try dbQueue.read { db in
            let deletes = try Self.logEntries(db, table: h.index, id: id).filter { $0.entry.cl % 2 == 0 && !$0.entry.payload.isEmpty }
            guard let last = deletes.last?.entry.payload else { return nil }
            var out: [String: Value] = [:]
            for e in ValueCodec.decode(Data(last)) where e.column < h.columnCount { out[h.schema.columns[e.column].name] = e.value }
            return out
        }
    }

    /// The table of a row that the log mentions (for records that no longer exist), if any.
    public func loggedTable(of id: String) throws -> String? {
        let byIndex = Dictionary(uniqueKeysWithValues: handles.values.map { ($0.index, $0.schema.name) })
        return try dbQueue.read { db in
            try Self.logEntries(db, table: nil, id: id).first.flatMap { byIndex[$0.entry.table] }
        }
    }

    /// Every log entry about row `id` (of `table`, or of any table), oldest first, with the
    /// sequence of its chunk and its payload. Reads the whole log: history is not a hot path.
    static func logEntries(_ db: Database, table: Int64?, id: String) throws -> [(seq: Int64, entry: LogEntry)] {
        var out: [(seq: Int64, entry: LogEntry)] = []
        let chunks = try RawStatement(db, sql: "SELECT seq, body FROM _fb_log ORDER BY seq")
        while try chunks.next() {
            let seq = chunks.int64(0)
            try chunks.withBlob(1) { body in
                try ChangeLog.forEach(in: body, seq: seq, wantPayload: { (table == nil || $0 == table) && $1 == id }) { e in
                    if (table == nil || e.table == table) && e.rowID == id { out.append((seq, e)) }
                }
            }
        }
        return out
    }
}
