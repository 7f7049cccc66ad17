import FieldbookModel
import SyncCore

/// A validated push: the changes to apply, and the row changes kept aside.
public struct PushBatch: Sendable {
    public var site: SiteID
    public var from: Int64
    public var to: Int64
    public var changes: Changeset
    public var quarantined: [(note: QuarantineNote, row: Changeset)]
    /// What the sender says of its site's push history (see `SiteLineage`).
    public var lineage: SiteLineage.Claim = .absent

    public init(site: SiteID, from: Int64, to: Int64, changes: Changeset, quarantined: [(note: QuarantineNote, row: Changeset)],
                lineage: SiteLineage.Claim = .absent) {
        self.lineage = lineage
        self.site = site
        self.from = from
        self.to = to
        self.changes = changes
        self.quarantined = quarantined
    }
}

/// A page of changes for a pull.
public struct PullPage: Sendable {
    public var changes: Changeset
    public var cursor: StoreCursor
    public var more: Bool

    public init(changes: Changeset, cursor: StoreCursor, more: Bool) {
        self.changes = changes
        self.cursor = cursor
        self.more = more
    }
}

/// A quarantined change as listed by `fieldbook-server quarantine list`.
public struct QuarantineEntry: Sendable, Codable {
    public var id: Int64
    public var receivedAt: String
    public var site: String
    public var token: String
    public var table: String
    public var row: String
    public var reason: String
    /// Why an attempt to release it failed, if one did.
    public var error: String?

    public init(id: Int64, receivedAt: String, site: String, token: String, table: String, row: String, reason: String, error: String?) {
        (self.id, self.receivedAt, self.site, self.token, self.table, self.row, self.reason, self.error) =
            (id, receivedAt, site, token, table, row, reason, error)
    }
}

/// Which quarantined changes an operator command means.
public enum QuarantineSelection: Sendable, Equatable {
    case one(Int64)
    case all
}

/// Where the server keeps what it accepted. The protocol code (routes, validation) talks only to
/// this; the SQLite store implements it, and a PostgreSQL store can be added beside it. Every
/// call is `async`: a store that blocks (SQLite) runs its work on a thread pool, off the event
/// loops; a networked one (PostgreSQL) awaits its connections.
///
/// Implementations must make `push` atomic: the position check, the authorisation
/// (`PushAuthorizer`, on facts read in the same transaction), every change, the quarantine and
/// the new position commit together or not at all.
public protocol ServerStore: Sendable {
    /// The server's own site id.
    var site: SiteID { get }
    /// Answers when the store can be read (`GET /v1/health`); throws when it cannot.
    func ping() async throws
    /// Applies a push if `SiteLineage.push` accepts its lineage (else 409 `site_forked`),
    /// `batch.from` is not after the position held for `batch.site` (else 409 `sequence_gap`) and `PushAuthorizer` allows it (else 403/400).
    /// Returns the applied / ignored counts, what was held, and the new position.
    func push(_ batch: PushBatch, token: TokenInfo) async throws -> PushResponse
    /// Changes after `cursor` (nil: from the start), at most about `limit` log entries, for
    /// `token`'s regions; entries that `requester` itself pushed are left out. A cursor this store
    /// did not issue, or issued in a timeline it no longer has (restored from an older backup),
    /// throws `ServerError` 409 `cursor_reset`; a requester whose `lineage` claim
    /// `SiteLineage.pullAllowed` refuses, 409 `site_forked`.
    func pull(after cursor: StoreCursor?, limit: Int, token: TokenInfo, requester: SiteID?,
              lineage: SiteLineage.Claim) async throws -> PullPage
    /// Applies the quarantined changes that are no longer ahead of `now` (physical ms); returns how many.
    func releaseDue(now: Int64) async throws -> Int
    /// The quarantined changes pushed under `site` by `token` (what a device is told is held).
    func held(site: SiteID, token: TokenInfo) async throws -> [QuarantineNote]
    /// The token with this hash, if it exists and is not revoked, and whether its device was
    /// revoked — what every request needs to know, in one read.
    func credential(hash: [UInt8]) async throws -> Credential?
    func createToken(name: String, hash: [UInt8], regions: [String], coordinator: Bool) async throws -> TokenInfo
    func tokens() async throws -> [TokenInfo]
    func revokeToken(name: String) async throws
    func quarantine() async throws -> [QuarantineEntry]
    /// Applies quarantined changes now, however far ahead their clocks; returns how many.
    func releaseQuarantine(_ which: QuarantineSelection) async throws -> Int
    /// Deletes quarantined changes without applying them; returns how many.
    func dropQuarantine(_ which: QuarantineSelection) async throws -> Int

    // Devices and keys (docs/PROTOCOL.md, "Keys"): the store keeps public keys, wrapped keys and
    // epochs, never a key that opens anything.

    /// Registers the token's device keys: a new device is pending. One device per token: other
    /// keys under a token that has a device are refused (409 `token_in_use`), a revoked device
    /// too (403 `device_revoked`); the same keys again change nothing.
    func registerDevice(token: TokenInfo, _ registration: DeviceRegistration) async throws -> DeviceInfo
    func devices() async throws -> [DeviceInfo]
    func device(_ name: String) async throws -> DeviceInfo?
    /// Stores what `KeyAuthorizer` allows of a coordinator's upload, in one transaction; returns how many keys.
    func uploadKeys(_ upload: KeyUploadRequest, token: TokenInfo) async throws -> Int
    /// The keys wrapped for the token's device (none until it is approved) and the current epoch of each of its regions.
    func keys(for token: TokenInfo) async throws -> KeysResponse
    /// Marks a device revoked and forgets the keys wrapped for it.
    func revokeDevice(_ name: String, token: TokenInfo) async throws
}
