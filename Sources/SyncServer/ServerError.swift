import FieldbookModel
import Foundation
import GRDB
import ReplicaStore
import HTTPTypes
import Hummingbird
import NIOCore

/// The one error type of the server. Each carries the HTTP status, a stable code and a message
/// that tells the client what is wrong and what to do; every error response is JSON
/// (`ErrorResponse`).
public struct ServerError: Error, Sendable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    /// Seconds after which the client may try again (sent as `Retry-After` with 503).
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    /// The store is busy (locked by another writer): 503, try again shortly.
    public static let busy = ServerError(.serviceUnavailable, "busy", "the store is busy; try again shortly", retryAfter: 1)

    /// Classifies a store failure: busy or locked → 503 with `Retry-After`; anything else is the
    /// server's fault → 500. Never a 4xx: the client's request was fine.
    public static func store(_ e: ReplicaError) -> ServerError {
        if e.isBusy { return .busy }
        return ServerError(.internalServerError, "store_failed", "the server's store failed (\(e.message)); try again later")
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public static func badRequest(_ code: String, _ message: String) -> ServerError { ServerError(.badRequest, code, message) }
    public static let unauthorized = ServerError(.unauthorized, "unauthorized",
        "missing, unknown or revoked token; send Authorization: Bearer TOKEN with a token from `fieldbook-server token create`")

    /// Maps any error raised while serving a request to a `ServerError`.
    public static func from(_ error: any Error) -> ServerError {
        switch error {
        case let e as ServerError: return e
        case let e as ModelError where e.kind == .tooLarge:
            return ServerError(.contentTooLarge, "batch_too_large", "\(e.description); send smaller batches")
        case let e as ModelError: return .badRequest("invalid", e.description)
        case let e as ReplicaError:
            switch e.kind {
            case .invalid, .immutableField: return .badRequest("invalid", e.message)
            case .clock: return .badRequest("clock", e.message)
            default: return .store(e)
            }
        case let e as DatabaseError:
            let code = e.resultCode.primaryResultCode
            if code == .SQLITE_BUSY || code == .SQLITE_LOCKED { return .busy }
            return ServerError(.internalServerError, "store_failed", "the server's store failed (SQLite \(code)); try again later")
        case is NIOTooManyBytesError:
            return ServerError(.contentTooLarge, "too_large", "the request body is larger than the server accepts; send smaller batches")
        case let e as DecodingError: return .badRequest("malformed", describe(e))
        case let e as HTTPError: return ServerError(e.status, "http_\(e.status.code)", e.body ?? e.status.reasonPhrase)
        default: return ServerError(.internalServerError, "internal", "the server failed: \(error)")
        }
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ p: [any CodingKey]) -> String {
            p.isEmpty ? "the body" : p.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: ["."])
        }
        switch e {
        case .dataCorrupted(let c): return "\(path(c.codingPath)): \(c.debugDescription) (the body must be JSON in UTF-8 as in docs/PROTOCOL.md)"
        case .keyNotFound(let k, let c): return "\(path(c.codingPath + [k])): missing"
        case .typeMismatch(_, let c): return "\(path(c.codingPath)): wrong type (\(c.debugDescription))"
        case .valueNotFound(_, let c): return "\(path(c.codingPath)): null where a value is required"
        @unknown default: return "\(e)"
        }
    }

    /// The JSON response for this error.
    public func response() -> Response {
        let body = (try? JSONEncoder().encode(ErrorResponse(code: code, message: message))) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// The refusals every store gives in the same words.
extension ServerError {
    /// Two replicas write under one site id (`SiteLineage`).
    public static func siteForked(_ site: SiteID) -> ServerError {
        ServerError(.conflict, "site_forked",
            "site \(site) is used by more than one replica (one restored from an older backup, or copied to another device): this replica does not have every push this server accepted under it. Take a new site id, then push and pull everything again (fieldbook sync does this by itself)")
    }

    /// A cursor of another store, or of a timeline this one no longer has.
    public static let cursorReset = ServerError(.conflict, "cursor_reset",
        "the cursor was issued by another store, or by this one before it was restored from an older backup; pull again without a cursor")

    /// No quarantined change with that id.
    public static func noQuarantined(_ id: Int64) -> ServerError {
        ServerError(.notFound, "not_found", "no quarantined change with id \(id); see `fieldbook-server quarantine list`")
    }
}

