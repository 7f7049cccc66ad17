import FieldbookModel
import Foundation
import GRDB
import ReplicaStore

/// Devices (their public keys, bound to their tokens), the region keys wrapped for them, and
/// each region's current key epoch. The server holds no key that opens anything.
extension SQLiteServerStore {
    static func createDeviceTables(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS _srv_device (
                token TEXT PRIMARY KEY NOT NULL, agreement BLOB NOT NULL, signing BLOB NOT NULL, state TEXT NOT NULL,
                registered_at TEXT NOT NULL, decided_by TEXT, decided_at TEXT);
            CREATE TABLE IF NOT EXISTS _srv_key (
                device TEXT NOT NULL, region TEXT NOT NULL, epoch INTEGER NOT NULL, wrapped BLOB NOT NULL,
                sender TEXT NOT NULL, sender_agreement BLOB NOT NULL, sender_signing BLOB NOT NULL, created_at TEXT NOT NULL,
                PRIMARY KEY (device, region, epoch));
            CREATE TABLE IF NOT EXISTS _srv_region_epoch (region TEXT PRIMARY KEY NOT NULL, epoch INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS _srv_roster (sender TEXT PRIMARY KEY NOT NULL, roster BLOB NOT NULL, updated_at TEXT NOT NULL);
            """)
    }

    static func deviceInfos(_ db: Database, token name: String? = nil) throws -> [String: DeviceInfo] {
        var out: [String: DeviceInfo] = [:]
        let sql = """
            SELECT d.*, t.regions, t.coordinator, t.revoked_at FROM _srv_device d JOIN _srv_token t ON t.name = d.token
            \(name == nil ? "" : "WHERE d.token = ?") ORDER BY d.token
            """
        for r in try Row.fetchAll(db, sql: sql, arguments: name.map { [$0] } ?? []) {
            let revoked = (r["revoked_at"] as String?) != nil
            let state = revoked ? .revoked : DeviceInfo.State(rawValue: r["state"]) ?? .pending
            out[r["token"]] = DeviceInfo(
                device: r["token"], regions: (r["regions"] as String).split(separator: ",").map(String.init), coordinator: r["coordinator"],
                agreement: (r["agreement"] as Data).base64EncodedString(), signing: (r["signing"] as Data).base64EncodedString(),
                state: state, registeredAt: r["registered_at"], decidedBy: r["decided_by"])
        }
        return out
    }

    static func epochs(_ db: Database) throws -> [String: UInt32] {
        var out: [String: UInt32] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT region, epoch FROM _srv_region_epoch") { out[r[0]] = UInt32(r[1] as Int64) }
        return out
    }

    public func registerDevice(token: TokenInfo, _ registration: DeviceRegistration) throws -> DeviceInfo {
        let (a, s) = try KeyAuthorizer.registration(registration)
        return try mapped {
            try replica.dbQueue.write { db in
                let now = Self.now()
                if let row = try Row.fetchOne(db, sql: "SELECT agreement, signing, state FROM _srv_device WHERE token = ?", arguments: [token.name]) {
                    if row["state"] as String == DeviceInfo.State.revoked.rawValue {
                        throw ServerError(.forbidden, "device_revoked", "device \"\(token.name)\" was revoked by a coordinator")
                    }
                    if (row["agreement"] as Data) != Data(a) || (row["signing"] as Data) != Data(s) {
                        // One device per token: another device (or someone who holds the token)
                        // cannot take the place of the one a coordinator approved.
                        throw ServerError(.conflict, "token_in_use",
                            "token \"\(token.name)\" belongs to another device already (each device has its own token); ask the server's operator for a token of its own")
                    }
                } else {
                    try db.execute(sql: "INSERT INTO _srv_device (token, agreement, signing, state, registered_at) VALUES (?,?,?,'pending',?)",
                                   arguments: [token.name, Data(a), Data(s), now])
                }
                return try Self.deviceInfos(db, token: token.name)[token.name]!
            }
        }
    }

    public func devices() throws -> [DeviceInfo] {
        try mapped { try replica.read { db in try Self.deviceInfos(db).values.sorted { $0.device < $1.device } } }
    }

    public func device(_ name: String) throws -> DeviceInfo? {
        try mapped { try replica.read { db in try Self.deviceInfos(db, token: name)[name] } }
    }

    public func uploadKeys(_ upload: KeyUploadRequest, token: TokenInfo) throws -> Int {
        try mapped {
            try replica.dbQueue.write { db in
                let plan = try KeyAuthorizer.authorize(upload, token: token, devices: try Self.deviceInfos(db), epochs: try Self.epochs(db))
                let now = Self.now()
                for (k, bytes) in plan.keys {
                    try db.execute(sql: """
                        INSERT OR REPLACE INTO _srv_key (device, region, epoch, wrapped, sender, sender_agreement, sender_signing, created_at)
                        VALUES (?,?,?,?,?,?,?,?)
                        """, arguments: [k.device, k.region, Int64(k.epoch), Data(bytes), k.sender,
                                         Data(base64Encoded: k.senderAgreement), Data(base64Encoded: k.senderSigning), now])
                }
                for (region, epoch) in plan.newEpochs {
                    try db.execute(sql: "INSERT INTO _srv_region_epoch (region, epoch) VALUES (?, ?) ON CONFLICT (region) DO UPDATE SET epoch = excluded.epoch",
                                   arguments: [region, Int64(epoch)])
                }
                if let roster = plan.roster {
                    try db.execute(sql: "INSERT OR REPLACE INTO _srv_roster (sender, roster, updated_at) VALUES (?, ?, ?)",
                                   arguments: [token.name, Data(roster), now])
                }
                for name in plan.approve {
                    try db.execute(sql: "UPDATE _srv_device SET state = 'approved', decided_by = ?, decided_at = ? WHERE token = ? AND state != 'revoked'",
                                   arguments: [token.name, now, name])
                }
                return plan.keys.count
            }
        }
    }

    public func keys(for token: TokenInfo) throws -> KeysResponse {
        try mapped {
            try replica.read { db in
                let me = try Self.deviceInfos(db, token: token.name)[token.name]
                var keys: [WrappedKey] = []
                if me?.state == .approved {
                    for r in try Row.fetchAll(db, sql: "SELECT * FROM _srv_key WHERE device = ? ORDER BY region, epoch", arguments: [token.name]) {
                        keys.append(WrappedKey(device: r["device"], region: r["region"], epoch: UInt32(r["epoch"] as Int64),
                                               wrapped: (r["wrapped"] as Data).base64EncodedString(), sender: r["sender"],
                                               senderAgreement: (r["sender_agreement"] as Data).base64EncodedString(),
                                               senderSigning: (r["sender_signing"] as Data).base64EncodedString()))
                    }
                }
                let all = try Self.epochs(db)
                let rosters = try Data.fetchAll(db, sql: "SELECT roster FROM _srv_roster ORDER BY sender").map { $0.base64EncodedString() }
                return KeysResponse(device: me, keys: keys, epochs: all.filter { token.allows(region: $0.key) }, rosters: rosters)
            }
        }
    }

    public func revokeDevice(_ name: String, token: TokenInfo) throws {
        try mapped {
            try replica.dbQueue.write { db in
                try KeyAuthorizer.revoke(name, token: token, devices: try Self.deviceInfos(db))
                try db.execute(sql: "UPDATE _srv_device SET state = 'revoked', decided_by = ?, decided_at = ? WHERE token = ?",
                               arguments: [token.name, Self.now(), name])
                try db.execute(sql: "DELETE FROM _srv_key WHERE device = ?", arguments: [name])
            }
        }
    }
}
