/// The HTTP sync protocol's constants and messages, shared by client and server.
/// docs/PROTOCOL.md is the exact specification.
public enum SyncProtocol {
    /// The protocol version this build speaks. 2: values travel sealed (docs/PROTOCOL.md,
    /// "Sealed values"); a client or server of version 1 is told to update.
    public static let version = 2
    /// The record schema version this build speaks (tables and fields of `FieldbookSchema`).
    public static let schemaVersion = FieldbookSchema.version

    public static let protocolHeader = "Fieldbook-Protocol"
    /// On push and pull: the id of the last push this server acknowledged to the sending
    /// replica, or `none` (docs/PROTOCOL.md, "Site lineage").
    public static let ackHeader = "Fieldbook-Site-Ack"
    /// On push: this push's own id (32 hex digits), repeated when the push is retried.
    public static let pushIDHeader = "Fieldbook-Push-Id"
    public static let schemaHeader = "Fieldbook-Schema"

    public static let pushPath = "/v1/push"
    public static let pullPath = "/v1/pull"
    public static let healthPath = "/v1/health"
    /// `GET`: the server's metrics in the Prometheus text format (with the metrics token only).
    public static let metricsPath = "/metrics"
    public static let heldPath = "/v1/held"
    public static let scopePath = "/v1/scope"
    public static let openAPIPath = "/openapi.json"
    /// `PUT`: register this token's device keys; `GET`: its state.
    public static let devicePath = "/v1/device"
    /// `GET` (coordinators): every registered device.
    public static let devicesPath = "/v1/devices"
    /// `POST` (coordinators): revoke a device.
    public static let revokePath = "/v1/devices/revoke"
    /// `GET`: the region keys wrapped for this token's device; `POST` (coordinators): deliver keys.
    public static let keysPath = "/v1/keys"

    /// A region scope that covers every region (coordinator tokens only).
    public static let allRegions = "*"
}

/// `POST /v1/push`: a batch of changes from one site. `from` and `to` are positions in the
/// sender's own change log: the batch covers the changes after `from` up to `to`. The server
/// remembers the last `to` it accepted per site, so a re-sent batch changes nothing and a batch
/// that starts after that position (a gap) is refused.
public struct PushRequest: Codable, Sendable {
    public var site: SiteID
    public var from: Int64
    public var to: Int64
    public var changes: WireChangeset

    public init(site: SiteID, from: Int64, to: Int64, changes: WireChangeset) {
        self.site = site
        self.from = from
        self.to = to
        self.changes = changes
    }
}

/// A change the server kept aside instead of applying (its clock was too far ahead).
public struct QuarantineNote: Codable, Sendable, Equatable {
    public var table: String
    public var id: String
    public var reason: String

    public init(table: String, id: String, reason: String) {
        self.table = table
        self.id = id
        self.reason = reason
    }
}

/// The answer to a push.
public struct PushResponse: Codable, Sendable, Equatable {
    /// Changes that altered the server's state.
    public var applied: Int
    /// Changes the server already had or that lost to newer ones.
    public var ignored: Int
    /// Row changes kept aside, not applied.
    public var quarantined: [QuarantineNote]
    /// The position the server now holds for this site (the `to` of the last accepted batch).
    public var position: Int64

    public init(applied: Int, ignored: Int, quarantined: [QuarantineNote], position: Int64) {
        self.applied = applied
        self.ignored = ignored
        self.quarantined = quarantined
        self.position = position
    }
}

/// `GET /v1/pull?cursor=C&limit=N`: changes after the cursor, in server order.
public struct PullResponse: Codable, Sendable {
    public var changes: WireChangeset
    /// Opaque; pass it back as `cursor` to continue. Never a time.
    public var cursor: String
    /// Whether more changes follow.
    public var more: Bool

    public init(changes: WireChangeset, cursor: String, more: Bool) {
        self.changes = changes
        self.cursor = cursor
        self.more = more
    }
}

/// `GET /v1/held?site=S`: the changes of a site that the server holds in quarantine.
public struct HeldResponse: Codable, Sendable, Equatable {
    public var held: [QuarantineNote]

    public init(held: [QuarantineNote]) { self.held = held }
}

/// `GET /v1/scope`: what the request's token may push and pull.
public struct ScopeResponse: Codable, Sendable, Equatable {
    /// The token's name.
    public var token: String
    /// Its regions; `*` (coordinators only) for every region.
    public var regions: [String]
    public var coordinator: Bool

    public init(token: String, regions: [String], coordinator: Bool) {
        self.token = token
        self.regions = regions
        self.coordinator = coordinator
    }

    /// The regions a push to this server is limited to; nil for every region.
    public var partitions: Set<String>? {
        coordinator && regions.contains(SyncProtocol.allRegions) ? nil : Set(regions)
    }
}

/// `GET /v1/health`: `{"status":"ok"}` for anyone — nothing that names the software, its
/// version or the store, so a scan does not single out a Fieldbook server; the protocol, schema
/// and the store's site only for the bearer of the metrics token.
public struct HealthResponse: Codable, Sendable {
    public var status: String
    public var `protocol`: Int?
    public var schema: Int?
    public var site: SiteID?

    public init(status: String, protocol: Int? = nil, schema: Int? = nil, site: SiteID? = nil) {
        self.status = status
        self.protocol = `protocol`
        self.schema = schema
        self.site = site
    }
}

/// Every error response: `{"error": {"code": "...", "message": "..."}}`.
public struct ErrorResponse: Codable, Sendable, Error {
    public struct Body: Codable, Sendable {
        public var code: String
        public var message: String
    }

    public var error: Body

    public init(code: String, message: String) {
        error = Body(code: code, message: message)
    }
}
