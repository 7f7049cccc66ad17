import FieldbookModel
import GRDB
import ReplicaStore

/// Which regions of this replica's records its remotes take. A server receives only the regions
/// its token covers (`SyncEngine` asks it, `GET /v1/scope`); records of a region no remote covers
/// stay on this replica, and `fieldbook status`, `sync` and `person add` / `incident add` say so.
/// Judged from what each remote said at its last sync: a remote that never synced counts for
/// nothing.
public enum RegionCoverage {
    /// The regions some remote is known to cover; nil when a remote covers every region, or some
    /// remote's regions are not known yet (then nothing can be said).
    public static func covered(_ replica: Replica) throws -> Set<String>? {
        let remotes = try Remotes.all(replica)
        let known = remotes.compactMap(\.regions)
        if known.isEmpty || known.count < remotes.count || known.contains(where: { $0.contains(SyncProtocol.allRegions) }) { return nil }
        return Set(known.joined())
    }

    /// Whether some remote takes records of `region` (true when it cannot be known).
    public static func isCovered(_ region: String, in replica: Replica) throws -> Bool {
        try covered(replica)?.contains(region) ?? true
    }

    /// The regions of this replica's live records that no remote takes, with how
    /// many records each holds, by region name.
    public static func uncovered(_ replica: Replica) throws -> [(region: String, records: Int)] {
        guard let covered = try covered(replica) else { return [] }
        var counts: [String: Int] = [:]
        try replica.read { db in
            for name in replica.tableOrder {
                guard let h = replica.handles[name], let column = h.schema.partition else { continue }
                let sql = "SELECT \(column.quotedDatabaseIdentifier), COUNT(*) FROM \(name.quotedDatabaseIdentifier) GROUP BY 1"
                for row in try Row.fetchAll(db, sql: sql) {
                    let region: String = row[0] ?? ""
                    if !covered.contains(region) { counts[region, default: 0] += row[1] }
                }
            }
        }
        return counts.sorted { $0.key < $1.key }.map { (region: $0.key, records: $0.value) }
    }

    /// One line per uncovered region, for people.
    public static func warnings(_ replica: Replica) throws -> [String] {
        try uncovered(replica).map {
            "\($0.records) record\($0.records == 1 ? "" : "s") of region \"\($0.region)\" go to no remote: no remote's token covers that region (they stay on this replica)"
        }
    }
}
