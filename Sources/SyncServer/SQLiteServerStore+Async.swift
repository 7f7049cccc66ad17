import FieldbookModel
import GRDB
import NIOPosix

/// The SQLite store as a `ServerStore`: each call runs its (blocking) work on NIO's thread pool,
/// off the event loops. The synchronous methods stay, for the admin commands and tests.
extension SQLiteServerStore: ServerStore {
    func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    public func ping() async throws {
        try await offload { _ = try self.replica.read { db in try Int.fetchOne(db, sql: "SELECT 1") } }
    }

    public func push(_ batch: PushBatch, token: TokenInfo) async throws -> PushResponse {
        try await offload { try self.push(batch, token: token) }
    }

    public func pull(after cursor: StoreCursor?, limit: Int, token: TokenInfo, requester: SiteID?,
                     lineage: SiteLineage.Claim) async throws -> PullPage {
        try await offload { try self.pull(after: cursor, limit: limit, token: token, requester: requester, lineage: lineage) }
    }

    public func releaseDue(now: Int64) async throws -> Int { try await offload { try self.releaseDue(now: now) } }
    public func held(site: SiteID, token: TokenInfo) async throws -> [QuarantineNote] { try await offload { try self.held(site: site, token: token) } }
    public func credential(hash: [UInt8]) async throws -> Credential? { try await offload { try self.credential(hash: hash) } }
    public func createToken(name: String, hash: [UInt8], regions: [String], coordinator: Bool) async throws -> TokenInfo {
        try await offload { try self.createToken(name: name, hash: hash, regions: regions, coordinator: coordinator) }
    }
    public func tokens() async throws -> [TokenInfo] { try await offload { try self.tokens() } }
    public func revokeToken(name: String) async throws { try await offload { try self.revokeToken(name: name) } }
    public func quarantine() async throws -> [QuarantineEntry] { try await offload { try self.quarantine() } }
    public func releaseQuarantine(_ which: QuarantineSelection) async throws -> Int { try await offload { try self.releaseQuarantine(which) } }
    public func dropQuarantine(_ which: QuarantineSelection) async throws -> Int { try await offload { try self.dropQuarantine(which) } }
    public func registerDevice(token: TokenInfo, _ registration: DeviceRegistration) async throws -> DeviceInfo {
        try await offload { try self.registerDevice(token: token, registration) }
    }
    public func devices() async throws -> [DeviceInfo] { try await offload { try self.devices() } }
    public func device(_ name: String) async throws -> DeviceInfo? { try await offload { try self.device(name) } }
    public func uploadKeys(_ upload: KeyUploadRequest, token: TokenInfo) async throws -> Int {
        try await offload { try self.uploadKeys(upload, token: token) }
    }
    public func keys(for token: TokenInfo) async throws -> KeysResponse { try await offload { try self.keys(for: token) } }
    public func revokeDevice(_ name: String, token: TokenInfo) async throws { try await offload { try self.revokeDevice(name, token: token) } }
}
