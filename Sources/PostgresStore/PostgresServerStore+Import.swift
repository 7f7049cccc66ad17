import FieldbookModel
import Foundation
import PostgresNIO
import SyncServer

/// `fieldbook-server migrate-store --from DIR --database URL`: an embedded store copied into an
/// empty PostgreSQL store, in one transaction (all of it or nothing).
extension PostgresServerStore {
    public struct ImportReport: Sendable {
        public var changes: Int
        public var tokens: Int
        public var devices: Int
        public var keys: Int
        public var held: Int
    }

    /// Copies `state` and the records `pages` yields (changesets in log order, nil at the end)
    /// into this store, which must be empty. Records merge as pushes do, so what the embedded
    /// store held is what this one holds; devices' cursors of the embedded store are refused
    /// (`cursor_reset`) and they pull everything again, as after a restore; site positions and
    /// lineages are kept, so their pushes go on where they were.
    public func importEmbedded(_ state: EmbeddedStoreState, pages: @escaping @Sendable () throws -> Changeset?) async throws -> ImportReport {
        try await transaction { conn in
            for (table, what) in [("fb_row", "records"), ("srv_token", "tokens"), ("srv_device", "devices")] {
                for try await n in try await conn.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)"), logger: self.logger).decode(Int64.self)
                where n > 0 {
                    throw ServerError.badRequest("not_empty", "the database holds \(what) already; migrate-store copies into an empty store only")
                }
            }
            var changes = 0
            while let cs = try pages() {
                _ = try await self.apply(cs, origin: nil, conn)
                changes += cs.changeCount
            }
            for (site, name) in state.siteNames { _ = try await self.siteIndex(site, name: name, conn) }
            for t in state.tokens {
                try await conn.query("""
                    INSERT INTO srv_token (name, hash, regions, coordinator, created_at, revoked_at)
                    VALUES (\(t.name), \(t.hash), \(t.regions), \(t.coordinator), \(t.createdAt), \(t.revokedAt))
                    """, logger: self.logger)
            }
            for s in state.sites {
                try await conn.query("""
                    INSERT INTO srv_site (site, position, token, lineage, lineage_prev) VALUES (\(s.site), \(s.position), \(s.token), \(s.lineage), \(s.lineagePrev))
                    """, logger: self.logger)
            }
            for h in state.held {
                try await conn.query("""
                    INSERT INTO srv_quarantine (received_at, site, token, tbl, row_id, reason, change, newest, error)
                    VALUES (\(h.receivedAt), \(h.site), \(h.token), \(h.table), \(h.row), \(h.reason), \(h.change), \(h.newest), \(h.error))
                    """, logger: self.logger)
            }
            for d in state.devices {
                try await conn.query("""
                    INSERT INTO srv_device (token, agreement, signing, state, registered_at, decided_by, decided_at)
                    VALUES (\(d.token), \(d.agreement), \(d.signing), \(d.state), \(d.registeredAt), \(d.decidedBy), \(d.decidedAt))
                    """, logger: self.logger)
            }
            for k in state.keys {
                try await conn.query("""
                    INSERT INTO srv_key (device, region, epoch, wrapped, sender, sender_agreement, sender_signing, created_at)
                    VALUES (\(k.device), \(k.region), \(k.epoch), \(k.wrapped), \(k.sender), \(k.senderAgreement), \(k.senderSigning), \(k.createdAt))
                    """, logger: self.logger)
            }
            for (region, epoch) in state.regionEpochs {
                try await conn.query("INSERT INTO srv_region_epoch (region, epoch) VALUES (\(region), \(epoch))", logger: self.logger)
            }
            for (sender, roster, at) in state.rosters {
                try await conn.query("INSERT INTO srv_roster (sender, roster, updated_at) VALUES (\(sender), \(roster), \(at))", logger: self.logger)
            }
            return ImportReport(changes: changes, tokens: state.tokens.count, devices: state.devices.count, keys: state.keys.count, held: state.held.count)
        }
    }
}
