import FieldbookModel
import Foundation
import GRDB
import ReplicaStore

/// Device tokens: only their SHA-256 is stored; revoked tokens keep their name.
extension SQLiteServerStore {
    public func credential(hash: [UInt8]) throws -> Credential? {
        try mapped {
            try replica.read { db in
                try Row.fetchOne(db, sql: """
                    SELECT t.*, d.state AS device_state FROM _srv_token t LEFT JOIN _srv_device d ON d.token = t.name
                    WHERE t.hash = ? AND t.revoked_at IS NULL
                    """, arguments: [Data(hash)]).map { r in
                    Credential(token: Self.token(r), deviceRevoked: (r["device_state"] as String?) == DeviceInfo.State.revoked.rawValue)
                }
            }
        }
    }

    static func token(_ r: Row) -> TokenInfo {
        TokenInfo(name: r["name"], regions: (r["regions"] as String).split(separator: ",").map(String.init),
                  coordinator: r["coordinator"], createdAt: r["created_at"], revokedAt: r["revoked_at"])
    }

    public func createToken(name: String, hash: [UInt8], regions: [String], coordinator: Bool) throws -> TokenInfo {
        let info = TokenInfo(name: name, regions: regions, coordinator: coordinator, createdAt: Self.now())
        do {
            try replica.dbQueue.write { db in
                try db.execute(sql: "INSERT INTO _srv_token (name, hash, regions, coordinator, created_at) VALUES (?,?,?,?,?)",
                               arguments: [name, Data(hash), regions.joined(separator: ","), coordinator, info.createdAt])
            }
        } catch let e as DatabaseError where e.resultCode.primaryResultCode == .SQLITE_CONSTRAINT {
            throw ServerError(.conflict, "exists", "a token named \"\(name)\" already exists (revoked tokens keep their name)")
        }
        return info
    }

    public func tokens() throws -> [TokenInfo] {
        try replica.read { db in try Row.fetchAll(db, sql: "SELECT * FROM _srv_token ORDER BY name").map(Self.token) }
    }

    public func revokeToken(name: String) throws {
        let changed = try replica.dbQueue.write { db -> Int in
            try db.execute(sql: "UPDATE _srv_token SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", arguments: [Self.now(), name])
            return db.changesCount
        }
        if changed == 0 { throw ServerError(.notFound, "not_found", "no active token named \"\(name)\"") }
    }
}
