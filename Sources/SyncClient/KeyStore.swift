@preconcurrency import Crypto
import FieldbookModel
import Foundation
import GRDB
import ReplicaStore
import SealedSync

/// The keys a replica holds, inside its own (encrypted) file and nowhere else: the device's key
/// pairs, the region keys it received or created, and the coordinators whose keys it trusts.
public enum KeyStore {
    static func ensureTables(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS _fb_device_key (one INTEGER PRIMARY KEY CHECK (one = 1), private BLOB NOT NULL, created_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS _fb_region_key (
                region TEXT NOT NULL, epoch INTEGER NOT NULL, key BLOB NOT NULL, sender TEXT, sender_fingerprint TEXT,
                received_at TEXT NOT NULL, PRIMARY KEY (region, epoch));
            CREATE TABLE IF NOT EXISTS _fb_coordinator (
                fingerprint TEXT PRIMARY KEY NOT NULL, name TEXT, trusted_at TEXT NOT NULL, how TEXT NOT NULL,
                agreement BLOB, signing BLOB);
            """)
    }

    /// The device's keys, made on first use (`fieldbook init` makes them; a replica of an
    /// earlier release gets them on its first sync).
    public static func deviceKeys(_ replica: Replica) throws -> DeviceKeys {
        if let raw = try replica.read({ db -> Data? in
            guard try db.tableExists("_fb_device_key") else { return nil }
            return try Data.fetchOne(db, sql: "SELECT private FROM _fb_device_key")
        }) {
            return try DeviceKeys(rawRepresentation: [UInt8](raw))
        }
        return try replica.writeDatabase { db in
            try ensureTables(db)
            if let raw = try Data.fetchOne(db, sql: "SELECT private FROM _fb_device_key") { return try DeviceKeys(rawRepresentation: [UInt8](raw)) }
            let keys = DeviceKeys()
            try db.execute(sql: "INSERT INTO _fb_device_key (one, private, created_at) VALUES (1, ?, ?)",
                           arguments: [Data(keys.rawRepresentation), now()])
            return keys
        }
    }

    /// Every region key this replica holds.
    public static func keyRing(_ replica: Replica) throws -> KeyRing {
        try replica.read { db in try keyRing(db) }
    }

    static func keyRing(_ db: Database) throws -> KeyRing {
        var ring = KeyRing()
        guard try db.tableExists("_fb_region_key") else { return ring }
        for r in try Row.fetchAll(db, sql: "SELECT region, epoch, key FROM _fb_region_key") {
            ring.add(region: r[0], epoch: UInt32(r[1] as Int64), key: SymmetricKey(data: r[2] as Data))
        }
        return ring
    }

    /// Stores a region key (created here, received, or imported); an existing one is kept.
    public static func add(_ db: Database, region: String, epoch: UInt32, key: SymmetricKey, sender: String?, senderFingerprint: String?) throws {
        try ensureTables(db)
        try db.execute(sql: "INSERT OR IGNORE INTO _fb_region_key (region, epoch, key, sender, sender_fingerprint, received_at) VALUES (?,?,?,?,?,?)",
                       arguments: [region, Int64(epoch), key.withUnsafeBytes { Data($0) }, sender, senderFingerprint, now()])
    }

    /// The coordinators' fingerprints this replica takes keys from.
    public static func trusted(_ db: Database) throws -> [String: String] {
        guard try db.tableExists("_fb_coordinator") else { return [:] }
        var out: [String: String] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT fingerprint, how FROM _fb_coordinator") { out[r[0]] = r[1] }
        return out
    }

    public static func trust(_ db: Database, fingerprint: String, name: String?, how: String) throws {
        try ensureTables(db)
        try db.execute(sql: "INSERT OR IGNORE INTO _fb_coordinator (fingerprint, name, trusted_at, how) VALUES (?,?,?,?)",
                       arguments: [fingerprint, name, now(), how])
    }

    /// Trusts a coordinator's device and remembers its public keys (to check its rosters and
    /// to vouch for it in this replica's own).
    public static func trust(_ db: Database, keys: DevicePublicKeys, name: String?, how: String) throws {
        try trust(db, fingerprint: keys.fingerprint, name: name, how: how)
        try db.execute(sql: "UPDATE _fb_coordinator SET agreement = ?, signing = ? WHERE fingerprint = ?",
                       arguments: [Data(keys.agreement), Data(keys.signing), keys.fingerprint])
    }

    /// The trusted coordinators whose public keys are known.
    public static func trustedKeys(_ db: Database) throws -> [DevicePublicKeys] {
        guard try db.tableExists("_fb_coordinator") else { return [] }
        return try Row.fetchAll(db, sql: "SELECT agreement, signing FROM _fb_coordinator WHERE agreement IS NOT NULL ORDER BY fingerprint").map {
            DevicePublicKeys(agreement: [UInt8]($0[0] as Data), signing: [UInt8]($0[1] as Data))
        }
    }

    /// This replica's signed roster: itself and the coordinators it trusts (`CoordinatorRoster`).
    public static func roster(_ replica: Replica) throws -> String {
        let me = try deviceKeys(replica)
        let members = try replica.read { db in try trustedKeys(db) }
        return Data(try CoordinatorRoster.sign(members, by: me, issuedMillis: UInt64(Date().timeIntervalSince1970 * 1000))).base64EncodedString()
    }

    /// What taking keys from a server did.
    public struct Received: Sendable {
        public var added: [(region: String, epoch: UInt32)] = []
        /// Coordinators trusted now on first use (no coordinator was trusted before): name and fingerprint.
        public var firstTrusted: [(name: String, fingerprint: String)] = []
        /// Keys refused: from a coordinator this replica does not trust, or that did not open.
        public var refused: [String] = []
    }

    /// Takes the wrapped keys a server relays: each opens only with this device's private key and
    /// only if it was wrapped by the coordinator's device it names. Coordinators are trusted on
    /// first use when none is trusted yet (`fieldbook keys trust FINGERPRINT` beforehand pins one).
    public static func receive(_ wrapped: [WrappedKey], rosters: [String] = [], device: String, replica: Replica) throws -> Received {
        let me = try deviceKeys(replica)
        let signed = rosters.compactMap { Data(base64Encoded: $0).flatMap { CoordinatorRoster.verify([UInt8]($0)) } }
        // Nothing new (the usual sync): no write at all.
        let news = try replica.read { db -> Bool in
            let held = try keyRing(db)
            if wrapped.contains(where: { held.key($0.region, epoch: $0.epoch) == nil }) { return true }
            let trusted = try trusted(db)
            return signed.contains { r in trusted[r.signer.fingerprint] != nil && r.members.contains { trusted[$0.fingerprint] == nil } }
        }
        guard news else { return Received() }
        return try replica.writeDatabase { db in
            try ensureTables(db)
            var out = Received()
            let held = try keyRing(db)
            var trusted = try trusted(db)
            // First use: the first coordinator whose key arrives, when none is trusted yet.
            if trusted.isEmpty, let w = wrapped.first(where: { held.key($0.region, epoch: $0.epoch) == nil }),
               let sender = try? DevicePublicKeys(agreement: w.senderAgreement, signing: w.senderSigning) {
                try trust(db, keys: sender, name: w.sender, how: "first use")
                trusted[sender.fingerprint] = "first use"
                out.firstTrusted.append((w.sender, sender.fingerprint))
            }
            // Then whom trusted coordinators vouch for, until nothing more is learnt.
            var learnt = true
            while learnt {
                learnt = false
                for r in signed where trusted[r.signer.fingerprint] != nil {
                    for m in r.members where trusted[m.fingerprint] == nil {
                        try trust(db, keys: m, name: nil, how: "vouched for by \(r.signer.fingerprint)")
                        trusted[m.fingerprint] = "vouched"
                        learnt = true
                    }
                }
            }
            for w in wrapped where held.key(w.region, epoch: w.epoch) == nil {
                guard let sender = try? DevicePublicKeys(agreement: w.senderAgreement, signing: w.senderSigning),
                      let bytes = Data(base64Encoded: w.wrapped) else {
                    out.refused.append("\(w.region) epoch \(w.epoch): malformed")
                    continue
                }
                let fp = sender.fingerprint
                guard trusted[fp] != nil else {
                    // Not the sender's fingerprint: a server that sends keys of its own would
                    // have it pasted into `keys trust` as it stands.
                    out.refused.append("\(w.region) epoch \(w.epoch): from \"\(w.sender)\", a coordinator this device does not trust; if that is your coordinator, ask them to read out their fingerprint (`fieldbook keys fingerprint` on their laptop) and run `fieldbook keys trust` with what they read")
                    continue
                }
                do {
                    let key = try KeyWrap.unwrap([UInt8](bytes), region: w.region, epoch: w.epoch, device: device, with: me, from: sender)
                    try add(db, region: w.region, epoch: w.epoch, key: key, sender: w.sender, senderFingerprint: fp)
                    out.added.append((w.region, w.epoch))
                } catch {
                    out.refused.append("\(w.region) epoch \(w.epoch): \(error)")
                }
            }
            return out
        }
    }

    /// The regions of this replica's live records for which it holds no key (they cannot go
    /// out sealed), by a scan of the record tables.
    public static func regionsWithoutKey(_ replica: Replica, ring: KeyRing) throws -> [String] {
        let held = Set(ring.regions)
        let present = try replica.read { db -> Set<String> in
            var out = Set<String>()
            for t in FieldbookSchema.tables where t.partition != nil && t.parent == nil {
                for r in try String.fetchAll(db, sql: "SELECT DISTINCT \(t.partition!) FROM \(t.name)") { out.insert(r) }
            }
            return out
        }
        return present.subtracting(held).sorted()
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }
}
