import FieldbookModel
import Foundation
import GRDB
import Logging
import ReplicaStore
import SealedSync
import SyncCore

/// Offline bundles (docs/PROTOCOL.md, "Offline bundles"): the changes pending for a remote,
/// sealed and signed, written to a file that a person carries; read back by another replica
/// (which opens and applies them as a pull) or by the server (`fieldbook-server bundle import`).
public enum Bundles {
    /// The origin recorded with changes imported from a bundle: no remote's, so they go on to every remote.
    public static let origin: Int64 = 1

    /// The pending changes for `remote` (all of them from the start with `all`), sealed and signed.
    public static func export(_ replica: Replica, remote: Remote, all: Bool) throws -> (bytes: [UInt8], changes: Int) {
        guard let device = remote.device else {
            throw SyncClientError(.invalidInput,
                "this device has not synced with \(remote.name) yet: a bundle names the device as that server knows it (its first sync registers it)")
        }
        let ring = try KeyStore.keyRing(replica)
        guard !ring.isEmpty else { throw SyncClientError(.waiting, "this device holds no region key yet: a coordinator approves it first") }
        let partitions = (remote.partitions ?? Set(ring.regions)).intersection(ring.regions)
        let from = all ? 0 : remote.pushCursor
        let batch = try replica.changes(since: from, limit: 10_000_000, excludingOrigin: remote.origin, partitions: partitions)
        let sealed = try replica.read { db in
            try ChangesetSealer.seal(batch.changeset, keys: ring) { table, id in try replica.partition(of: table, id: id, in: db) }
        }
        let push = PushRequest(site: replica.info.site, from: from, to: batch.cursor, changes: WireChangeset(sealed))
        return (try OfflineBundle.sign(device: device, push: push, with: try KeyStore.deviceKeys(replica)), sealed.changeCount)
    }

    /// Applies a bundle to this replica: its signature checked, every cell opened with this
    /// replica's keys; what does not open, or breaks the model, is kept aside (`RefusedChanges`).
    public static func importBundle(_ bytes: [UInt8], into replica: Replica, logger: Logger) throws -> (bundle: OfflineBundle, report: ApplyReport) {
        let bundle = try OfflineBundle.open(bytes)
        let changes: Changeset
        do { changes = try bundle.push.changes.changeset() } catch {
            throw SyncClientError(.refused, "the bundle's changes are malformed: \(error)")
        }
        let ring = try KeyStore.keyRing(replica)
        let report = try replica.write { w in
            try Receiving.openAndApply(changes, w: w, ring: ring, origin: origin, source: "bundle from \(bundle.device)", logger: logger)
        }
        return (bundle, report)
    }
}
