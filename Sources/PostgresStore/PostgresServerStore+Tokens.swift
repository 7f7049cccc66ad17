import FieldbookModel
import Foundation
import PostgresNIO
import SyncServer

extension PostgresServerStore {
    static func tokenInfo(_ name: String, _ regions: String, _ coordinator: Bool, _ created: String, _ revoked: String?) -> TokenInfo {
        TokenInfo(name: name, regions: regions.split(separator: ",").map(String.init), coordinator: coordinator, createdAt: created, revokedAt: revoked)
    }

    public func credential(hash: [UInt8]) async throws -> Credential? {
        let h = Data(hash)
        return try await reading { conn in
            for try await (n, r, c, t, v, state) in try await conn.execute(CredentialStatement(hash: h), logger: self.logger) {
                return Credential(token: Self.tokenInfo(n, r, c, t, v), deviceRevoked: state == DeviceInfo.State.revoked.rawValue)
            }
            return nil
        }
    }

    public func createToken(name: String, hash: [UInt8], regions: [String], coordinator: Bool) async throws -> TokenInfo {
        let info = TokenInfo(name: name, regions: regions, coordinator: coordinator, createdAt: Self.now())
        let (h, r) = (Data(hash), regions.joined(separator: ","))
        do {
            try await leased { conn in
                _ = try await conn.query("""
                    INSERT INTO srv_token (name, hash, regions, coordinator, created_at) VALUES (\(name), \(h), \(r), \(coordinator), \(info.createdAt))
                    """, logger: self.logger)
            }
        } catch where Self.sqlState(error) == "23505" {
            throw ServerError(.conflict, "exists", "a token named \"\(name)\" already exists (revoked tokens keep their name)")
        } catch {
            throw Self.mapped(error)
        }
        return info
    }

    public func tokens() async throws -> [TokenInfo] {
        try await reading { conn in
            var out: [TokenInfo] = []
            let rows = try await conn.query("SELECT name, regions, coordinator, created_at, revoked_at FROM srv_token ORDER BY name", logger: self.logger)
            for try await (n, r, c, t, v) in rows.decode((String, String, Bool, String, String?).self) { out.append(Self.tokenInfo(n, r, c, t, v)) }
            return out
        }
    }

    public func revokeToken(name: String) async throws {
        let now = Self.now()
        let changed = try await transaction { conn -> Int in
            var n = 0
            let rows = try await conn.query("UPDATE srv_token SET revoked_at = \(now) WHERE name = \(name) AND revoked_at IS NULL RETURNING name",
                                            logger: self.logger)
            for try await _ in rows.decode(String.self) { n += 1 }
            return n
        }
        if changed == 0 { throw ServerError(.notFound, "not_found", "no active token named \"\(name)\"") }
    }
}
