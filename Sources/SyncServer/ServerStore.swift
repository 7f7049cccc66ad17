import FieldbookModel
import SyncCore

/// A validated push: the changes to apply, and the row changes kept aside.
public struct PushBatch: Sendable {
    public var site: SiteID
    public var from: Int64
    public var to: Int64
    public var changes: Changeset
    public var quarantined: [(note: QuarantineNote, row: Changeset)]

    public init(site: SiteID, from: Int64, to: Int64, changes: Changeset, quarantined: [(note: QuarantineNote, row: Changeset)]) {
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
    public var cursor: Int64
    public var more: Bool
}

/// A quarantined change as listed by `fieldbook-server quarantine list`.
public struct QuarantineEntry: Sendable, Codable {
    public var receivedAt: String
    public var site: String
    public var token: String
    public var table: String
    public var id: String
    public var reason: String
}

/// Where the server keeps what it accepted. The protocol code (routes, validation, auth) talks
/// only to this; the SQLite store implements it, and a PostgreSQL store can be added beside it.
///
/// Implementations must make `push` atomic: the position check, every change, the quarantine
/// and the new position commit together or not at all.
public protocol ServerStore: Sendable {
    /// The server's own site id.
    var site: SiteID { get }

    /// Applies a push if `batch.from` is not after the position held for `batch.site`
    /// (else throws a `ServerError` with status 409). Each row change must belong to a region of
    /// `token` (else 403). Returns the applied / ignored counts and the new position.
    func push(_ batch: PushBatch, token: TokenInfo) throws -> PushResponse

    /// Changes after `cursor`, at most about `limit` log entries, for `token`'s regions; entries
    /// that `requester` itself pushed are left out.
    func pull(after cursor: Int64, limit: Int, token: TokenInfo, requester: SiteID?) throws -> PullPage

    /// The token with this hash, if it exists and is not revoked.
    func token(hash: [UInt8]) throws -> TokenInfo?
    func createToken(name: String, hash: [UInt8], regions: [String], coordinator: Bool) throws -> TokenInfo
    func tokens() throws -> [TokenInfo]
    func revokeToken(name: String) throws
    func quarantine() throws -> [QuarantineEntry]
}
