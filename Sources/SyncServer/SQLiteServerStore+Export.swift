import FieldbookModel
import Foundation
import GRDB
import ReplicaStore

/// Everything an embedded store holds besides its records, as plain values: what
/// `fieldbook-server migrate-store` copies into another store.
public struct EmbeddedStoreState: Sendable {
    public struct Token: Sendable { public var name: String; public var hash: Data; public var regions: String; public var coordinator: Bool
                                    public var createdAt: String; public var revokedAt: String? }
    public struct Site: Sendable { public var site: String; public var position: Int64; public var token: String?; public var lineage: String?
                                   public var lineagePrev: String? }
    public struct Held: Sendable { public var receivedAt: String; public var site: String; public var token: String; public var table: String
                                   public var row: String; public var reason: String; public var change: String; public var newest: Int64
                                   public var error: String? }
    public struct Device: Sendable { public var token: String; public var agreement: Data; public var signing: Data; public var state: String
                                     public var registeredAt: String; public var decidedBy: String?; public var decidedAt: String? }
    public struct Key: Sendable { public var device: String; public var region: String; public var epoch: Int64; public var wrapped: Data
                                  public var sender: String; public var senderAgreement: Data; public var senderSigning: Data; public var createdAt: String }
    public var tokens: [Token] = []
    public var sites: [Site] = []
    public var held: [Held] = []
    public var devices: [Device] = []
    public var keys: [Key] = []
    public var regionEpochs: [(region: String, epoch: Int64)] = []
    public var rosters: [(sender: String, roster: Data, updatedAt: String)] = []
    /// Device names of sites (sealed), by site.
    public var siteNames: [(site: SiteID, name: String)] = []
}

extension SQLiteServerStore {
    /// The store's own tables, read in one transaction.
    public func exportState() throws -> EmbeddedStoreState {
        try replica.read { db in
            var s = EmbeddedStoreState()
            s.tokens = try Row.fetchAll(db, sql: "SELECT * FROM _srv_token ORDER BY name").map {
                .init(name: $0["name"], hash: $0["hash"], regions: $0["regions"], coordinator: $0["coordinator"], createdAt: $0["created_at"],
                      revokedAt: $0["revoked_at"])
            }
            s.sites = try Row.fetchAll(db, sql: "SELECT * FROM _srv_site ORDER BY site").map {
                .init(site: $0["site"], position: $0["position"], token: $0["token"], lineage: $0["lineage"], lineagePrev: $0["lineage_prev"])
            }
            s.held = try Row.fetchAll(db, sql: "SELECT * FROM _srv_quarantine ORDER BY id").map {
                .init(receivedAt: $0["received_at"], site: $0["site"], token: $0["token"], table: $0["tbl"], row: $0["row_id"], reason: $0["reason"],
                      change: $0["change"], newest: $0["newest"], error: $0["error"])
            }
            s.devices = try Row.fetchAll(db, sql: "SELECT * FROM _srv_device ORDER BY token").map {
                .init(token: $0["token"], agreement: $0["agreement"], signing: $0["signing"], state: $0["state"], registeredAt: $0["registered_at"],
                      decidedBy: $0["decided_by"], decidedAt: $0["decided_at"])
            }
            s.keys = try Row.fetchAll(db, sql: "SELECT * FROM _srv_key ORDER BY device, region, epoch").map {
                .init(device: $0["device"], region: $0["region"], epoch: $0["epoch"], wrapped: $0["wrapped"], sender: $0["sender"],
                      senderAgreement: $0["sender_agreement"], senderSigning: $0["sender_signing"], createdAt: $0["created_at"])
            }
            s.regionEpochs = try Row.fetchAll(db, sql: "SELECT region, epoch FROM _srv_region_epoch ORDER BY region").map { ($0[0], $0[1]) }
            s.rosters = try Row.fetchAll(db, sql: "SELECT sender, roster, updated_at FROM _srv_roster ORDER BY sender").map { ($0[0], $0[1], $0[2]) }
            s.siteNames = try Row.fetchAll(db, sql: "SELECT site, name FROM _fb_site WHERE name IS NOT NULL AND idx > 1").compactMap { r in
                let bytes: Data = r[0]
                return SiteID(bytes: [UInt8](bytes)).map { ($0, r[1] as String) }
            }
            return s
        }
    }
}
