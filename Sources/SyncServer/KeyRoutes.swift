import FieldbookModel
import Foundation
import Hummingbird

/// The routes of device enrolment and key delivery (docs/PROTOCOL.md, "Keys").
extension SyncRoutes {
    /// Largest body of a key request: 10,000 keys of about 400 bytes each.
    static let maxKeyBodyBytes = 4 << 20

    func addKeyRoutes(to router: Router<BasicRequestContext>) {
        router.put(RouterPath(SyncProtocol.devicePath)) { request, _ in
            let token = try await authenticated(request)
            let body = try await decode(DeviceRegistration.self, request)
            let store = self.store
            let info = try await store.registerDevice(token: token, body)
            return try HTTPBody.json(info, for: request)
        }
        router.get(RouterPath(SyncProtocol.devicePath)) { request, _ in
            let token = try await authenticated(request)
            let store = self.store
            guard let info = try await store.device(token.name) else {
                throw ServerError(.notFound, "device_not_registered", "no device is registered under token \"\(token.name)\"; PUT \(SyncProtocol.devicePath) first")
            }
            return try HTTPBody.json(info, for: request)
        }
        router.get(RouterPath(SyncProtocol.devicesPath)) { request, _ in
            let token = try await authenticated(request)
            try KeyAuthorizer.requireCoordinator(token)
            let store = self.store
            return try HTTPBody.json(DeviceListResponse(devices: try KeyAuthorizer.visible(try await store.devices(), to: token)), for: request)
        }
        router.post(RouterPath(SyncProtocol.revokePath)) { request, _ in
            let token = try await authenticated(request)
            let body = try await decode(DeviceRevokeRequest.self, request)
            let store = self.store
            try await store.revokeDevice(body.device, token: token)
            guard let info = try await store.device(body.device) else { throw ServerError(.notFound, "device_not_found", body.device) }
            return try HTTPBody.json(info, for: request)
        }
        router.get(RouterPath(SyncProtocol.keysPath)) { request, _ in
            let token = try await authenticated(request)
            let store = self.store
            return try HTTPBody.json(try await store.keys(for: token), for: request)
        }
        router.post(RouterPath(SyncProtocol.keysPath)) { request, _ in
            let token = try await authenticated(request)
            let body = try await decode(KeyUploadRequest.self, request)
            let store = self.store
            let n = try await store.uploadKeys(body, token: token)
            return try HTTPBody.json(KeyUploadResponse(stored: n), for: request)
        }
    }

    /// Versions checked and the token authenticated; a revoked device's token is refused
    /// (403 `device_revoked`) on every route, push and pull included.
    func authenticated(_ request: Request) async throws -> TokenInfo {
        try checkVersions(request)
        let credential = try await authenticate(request)
        let token = credential.token
        if credential.deviceRevoked {
            throw ServerError(.forbidden, "device_revoked",
                "the device of token \"\(token.name)\" was revoked by a coordinator; it may no longer push, pull or receive keys")
        }
        return token
    }

    func decode<T: Decodable>(_: T.Type, _ request: Request) async throws -> T {
        let data = try await HTTPBody.read(request, maxBytes: Self.maxKeyBodyBytes)
        guard JSONBudget.count(data, limit: 4 * KeyLimits.maxKeys * 8) <= 4 * KeyLimits.maxKeys * 8 else {
            throw ServerError(.contentTooLarge, "too_large", "the body holds more values than a key request may")
        }
        return try JSONDecoder().decode(T.self, from: data)
    }
}
