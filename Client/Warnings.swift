import ReplicaStore
import SyncClient

/// Warnings about where records go (standard error; the exit status is unchanged).
enum Warnings {
    /// Warns when no remote takes records of `region` (see `RegionCoverage`).
    static func regionCoverage(_ region: String, _ replica: Replica) {
        guard let covered = try? RegionCoverage.isCovered(region, in: replica), !covered else { return }
        warn("no remote's token covers region \"\(region)\": this record stays on this replica until a remote whose token covers it is added")
    }
}
