import FieldbookModel
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix

/// The HTTP routes of the sync protocol (docs/PROTOCOL.md), over any `ServerStore`.
public struct SyncRoutes: Sendable {
    public let store: any ServerStore
    public let configuration: ServerConfiguration
    public let metrics: ServerMetrics

    public init(store: any ServerStore, configuration: ServerConfiguration, metrics: ServerMetrics = ServerMetrics()) {
        self.store = store
        self.configuration = configuration
        self.metrics = metrics
    }

    static let protocolHeader = HTTPField.Name(SyncProtocol.protocolHeader)!
    static let schemaHeader = HTTPField.Name(SyncProtocol.schemaHeader)!

    /// The router with every route and the JSON error middleware.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        router.add(middleware: JSONErrorMiddleware())
        router.get(RouterPath(SyncProtocol.healthPath)) { request, _ in
            // Healthy means the store answers, not merely that the process runs.
            do { try await store.ping() } catch {
                throw ServerError(.serviceUnavailable, "store_unavailable", "the store does not answer: \(error)")
            }
            // Anonymous callers learn only that something answers; the details identify the
            // software and the store, so they are for the operator (the metrics token's bearer).
            guard isMetricsBearer(request) else { return try HTTPBody.json(HealthResponse(status: "ok"), for: request) }
            return try HTTPBody.json(HealthResponse(status: "ok", protocol: SyncProtocol.version, schema: SyncProtocol.schemaVersion, site: store.site),
                                     for: request)
        }
        router.get(RouterPath(SyncProtocol.metricsPath)) { request, _ in try scrape(request) }
        router.get(RouterPath(SyncProtocol.openAPIPath)) { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try OpenAPI.document())))
        }
        router.post(RouterPath(SyncProtocol.pushPath)) { request, context in try await push(request, context) }
        router.get(RouterPath(SyncProtocol.pullPath)) { request, context in try await pull(request, context) }
        router.get(RouterPath(SyncProtocol.heldPath)) { request, _ in try await held(request) }
        addKeyRoutes(to: router)
        router.get(RouterPath(SyncProtocol.scopePath)) { request, _ in
            let token = try await authenticated(request)
            return try HTTPBody.json(ScopeResponse(token: token.name, regions: token.regions, coordinator: token.coordinator), for: request)
        }
        return router
    }

    func authenticate(_ request: Request) async throws -> Credential {
        guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") else { throw ServerError.unauthorized }
        let hash = [UInt8](Tokens.hash(String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces)))
        guard let credential = try await store.credential(hash: hash) else { throw ServerError.unauthorized }
        return credential
    }

    /// Checks the protocol and schema headers; returns the client's schema version (this
    /// server serves versions `FieldbookSchema.oldestServedVersion` up to its own).
    @discardableResult
    /// `GET /metrics`: the Prometheus text format, for the bearer of the metrics token
    /// (`ServerConfiguration.metricsTokenHash`); 404 when no metrics token is set.
    func scrape(_ request: Request) throws -> Response {
        guard configuration.metricsTokenHash != nil else {
            throw ServerError(.notFound, "not_found", "this server serves no metrics (start it with --metrics-token-file)")
        }
        guard isMetricsBearer(request) else { throw ServerError.unauthorized }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.text())))
    }

    /// Whether the request bears the metrics token (false when the server has none).
    func isMetricsBearer(_ request: Request) -> Bool {
        guard let expected = configuration.metricsTokenHash, let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") else { return false }
        return Tokens.constantTimeEqual([UInt8](Tokens.hash(String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces))), expected)
    }

    func checkVersions(_ request: Request) throws -> Int {
        guard let p = request.headers[Self.protocolHeader], let s = request.headers[Self.schemaHeader] else {
            throw ServerError.badRequest("missing_version",
                "send the headers \(SyncProtocol.protocolHeader): \(SyncProtocol.version) and \(SyncProtocol.schemaHeader): \(SyncProtocol.schemaVersion)")
        }
        let served = FieldbookSchema.oldestServedVersion...SyncProtocol.schemaVersion
        guard Int(p) == SyncProtocol.version, let schema = Int(s), served.contains(schema) else {
            throw ServerError(.upgradeRequired, "unsupported_version",
                "this server speaks protocol \(SyncProtocol.version), schemas \(served.lowerBound) to \(served.upperBound); the request asked for protocol \(p.prefix(20)), schema \(s.prefix(20)). Update fieldbook (client or server) so that both speak the same versions")
        }
        return schema
    }

    func push(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let token = try await authenticated(request)
        let data = try await HTTPBody.read(request, maxBytes: configuration.maxBodyBytes)
        let body: PushRequest
        switch HTTPBody.mediaType(of: request) {
        case SyncProtocol.binaryMediaType:
            do {
                body = try PushRequest(binary: [UInt8](data), maxChanges: configuration.maxBatchChanges)
            } catch where error.kind == .tooLarge {
                throw ServerError(.contentTooLarge, "batch_too_large",
                                  "\(error.reason); this server accepts at most \(configuration.maxBatchChanges) changes per push")
            } catch {
                throw ServerError.badRequest("malformed", error.description)
            }
        case "application/json", nil:
            // Counted before decoding: the decoder would allocate for every value first.
            let budget = JSONBudget.maxValues(forChanges: configuration.maxBatchChanges)
            guard JSONBudget.count(data, limit: budget) <= budget else {
                throw ServerError(.contentTooLarge, "batch_too_large",
                                  "the body holds more values than a push of \(configuration.maxBatchChanges) changes can; send smaller batches")
            }
            body = try JSONDecoder().decode(PushRequest.self, from: data)
        case let other?:
            throw ServerError(.unsupportedMediaType, "unsupported_media_type",
                "Content-Type \"\(other)\" is not supported; send application/json or \(SyncProtocol.binaryMediaType)")
        }
        var planned = try PushPlanner.plan(body, now: configuration.clock(), maxDriftMillis: configuration.maxDriftMillis,
                                           maxBatchChanges: configuration.maxBatchChanges)
        planned.lineage = try Self.lineage(request, push: true)
        let batch = planned
        let store = self.store
        let now = configuration.clock()
        let logger = context.logger
        await Self.releaseDue(store, now: now, logger: logger)
        let result = try await store.push(batch, token: token)
        metrics.pushed.increment(by: Int64(result.applied + result.ignored))
        metrics.held.increment(by: Int64(result.quarantined.count))
        // Per request, naming the token and site: a diary of the monitors, so debug only.
        context.logger.debug("push", metadata: [
            "token": .string(token.name), "site": .string(body.site.description), "from": .stringConvertible(body.from),
            "to": .stringConvertible(body.to), "applied": .stringConvertible(result.applied),
            "ignored": .stringConvertible(result.ignored), "quarantined": .stringConvertible(result.quarantined.count),
        ])
        return try HTTPBody.json(result, for: request)
    }

    static let ackHeader = HTTPField.Name(SyncProtocol.ackHeader)!
    static let pushIDHeader = HTTPField.Name(SyncProtocol.pushIDHeader)!

    /// The request's lineage headers (see `SiteLineage`), checked.
    static func lineage(_ request: Request, push: Bool) throws -> SiteLineage.Claim {
        let ack = request.headers[ackHeader], id = push ? request.headers[pushIDHeader] : nil
        guard let claim = SiteLineage.claim(ack: ack, id: id, needsID: push) else {
            throw ServerError.badRequest("invalid_lineage",
                "\(SyncProtocol.ackHeader) must be \"none\" or 32 hex digits, and \(SyncProtocol.pushIDHeader) 32 hex digits, sent together")
        }
        return claim
    }

    /// Applies the held changes that are due. A failure here is logged, never the request's
    /// failure: the held changes stay held, and pushes and pulls go on.
    static func releaseDue(_ store: any ServerStore, now: Int64, logger: Logger) async {
        do {
            let n = try await store.releaseDue(now: now)
            if n > 0 { logger.info("released held changes", metadata: ["count": .stringConvertible(n)]) }
        } catch {
            logger.error("releasing held changes failed; they stay held", metadata: ["error": .string("\(error)")])
        }
    }

    /// `GET /v1/held?site=S`: the changes of site S, pushed with this token, that the server holds.
    func held(_ request: Request) async throws -> Response {
        let token = try await authenticated(request)
        guard let s = request.uri.queryParameters["site"].map(String.init), let site = SiteID(s) else {
            throw ServerError.badRequest("invalid_site", "give site=SITE_ID (a UUID)")
        }
        let store = self.store
        let notes = try await store.held(site: site, token: token)
        return try HTTPBody.json(HeldResponse(held: notes), for: request)
    }

    func pull(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let token = try await authenticated(request)
        let schema = try checkVersions(request)
        let q = request.uri.queryParameters
        var cursor: StoreCursor? = nil
        if let c = q["cursor"].map(String.init), !c.isEmpty {
            if StoreCursor.isLegacy(c) {
                throw ServerError(.conflict, "cursor_reset", "the cursor is of an earlier protocol version; pull again without a cursor")
            }
            guard let v = StoreCursor(c) else {
                throw ServerError.badRequest("invalid_cursor", "cursor \"\(c.prefix(80))\" was not issued by a Fieldbook server; start again without a cursor")
            }
            cursor = v
        }
        var limit = configuration.defaultPullLimit
        if let l = q["limit"].map(String.init) {
            guard let v = Int(l), v >= 1, v <= configuration.maxPullLimit else {
                throw ServerError.badRequest("invalid_limit", "limit \"\(l)\" must be a whole number from 1 to \(configuration.maxPullLimit)")
            }
            limit = v
        }
        var requester: SiteID? = nil
        if let s = q["site"].map(String.init) {
            guard let id = SiteID(s) else { throw ServerError.badRequest("invalid_site", "site \"\(s)\" is not a site id (a UUID)") }
            requester = id
        }
        let claim = try Self.lineage(request, push: false)
        let store = self.store
        let (after, pageLimit, site, now) = (cursor, limit, requester, configuration.clock())
        let logger = context.logger
        await Self.releaseDue(store, now: now, logger: logger)
        let page = try await store.pull(after: after, limit: pageLimit, token: token, requester: site, lineage: claim)
        context.logger.debug("pull", metadata: [
            "token": .string(token.name), "cursor": .string(cursor?.text ?? ""), "next": .string(page.cursor.text),
            "changes": .stringConvertible(page.changes.changeCount), "more": .stringConvertible(page.more),
        ])
        // A client of an earlier schema gets what it knows; it pulls again from the start once it is updated.
        let changes = schema < SyncProtocol.schemaVersion
            ? page.changes.restricted(toVersion: schema, of: FieldbookSchema.sealedTables) : page.changes
        metrics.pulled.increment(by: Int64(changes.changeCount))
        let response = PullResponse(changes: WireChangeset(changes), cursor: page.cursor.text, more: page.more)
        if HTTPBody.accepts(request, SyncProtocol.binaryMediaType) {
            return try HTTPBody.bytes(response.binary(), contentType: SyncProtocol.binaryMediaType, for: request)
        }
        return try HTTPBody.json(response, for: request)
    }
}


/// Every error leaves the server as a JSON body (`ErrorResponse`) with its status.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let e = ServerError.from(error)
            if e.status.code >= 500 {
                context.logger.error("request failed", metadata: ["path": .string(request.uri.path), "error": .string(e.description)])
            } else {
                context.logger.debug("request refused", metadata: ["path": .string(request.uri.path), "error": .string(e.description)])
            }
            return e.response()
        }
    }
}

/// The OpenAPI 3.1 document of these routes (Sources/SyncServer/openapi.json).
public enum OpenAPI {
    public static func document() throws -> Data {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json") else {
            throw ServerError(.internalServerError, "internal", "openapi.json is missing from the build")
        }
        return try Data(contentsOf: url)
    }
}
