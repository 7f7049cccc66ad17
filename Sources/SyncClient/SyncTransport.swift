import AsyncHTTPClient
import CompressNIO
import FieldbookModel
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The HTTP side of a sync: one request per call, JSON bodies, gzip both ways.
public struct SyncTransport: Sendable {
    public let baseURL: String
    public let token: String
    public let client: HTTPClient
    /// Per-request timeout. Default: 120 s.
    public var timeout: TimeAmount = .seconds(120)
    /// Largest response accepted (decompressed). Default: 512 MiB.
    public var maxResponseBytes = 512 << 20

    /// - Parameter client: made with `SyncTransport.makeClient()` (which decompresses gzip
    ///   responses); the caller shuts it down.
    public init(baseURL: String, token: String, client: HTTPClient) {
        self.baseURL = baseURL
        self.token = token
        self.client = client
    }

    /// An HTTP client that decompresses gzip responses (AsyncHTTPClient does it, up to
    /// `maxBytes`) and times out connections after 15 s.
    public static func makeClient(maxBytes: Int = 512 << 20) -> HTTPClient {
        var config = HTTPClient.Configuration()
        config.decompression = .enabled(limit: .size(maxBytes))
        config.timeout = .init(connect: .seconds(15), read: .seconds(120))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    public func push(_ request: PushRequest) async throws -> PushResponse {
        let body = try JSONEncoder().encode(request)
        return try await send(method: .POST, path: SyncProtocol.pushPath, body: body, as: PushResponse.self)
    }

    public func pull(cursor: String?, limit: Int, site: SiteID) async throws -> PullResponse {
        var path = SyncProtocol.pullPath + "?limit=\(limit)&site=\(site)"
        if let cursor, let enc = cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-", ".", "_"])) {
            path += "&cursor=\(enc)"
        }
        return try await send(method: .GET, path: path, body: nil, as: PullResponse.self)
    }

    func send<T: Decodable>(method: HTTPMethod, path: String, body: Data?, as: T.Type) async throws -> T {
        var req = HTTPClientRequest(url: baseURL + path)
        req.method = method
        req.headers.add(name: "Authorization", value: "Bearer \(token)")
        req.headers.add(name: SyncProtocol.protocolHeader, value: String(SyncProtocol.version))
        req.headers.add(name: SyncProtocol.schemaHeader, value: String(SyncProtocol.schemaVersion))
        if let body {
            req.headers.add(name: "Content-Type", value: "application/json")
            var buffer = ByteBuffer(bytes: body)
            if body.count > 1024 {
                buffer = try buffer.compress(with: .gzip())
                req.headers.add(name: "Content-Encoding", value: "gzip")
            }
            req.body = .bytes(buffer)
        }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await client.execute(req, timeout: timeout)
            bytes = try await response.body.collect(upTo: maxResponseBytes)
        } catch {
            throw SyncClientError(.transient, "cannot reach \(baseURL): \(error)")
        }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            let err = try? JSONDecoder().decode(ErrorResponse.self, from: bytes)
            let message = err.map { "\($0.error.message) (\(status) \($0.error.code))" } ?? "HTTP \(status) from \(baseURL)\(path)"
            let transient = status >= 500 || status == 429 || status == 408
            throw SyncClientError(transient ? .transient : .refused, message, status: status, code: err?.error.code)
        }
        do {
            return try JSONDecoder().decode(T.self, from: bytes)
        } catch {
            throw SyncClientError(.refused, "\(baseURL)\(path) answered with a body this client cannot read: \(error)", status: status)
        }
    }
}
