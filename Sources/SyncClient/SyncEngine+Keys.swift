import FieldbookModel
import Foundation
import GRDB
import Logging
import ReplicaStore
import SealedSync
import SyncCore

/// The sealed side of a sync: enrolment and keys before the exchange, sealing on push,
/// opening on pull (docs/SECURITY.md, "Sealed sync").
extension SyncEngine {
    /// Registers this device's keys with the server, takes the region keys wrapped for it, and
    /// opens what was kept for want of them. Throws `.waiting` while no coordinator has approved it.
    @discardableResult
    func enrol(_ summary: inout SyncSummary) async throws -> DeviceInfo {
        let keys = try local { try KeyStore.deviceKeys(replica) }
        let pub = keys.publicKeys
        // The keys first: they name this device as the server holds it. Registered only when the
        // server does not hold this device's keys (its first sync, or a store restored without it).
        var answer = try await retrying("keys") { try await transport.keys() }
        let me: DeviceInfo
        if let known = answer.device, known.agreement == pub.agreementBase64, known.signing == pub.signingBase64 {
            me = known
        } else {
            me = try await retrying("register") {
                try await transport.registerDevice(DeviceRegistration(agreement: pub.agreementBase64, signing: pub.signingBase64))
            }
            answer = try await retrying("keys") { try await transport.keys() }
        }
        if remote.device != me.device {
            try local { try replica.writeDatabase { db in try Remotes.update(db, remote.name, "device = ?", [me.device]) } }
        }
        if me.coordinator {
            let pending = me.state == .pending
            let told = try await KeyDelivery.publishEpochs(replica: replica, transport: transport, me: me, serverEpochs: answer.epochs)
            if !told.isEmpty { summary.notices.append("told \(remote.name) of the keys of \(told.joined(separator: ", ")) (made with another server, or imported)") }
            if !told.isEmpty || pending { answer = try await retrying("keys") { try await transport.keys() } }
        }
        let received = try local { try KeyStore.receive(answer.keys, rosters: answer.rosters, device: me.device, replica: replica) }
        for (name, fp) in received.firstTrusted {
            summary.notices.append("keys received from coordinator \(name), fingerprint \(DevicePublicKeys.spokenForm(of: fp)): trusted from now on (check it with them)")
        }
        for r in received.refused { summary.notices.append("a key was refused: \(r)") }
        if !received.added.isEmpty {
            logger.info("region keys received", metadata: ["keys": .string(received.added.map { "\($0.region)#\($0.epoch)" }.joined(separator: ","))])
            let reopened = try local { try reopenWaiting() }
            if reopened > 0 { logger.info("changes kept for want of a key opened", metadata: ["count": .stringConvertible(reopened)]) }
        }
        if (answer.device?.state ?? me.state) == .pending {
            throw SyncClientError(.waiting,
                "this device waits for a coordinator to approve it. Read this fingerprint out to them (they run `fieldbook keys approve \(me.device) --fingerprint \"…\"`): \(pub.spokenFingerprint). Everything recorded here stays here and goes out after approval")
        }
        return answer.device ?? me
    }

    /// Seals a batch read from the replica, each row with its region's current key.
    func seal(_ cs: Changeset, ring: KeyRing) throws -> Changeset {
        try replica.read { db in
            try ChangesetSealer.seal(cs, keys: ring) { table, id in try replica.partition(of: table, id: id, in: db) }
        }
    }

    /// Opens a page and applies it (see `Receiving.openAndApply`). Runs inside the page's transaction.
    func openAndApply(_ cs: Changeset, w: ReplicaWriter, ring: KeyRing) throws -> ApplyReport {
        try Receiving.openAndApply(cs, w: w, ring: ring, origin: remote.origin, source: remote.name, logger: logger)
    }

    /// Opens again the row changes kept for want of a key; returns how many now applied or were
    /// kept aside for another reason.
    func reopenWaiting() throws -> Int {
        let ring = try KeyStore.keyRing(replica)
        return try replica.write { w in
            var done = 0
            for (id, cs) in try RefusedChanges.waitingForKeys(w.db, remote: remote.name) {
                let opened = try ChangesetSealer.open(cs, keys: ring) { table, rid in try Receiving.region(w, table, rid) }
                if opened.refused.first?.kind == .missingKey { continue }
                try RefusedChanges.remove(w.db, id: id)
                _ = try openAndApply(cs, w: w, ring: ring)
                done += 1
            }
            return done
        }
    }

    /// Regions with changes here that no key lets out: covered by the token but without a key
    /// on this device. A token's regions all held: nothing to look for (the common case, without
    /// a scan). A coordinator's token covers every region: that scan is left to `fieldbook status`.
    static func regionsWithoutKey(_ replica: Replica, ring: KeyRing, covered: Set<String>?) throws -> [String] {
        guard let covered, !covered.isSubset(of: Set(ring.regions)) else { return [] }
        return try KeyStore.regionsWithoutKey(replica, ring: ring).filter { covered.contains($0) }
    }
}

/// What a replica does with sealed changes it receives, from a server or a bundle.
enum Receiving {
    /// Opens `cs` and applies it; what does not open, or breaks the model, is kept aside
    /// (`RefusedChanges`, naming `source` and the writing site) and the rest applies.
    static func openAndApply(_ cs: Changeset, w: ReplicaWriter, ring: KeyRing, origin: Int64, source: String, logger: Logger) throws -> ApplyReport {
        let opened = try ChangesetSealer.open(cs, keys: ring) { table, id in try region(w, table, id) }
        for r in opened.refused {
            logger.warning("a received change does not open; kept aside",
                           metadata: ["table": .string(r.table), "id": .string(r.id), "site": .string(r.site.description), "reason": .string(r.reason)])
            try RefusedChanges.record(w.db, remote: source, table: r.table, row: r.id, site: r.site, kind: RefusedChanges.kind(r.kind),
                                      reason: r.reason, change: r.change)
        }
        var report = try w.apply(opened.clear, origin: origin) { table, rc, error in
            let site = opened.clear.sites[rc.site]
            logger.warning("a received change breaks the model; kept aside",
                           metadata: ["table": .string(table), "id": .string(rc.id), "site": .string(site.description), "reason": .string(error.message)])
            let one = Changeset(sites: opened.clear.sites, tables: [TableChanges(table: table, fields: opened.clear.tables.first { $0.table == table }?.fields ?? [], rows: [rc])])
            try RefusedChanges.record(w.db, remote: source, table: table, row: rc.id, site: site, kind: "invalid", reason: error.message, change: one)
        }
        report.setAside += opened.refused.count
        return report
    }

    /// The region of a row this replica holds or held.
    static func region(_ w: ReplicaWriter, _ table: String, _ id: String) throws -> String? {
        try w.partition(of: table, id: id)
    }
}
