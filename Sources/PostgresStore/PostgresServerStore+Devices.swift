import FieldbookModel
import Foundation
import PostgresNIO
import SyncServer

/// Devices, the region keys wrapped for them, each region's key epoch and coordinators'
/// rosters: the same rules as the embedded store (`KeyAuthorizer` decides).
extension PostgresServerStore {
    func deviceInfos(_ conn: PostgresConnection, token name: String? = nil) async throws -> [String: DeviceInfo] {
        var out: [String: DeviceInfo] = [:]
        let rows = try await conn.query("""
            SELECT d.token, d.agreement, d.signing, d.state, d.registered_at, d.decided_by, t.regions, t.coordinator, t.revoked_at
            FROM srv_device d JOIN srv_token t ON t.name = d.token WHERE \(name == nil) OR d.token = \(name ?? "") ORDER BY d.token
            """, logger: logger)
        for try await (token, a, s, state, at, by, regions, coordinator, revoked) in rows.decode(
            (String, Data, Data, String, String, String?, String, Bool, String?).self) {
            out[token] = DeviceInfo(
                device: token, regions: regions.split(separator: ",").map(String.init), coordinator: coordinator,
                agreement: a.base64EncodedString(), signing: s.base64EncodedString(),
                state: revoked != nil ? .revoked : DeviceInfo.State(rawValue: state) ?? .pending, registeredAt: at, decidedBy: by)
        }
        return out
    }

    public func registerDevice(token: TokenInfo, _ registration: DeviceRegistration) async throws -> DeviceInfo {
        let (a, s) = try KeyAuthorizer.registration(registration)
        let (agreement, signing, now) = (Data(a), Data(s), Self.now())
        return try await transaction { conn in
            try await conn.query("""
                INSERT INTO srv_device (token, agreement, signing, state, registered_at) VALUES (\(token.name), \(agreement), \(signing), 'pending', \(now))
                ON CONFLICT (token) DO NOTHING
                """, logger: self.logger)
            for try await (ha, hs, state) in try await conn.query("SELECT agreement, signing, state FROM srv_device WHERE token = \(token.name) FOR UPDATE",
                                                                   logger: self.logger).decode((Data, Data, String).self) {
                if state == DeviceInfo.State.revoked.rawValue {
                    throw ServerError(.forbidden, "device_revoked", "device \"\(token.name)\" was revoked by a coordinator")
                }
                if ha != agreement || hs != signing {
                    throw ServerError(.conflict, "token_in_use",
                        "token \"\(token.name)\" belongs to another device already (each device has its own token); ask the server's operator for a token of its own")
                }
            }
            guard let info = try await self.deviceInfos(conn, token: token.name)[token.name] else {
                throw ServerError(.internalServerError, "store_failed", "device \(token.name) was not stored")
            }
            return info
        }
    }

    public func devices() async throws -> [DeviceInfo] {
        try await transaction { conn in try await self.deviceInfos(conn).values.sorted { $0.device < $1.device } }
    }

    public func device(_ name: String) async throws -> DeviceInfo? {
        try await transaction { conn in try await self.deviceInfos(conn, token: name)[name] }
    }

    public func uploadKeys(_ upload: KeyUploadRequest, token: TokenInfo) async throws -> Int {
        try await transaction { conn in
            // Key uploads are decided on the devices and epochs they see: one at a time.
            try await conn.query("SELECT pg_advisory_xact_lock(7305414190225610003)", logger: self.logger)
            let plan = try KeyAuthorizer.authorize(upload, token: token, devices: try await self.deviceInfos(conn),
                                                   epochs: try await Self.epochs(conn, logger: self.logger))
            let now = Self.now()
            for (k, bytes) in plan.keys {
                let (wrapped, sa, ss) = (Data(bytes), Data(base64Encoded: k.senderAgreement) ?? Data(), Data(base64Encoded: k.senderSigning) ?? Data())
                try await conn.query("""
                    INSERT INTO srv_key (device, region, epoch, wrapped, sender, sender_agreement, sender_signing, created_at)
                    VALUES (\(k.device), \(k.region), \(Int64(k.epoch)), \(wrapped), \(k.sender), \(sa), \(ss), \(now))
                    ON CONFLICT (device, region, epoch) DO UPDATE SET wrapped = excluded.wrapped, sender = excluded.sender,
                        sender_agreement = excluded.sender_agreement, sender_signing = excluded.sender_signing, created_at = excluded.created_at
                    """, logger: self.logger)
            }
            for (region, epoch) in plan.newEpochs {
                try await conn.query("""
                    INSERT INTO srv_region_epoch (region, epoch) VALUES (\(region), \(Int64(epoch))) ON CONFLICT (region) DO UPDATE SET epoch = excluded.epoch
                    """, logger: self.logger)
            }
            if let roster = plan.roster {
                let r = Data(roster)
                try await conn.query("""
                    INSERT INTO srv_roster (sender, roster, updated_at) VALUES (\(token.name), \(r), \(now))
                    ON CONFLICT (sender) DO UPDATE SET roster = excluded.roster, updated_at = excluded.updated_at
                    """, logger: self.logger)
            }
            for name in plan.approve {
                try await conn.query("""
                    UPDATE srv_device SET state = 'approved', decided_by = \(token.name), decided_at = \(now) WHERE token = \(name) AND state != 'revoked'
                    """, logger: self.logger)
            }
            return plan.keys.count
        }
    }

    public func keys(for token: TokenInfo) async throws -> KeysResponse {
        try await transaction { conn in
            let me = try await self.deviceInfos(conn, token: token.name)[token.name]
            var keys: [WrappedKey] = []
            if me?.state == .approved {
                let rows = try await conn.query("""
                    SELECT device, region, epoch, wrapped, sender, sender_agreement, sender_signing FROM srv_key WHERE device = \(token.name) ORDER BY region, epoch
                    """, logger: self.logger)
                for try await (d, r, e, w, s, sa, ss) in rows.decode((String, String, Int64, Data, String, Data, Data).self) {
                    keys.append(WrappedKey(device: d, region: r, epoch: UInt32(clamping: e), wrapped: w.base64EncodedString(), sender: s,
                                           senderAgreement: sa.base64EncodedString(), senderSigning: ss.base64EncodedString()))
                }
            }
            let all = try await Self.epochs(conn, logger: self.logger)
            var rosters: [String] = []
            for try await r in try await conn.query("SELECT roster FROM srv_roster ORDER BY sender", logger: self.logger).decode(Data.self) {
                rosters.append(r.base64EncodedString())
            }
            return KeysResponse(device: me, keys: keys, epochs: all.filter { token.allows(region: $0.key) }, rosters: rosters)
        }
    }

    public func revokeDevice(_ name: String, token: TokenInfo) async throws {
        let now = Self.now()
        try await transaction { conn in
            try KeyAuthorizer.revoke(name, token: token, devices: try await self.deviceInfos(conn))
            try await conn.query("UPDATE srv_device SET state = 'revoked', decided_by = \(token.name), decided_at = \(now) WHERE token = \(name)",
                                 logger: self.logger)
            try await conn.query("DELETE FROM srv_key WHERE device = \(name)", logger: self.logger)
        }
    }
}
