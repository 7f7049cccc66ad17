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
            for r in try Row.fetchAll(db, sql: "SELECT idx, site FROM _fb_site") {
                sites[r["idx"]] = SiteID(bytes: [UInt8](r["site"] as Data))
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
            let log = try Row.fetchAll(db, sql: "SELECT seq, op, cl, hlc, site, payload FROM _fb_log WHERE row_id = ? AND tbl = ? ORDER BY seq",
                                       arguments: [id, h.index])
            for r in log {
                let seq: Int64 = r[0]
                let cl: Int64 = r[2]
                let hlc = HLC(rawValue: r[3])
                let s: Int32 = r[4]
                if cl % 2 == 0 {
                    out.append(HistoryEntry(field: nil, value: .null, hlc: hlc, site: site(s), kind: .deleted, isCurrent: false, sequence: seq))
                } else if lastCL % 2 == 0 && lastCL > 0 && cl > lastCL {
                    out.append(HistoryEntry(field: nil, value: .null, hlc: hlc, site: site(s), kind: .recreated, isCurrent: false, sequence: seq))
                }
                lastCL = cl
                let payload: Data? = r[5]
                for e in ValueCodec.decode(payload ?? Data()) where e.column < n {
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
            return out.sorted { ($0.hlc, $0.sequence) < ($1.hlc, $1.sequence) }
        }
    }

    /// The sites this replica knows, by id, with the device name when it is the local one.
    public func knownSites() throws -> [SiteID] {
        try dbQueue.read { db in
            try Row.fetchAll(db, sql: "SELECT site FROM _fb_site ORDER BY idx").compactMap { SiteID(bytes: [UInt8]($0[0] as Data)) }
        }
    }
}
