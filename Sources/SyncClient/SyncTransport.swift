import AsyncHTTPClient
import CompressNIO
import FieldbookModel
import FieldbookTLS
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// The HTTP side of a sync: one request per call, changesets in the binary form (JSON for
/// everything else), gzip both ways.
public struct SyncTransport: Sendable {
    public let baseURL: String
    public let token: String
    public let client: HTTPClient
    /// Per-request timeout. Default: 120 s.
    public var timeout: TimeAmount = .seconds(120)
    /// Largest response accepted (decompressed). Default: 512 MiB.
    public var maxResponseBytes = 512 << 20
    /// TLS for every request, when set (a pinned remote: `connect(to:client:)`).
    public var tls: TLSConfiguration?

    /// - Parameter client: made with `SyncTransport.makeClient()` (which decompresses gzip
    ///   responses); the caller shuts it down.
    public init(baseURL: String, token: String, client: HTTPClient) {
        self.baseURL = baseURL
        self.token = token
        self.client = client
    }

    /// The transport for `remote`: for a pinned remote, the server's certificate is fetched and
    /// checked against the pin first, and then trusted alone (no system root can vouch for another).
    public static func connect(to remote: Remote, client: HTTPClient) async throws -> SyncTransport {
        var t = SyncTransport(baseURL: remote.url, token: remote.token, client: client)
        guard let pin = remote.pin else {
            // An organisation's own certificate authority, trusted besides the system's (as curl's --cacert).
            if let ca = ProcessInfo.processInfo.environment["FIELDBOOK_CA_FILE"], !ca.isEmpty {
                var config = TLSConfiguration.makeClientConfiguration()
                config.additionalTrustRoots = [.file(ca)]
                t.tls = config
            }
            return t
        }
        guard let u = URL(string: remote.url), let host = u.host else {
            throw SyncClientError(.invalidInput, "URL \"\(remote.url)\" has no host")
        }
        do {
            let cert = try await TLSPin.fetchCertificate(host: host, port: u.port ?? 443, pin: pin)
            t.tls = TLSPin.clientConfiguration(trusting: cert)
        } catch let e as TLSPin.Failure {
            throw SyncClientError(e.description.contains("cannot reach") ? .transient : .refused, e.description)
        }
        return t
    }

    /// An HTTP client that decompresses gzip responses (AsyncHTTPClient does it, up to
    /// `maxBytes`) and times out connections after 15 s.
    public static func makeClient(maxBytes: Int = 512 << 20) -> HTTPClient {
        var config = HTTPClient.Configuration()
        config.decompression = .enabled(limit: .size(maxBytes))
        config.timeout = .init(connect: .seconds(15), read: .seconds(120))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    /// Sends batches in the binary form (docs/PROTOCOL.md); the answer is JSON.
    ///
    /// - Parameters:
    ///   - ack: the id of the last push this server acknowledged to this replica (nil: none yet).
    ///   - id: this push's id, the same when it is retried (see docs/PROTOCOL.md, "Site lineage").
    public func push(_ request: PushRequest, ack: String?, id: String) async throws -> PushResponse {
        let (bytes, _) = try await send(method: .POST, path: SyncProtocol.pushPath, body: request.binary(),
                                        contentType: SyncProtocol.binaryMediaType,
                                        headers: [(SyncProtocol.ackHeader, ack ?? "none"), (SyncProtocol.pushIDHeader, id)])
        return try decodeJSON(PushResponse.self, bytes, path: SyncProtocol.pushPath)
    }

    /// What this token may push and pull (`GET /v1/scope`); nil from a server of an earlier
    /// release, which does not say.
    public func scope() async throws -> ScopeResponse? {
        do {
            let (bytes, _) = try await send(method: .GET, path: SyncProtocol.scopePath, body: nil)
            return try decodeJSON(ScopeResponse.self, bytes, path: SyncProtocol.scopePath)
        } catch let e as SyncClientError where e.status == 404 {
            return nil
        }
    }

    // MARK: Devices and keys

    /// Registers this device's public keys with the token (`PUT /v1/device`).
    public func registerDevice(_ keys: DeviceRegistration) async throws -> DeviceInfo {
        let (bytes, _) = try await send(method: .PUT, path: SyncProtocol.devicePath, body: Array(try JSONEncoder().encode(keys)))
        return try decodeJSON(DeviceInfo.self, bytes, path: SyncProtocol.devicePath)
    }

    /// The keys wrapped for this token's device, and its regions' current epochs (`GET /v1/keys`).
    public func keys() async throws -> KeysResponse {
        let (bytes, _) = try await send(method: .GET, path: SyncProtocol.keysPath, body: nil)
        return try decodeJSON(KeysResponse.self, bytes, path: SyncProtocol.keysPath)
    }

    /// Every registered device (coordinators, `GET /v1/devices`).
    public func devices() async throws -> [DeviceInfo] {
        let (bytes, _) = try await send(method: .GET, path: SyncProtocol.devicesPath, body: nil)
        return try decodeJSON(DeviceListResponse.self, bytes, path: SyncProtocol.devicesPath).devices
    }

    /// Delivers wrapped keys and approves devices (coordinators, `POST /v1/keys`).
    public func upload(_ request: KeyUploadRequest) async throws -> Int {
        let (bytes, _) = try await send(method: .POST, path: SyncProtocol.keysPath, body: Array(try JSONEncoder().encode(request)))
        return try decodeJSON(KeyUploadResponse.self, bytes, path: SyncProtocol.keysPath).stored
    }

    /// Revokes a device (coordinators, `POST /v1/devices/revoke`).
    public func revoke(device: String) async throws -> DeviceInfo {
        let (bytes, _) = try await send(method: .POST, path: SyncProtocol.revokePath, body: Array(try JSONEncoder().encode(DeviceRevokeRequest(device: device))))
        return try decodeJSON(DeviceInfo.self, bytes, path: SyncProtocol.revokePath)
    }

    /// The changes of `site` that the server holds in quarantine (`GET /v1/held`).
    public func held(site: SiteID) async throws -> [QuarantineNote] {
        let path = SyncProtocol.heldPath + "?site=\(site)"
        let (bytes, _) = try await send(method: .GET, path: path, body: nil)
        return try decodeJSON(HeldResponse.self, bytes, path: path).held
    }

    public func pull(cursor: String?, limit: Int, site: SiteID, ack: String?) async throws -> PullResponse {
        var path = SyncProtocol.pullPath + "?limit=\(limit)&site=\(site)"
        if let cursor, let enc = cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-", ".", "_"])) {
            path += "&cursor=\(enc)"
        }
        // Asks for the binary form; a server may still answer JSON.
        let (bytes, contentType) = try await send(method: .GET, path: path, body: nil, accept: SyncProtocol.binaryMediaType,
                                                  headers: [(SyncProtocol.ackHeader, ack ?? "none")])
        if contentType == SyncProtocol.binaryMediaType {
            do {
                return try PullResponse(binary: Array(bytes.readableBytesView))
            } catch {
                throw SyncClientError(.refused, "\(baseURL)\(path) answered with a body this client cannot read: \(error)")
            }
        }
        return try decodeJSON(PullResponse.self, bytes, path: path)
    }

    func decodeJSON<T: Decodable>(_: T.Type, _ bytes: ByteBuffer, path: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: bytes)
        } catch {
            throw SyncClientError(.refused, "\(baseURL)\(path) answered with a body this client cannot read: \(error)")
        }
    }

    /// One request; returns the body and its media type, or throws the server's error.
    func send(method: HTTPMethod, path: String, body: [UInt8]?, contentType: String = "application/json",
              accept: String = "application/json", headers: [(String, String)] = []) async throws -> (ByteBuffer, String?) {
        var req = HTTPClientRequest(url: baseURL + path)
        req.method = method
        if let tls { req.tlsConfiguration = tls }
        for (name, value) in headers { req.headers.add(name: name, value: value) }
        req.headers.add(name: "Authorization", value: "Bearer \(token)")
        req.headers.add(name: SyncProtocol.protocolHeader, value: String(SyncProtocol.version))
        req.headers.add(name: SyncProtocol.schemaHeader, value: String(SyncProtocol.schemaVersion))
        req.headers.add(name: "Accept", value: accept == "application/json" ? accept : "\(accept), application/json")
        if let body {
            req.headers.add(name: "Content-Type", value: contentType)
            var buffer = ByteBuffer(bytes: body)
            if body.count > 1024 {
                buffer = try buffer.compress(with: .gzip(configuration: .init(compressionLevel: 1)))
                req.headers.add(name: "Content-Encoding", value: "gzip")
            }
            req.body = .bytes(buffer)
        }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await client.execute(req, timeout: timeout)
            bytes = try await response.body.collect(upTo: maxResponseBytes)
        } catch let e as NIOSSLError {
            throw SyncClientError(.refused, "TLS with \(baseURL) failed (\(e)); if the server has its own certificate, add the remote with --pin")
        } catch let e as BoringSSLError {
            throw SyncClientError(.refused, "the certificate of \(baseURL) is not trusted (\(e)); if the server has its own certificate, add the remote with --pin")
        } catch {
            throw SyncClientError(.transient, "cannot reach \(baseURL): \(error)")
        }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            let err = try? JSONDecoder().decode(ErrorResponse.self, from: bytes)
            let message = err.map { "\($0.error.message) (\(status) \($0.error.code))" } ?? "HTTP \(status) from \(baseURL)\(path)"
            let transient = status >= 500 || status == 429 || status == 408
            var e = SyncClientError(transient ? .transient : .refused, message, status: status, code: err?.error.code)
            // Seconds only (the HTTP-date form is not used by fieldbook-server); at most a minute.
            if let s = response.headers.first(name: "Retry-After").flatMap(Int.init), s >= 0 { e.retryAfter = .seconds(min(s, 60)) }
            throw e
        }
        let type = response.headers.first(name: "Content-Type")?.split(separator: ";").first
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        return (bytes, type)
    }
}
