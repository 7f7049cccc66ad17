import FieldbookModel
import Foundation
import GRDB
import ReplicaStore
import SyncCore

/// The same replica work on encrypted replicas (issue 8), in the same run as the unencrypted
/// ones, so that the ratios compare like with like: inserts, updates, round-1 apply, the
/// round-2 delta, and opening an encrypted replica with the standard key derivation.
struct EncryptedPhase {
    let workload: Workload
    let dir: URL

    struct Figures {
        var insertMs = 0.0, updateMs = 0.0, applyMs = 0.0, round2Ms = 0.0, openMs = 0.0
        var hash = ""
    }

    func run() throws -> Figures {
        var f = Figures()
        let w = workload
        let cfg = ReplicaConfiguration()
        // The key derivation is measured once, by `openMs`; the work below uses a cheap one.
        let cheap = ReplicaProtection.passphrase("bench passphrase", cost: KeySlots.Cost(logN: 10, r: 8, p: 1))
        let a = try Replica.create(path: dir.appendingPathComponent("ea.sqlite").path, tables: [w.schema], region: "bench",
                                   configuration: cfg, synchronous: .normal, protection: cheap)
        let b = try Replica.create(path: dir.appendingPathComponent("eb.sqlite").path, tables: [w.schema], region: "bench",
                                   configuration: cfg, synchronous: .normal, protection: cheap)
        let h = try a.handle(w.schema.name)
        f.insertMs = try Measure.millis {
            try a.write { tx in for (i, r) in w.records.enumerated() { try tx.insert(h, id: w.ids[i], values: r) } }
        }
        try Measure.checkpoint(a.dbQueue)
        f.updateMs = try Measure.millis {
            try a.write { tx in for u in w.updates { try tx.update(h, id: w.ids[u.row], column: u.column, value: u.value) } }
        }
        try Measure.checkpoint(a.dbQueue)
        let batch = try a.changes(since: 0, limit: Int.max)
        let decoded = try WireChangeset(binary: WireChangeset(batch.changeset).binary()).changeset()
        f.applyMs = try Measure.millis { _ = try b.apply(decoded) }
        try a.write { tx in for u in w.round2 { try tx.update(h, id: w.ids[u.row], column: u.column, value: u.value) } }
        f.round2Ms = try Measure.millis {
            let delta = try a.changes(since: batch.cursor, limit: Int.max)
            _ = try b.apply(try WireChangeset(binary: WireChangeset(delta.changeset).binary()).changeset())
        }
        f.hash = try b.read { db in try Measure.stateHash(db, table: w.schema.name, columns: w.schema.columnNames) }

        // Opening, the standard key derivation (scrypt, 128 MiB) included.
        let path = dir.appendingPathComponent("open.sqlite").path
        _ = try Replica.create(path: path, tables: [w.schema], region: "bench", protection: .passphrase("bench passphrase"))
        f.openMs = try Measure.millis {
            let r = try Replica.open(path: path, tables: [w.schema], passphrase: "bench passphrase")
            _ = try r.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM _fb_site") }
        }
        return f
    }
}
