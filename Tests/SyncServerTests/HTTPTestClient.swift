import AsyncHTTPClient
import FieldbookModel
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Raw HTTP against a real server process, for tests that send what no well-behaved client sends.
struct HTTPTestClient {
    let client: HTTPClient
    let base: String

    struct Reply {
        var status: Int
        var body: Data
        var headers: HTTPHeaders = [:]
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
        var code: String? { (json?["error"] as? [String: Any])?["code"] as? String }
        var message: String { ((json?["error"] as? [String: Any])?["message"] as? String) ?? String(decoding: body, as: UTF8.self) }
    }

    static let versions = [("Fieldbook-Protocol", String(SyncProtocol.version)), ("Fieldbook-Schema", String(SyncProtocol.schemaVersion))]
    static let binaryHeaders = versions + [("Content-Type", SyncProtocol.binaryMediaType)]

    func send(_ path: String, method: HTTPMethod = .POST, token: String?, body: Data?,
              headers: [(String, String)] = HTTPTestClient.versions) async throws -> Reply {
        var req = HTTPClientRequest(url: base + path)
        req.method = method
        if let token { req.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (k, v) in headers { req.headers.add(name: k, value: v) }
        if let body { req.body = .bytes(ByteBuffer(bytes: body)) }
        let r = try await client.execute(req, timeout: .seconds(60))
        let b = try await r.body.collect(upTo: 256 << 20)
        return Reply(status: Int(r.status.code), body: Data(b.readableBytesView), headers: r.headers)
    }

    /// Pushes a changeset, in JSON or in the binary form, its values sealed (`TestSealing`)
    /// unless `sealed` is false.
    func push(_ cs: Changeset, site: SiteID, token: String, from: Int64 = 0, to: Int64 = 1, binary: Bool = false,
              lineage: [(String, String)] = [], sealed: Bool = true) async throws -> Reply {
        try await push(WireChangeset(sealed ? TestSealing.seal(cs) : cs), site: site, token: token, from: from, to: to, binary: binary, lineage: lineage)
    }

    /// Registers a coordinator's device under `token` (named `name`, the token's name) and
    /// delivers every test region's key to it, so that the server takes cells sealed with `TestSealing.ring`.
    func enrolKeys(coordinator token: String, name: String) async throws {
        let (registration, upload) = try TestSealing.upload(name: name)
        let r = try await send(SyncProtocol.devicePath, method: .PUT, token: token, body: try JSONEncoder().encode(registration))
        guard r.status == 200 else { throw HTTPTestError(message: "register: \(r.status) \(r.message)") }
        let k = try await send(SyncProtocol.keysPath, token: token, body: try JSONEncoder().encode(upload))
        guard k.status == 200 else { throw HTTPTestError(message: "keys: \(k.status) \(k.message)") }
    }

    func push(_ wire: WireChangeset, site: SiteID, token: String, from: Int64 = 0, to: Int64 = 1, binary: Bool = false,
              lineage: [(String, String)] = []) async throws -> Reply {
        let request = PushRequest(site: site, from: from, to: to, changes: wire)
        if binary {
            return try await send(SyncProtocol.pushPath, token: token, body: Data(request.binary()), headers: Self.binaryHeaders + lineage)
        }
        return try await send(SyncProtocol.pushPath, token: token, body: try JSONEncoder().encode(request), headers: Self.versions + lineage)
    }

    /// The lineage headers of a push (`ack` nil: none acknowledged yet).
    static func lineage(ack: String?, id: String?) -> [(String, String)] {
        [(SyncProtocol.ackHeader, ack ?? "none")] + (id.map { [(SyncProtocol.pushIDHeader, $0)] } ?? [])
    }

    /// Everything a token can pull from the start, as one changeset.
    func pullAll(token: String) async throws -> Changeset {
        var cursor: String? = nil
        var all = Changeset()
        while true {
            var path = SyncProtocol.pullPath + "?limit=50000"
            if let cursor { path += "&cursor=\(cursor)" }
            let r = try await send(path, method: .GET, token: token, body: nil)
            guard r.status == 200 else { throw HTTPTestError(message: "pull: \(r.status) \(r.message)") }
            let page = try JSONDecoder().decode(PullResponse.self, from: r.body)
            let cs = try TestSealing.open(try page.changes.changeset())
            all.sites += cs.sites.filter { !all.sites.contains($0) }
            for t in cs.tables {
                let remapped = t.rows.map { row -> RowChange in
                    var row = row
                    row.site = all.sites.firstIndex(of: cs.sites[row.site])!
                    row.fields = row.fields.map { var f = $0; f.site = all.sites.firstIndex(of: cs.sites[f.site])!; return f }
                    return row
                }
                all.tables.append(TableChanges(table: t.table, fields: t.fields, rows: remapped))
            }
            cursor = page.cursor
            if !page.more { return all }
        }
    }

    func healthy() async throws -> Bool {
        try await send(SyncProtocol.healthPath, method: .GET, token: nil, body: nil).status == 200
    }
}

struct HTTPTestError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A person row change with its region and name (a new record), or only the fields given.
func personRow(_ id: String, region: String?, name: String?, cl: Int64 = 1, millis: Int64? = nil) -> TableChanges {
    let hlc = (millis ?? Int64(Date().timeIntervalSince1970 * 1000)) << 16
    var fields: [String] = []
    var values: [FieldChange] = []
    if let region { values.append(FieldChange(field: fields.count, value: .text(region), hlc: hlc, site: 0)); fields.append("region") }
    if let name { values.append(FieldChange(field: fields.count, value: .text(name), hlc: hlc, site: 0)); fields.append("name") }
    return TableChanges(table: "person", fields: fields, rows: [RowChange(id: id, cl: cl, hlc: hlc, site: 0, fields: cl % 2 == 1 ? values : [])])
}

func newID() -> String { UUID().uuidString.lowercased() }

func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
