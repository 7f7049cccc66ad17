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

    public init(store: any ServerStore, configuration: ServerConfiguration) {
        self.store = store
        self.configuration = configuration
    }

    static let protocolHeader = HTTPField.Name(SyncProtocol.protocolHeader)!
    static let schemaHeader = HTTPField.Name(SyncProtocol.schemaHeader)!

    /// The router with every route and the JSON error middleware.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        router.get(RouterPath(SyncProtocol.healthPath)) { request, _ in
            try HTTPBody.json(HealthResponse(status: "ok", protocol: SyncProtocol.version, schema: SyncProtocol.schemaVersion, site: store.site),
                              for: request)
        }
        router.get(RouterPath(SyncProtocol.openAPIPath)) { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try OpenAPI.document())))
        }
        router.post(RouterPath(SyncProtocol.pushPath)) { request, context in try await push(request, context) }
        router.get(RouterPath(SyncProtocol.pullPath)) { request, context in try await pull(request, context) }
        return router
    }

    /// Runs blocking store work off the event loops.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    func authenticate(_ request: Request) async throws -> TokenInfo {
        guard let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") else { throw ServerError.unauthorized }
        let hash = [UInt8](Tokens.hash(String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces)))
        guard let token = try await blocking({ try store.token(hash: hash) }) else { throw ServerError.unauthorized }
        return token
    }

    func checkVersions(_ request: Request) throws {
        guard let p = request.headers[Self.protocolHeader], let s = request.headers[Self.schemaHeader] else {
            throw ServerError.badRequest("missing_version",
                "send the headers \(SyncProtocol.protocolHeader): \(SyncProtocol.version) and \(SyncProtocol.schemaHeader): \(SyncProtocol.schemaVersion)")
        }
        guard Int(p) == SyncProtocol.version, Int(s) == SyncProtocol.schemaVersion else {
            throw ServerError(.upgradeRequired, "unsupported_version",
                "this server speaks protocol \(SyncProtocol.version), schema \(SyncProtocol.schemaVersion); the request asked for protocol \(p), schema \(s). Update fieldbook (client or server) so that both speak the same versions")
        }
    }

    func push(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try checkVersions(request)
        let token = try await authenticate(request)
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
        case "application/json", nil: body = try JSONDecoder().decode(PushRequest.self, from: data)
        case let other?:
            throw ServerError(.unsupportedMediaType, "unsupported_media_type",
                "Content-Type \"\(other)\" is not supported; send application/json or \(SyncProtocol.binaryMediaType)")
        }
        let batch = try PushPlanner.plan(body, now: configuration.clock(), maxDriftMillis: configuration.maxDriftMillis,
                                         maxBatchChanges: configuration.maxBatchChanges)
        let store = self.store
        let result = try await blocking { try store.push(batch, token: token) }
        context.logger.info("push", metadata: [
            "token": .string(token.name), "site": .string(body.site.description), "from": .stringConvertible(body.from),
            "to": .stringConvertible(body.to), "applied": .stringConvertible(result.applied),
            "ignored": .stringConvertible(result.ignored), "quarantined": .stringConvertible(result.quarantined.count),
        ])
        return try HTTPBody.json(result, for: request)
    }

    func pull(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        try checkVersions(request)
        let token = try await authenticate(request)
        let q = request.uri.queryParameters
        var cursor: Int64 = 0
        if let c = q["cursor"].map(String.init), !c.isEmpty {
            guard let v = Cursor.decode(c) else {
                throw ServerError.badRequest("invalid_cursor", "cursor \"\(c)\" was not issued by this server; start again without a cursor")
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
        let store = self.store
        let (after, pageLimit, site) = (cursor, limit, requester)
        let page = try await blocking { try store.pull(after: after, limit: pageLimit, token: token, requester: site) }
        context.logger.info("pull", metadata: [
            "token": .string(token.name), "cursor": .stringConvertible(cursor), "next": .stringConvertible(page.cursor),
            "changes": .stringConvertible(page.changes.changeCount), "more": .stringConvertible(page.more),
        ])
        let response = PullResponse(changes: WireChangeset(page.changes), cursor: Cursor.encode(page.cursor), more: page.more)
        if HTTPBody.accepts(request, SyncProtocol.binaryMediaType) {
            return try HTTPBody.bytes(response.binary(), contentType: SyncProtocol.binaryMediaType, for: request)
        }
        return try HTTPBody.json(response, for: request)
    }
}

/// Pull cursors are opaque to clients: `c1.` followed by the server's log position.
enum Cursor {
    static func encode(_ seq: Int64) -> String { "c1.\(seq)" }
    static func decode(_ s: String) -> Int64? {
        guard s.hasPrefix("c1."), let v = Int64(s.dropFirst(3)), v >= 0 else { return nil }
        return v
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
                context.logger.notice("request refused", metadata: ["path": .string(request.uri.path), "error": .string(e.description)])
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
