import AsyncHTTPClient
import FieldbookModel
import FieldbookTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import NIOFoundationCompat
import SyncServer
import Testing

/// Bad input against a running server: every refusal is a 4xx (or a quarantine) with a JSON
/// error body, the server keeps serving, and the store is unchanged except for the quarantine.
@Suite(.serialized) struct ServerBadInputTests {
    typealias Reply = HTTPTestClient.Reply
    static let binaryHeaders = HTTPTestClient.binaryHeaders

    /// A request to a full URL, through the suite's shared raw-HTTP helper.
    func send(_ client: HTTPClient, _ url: String, method: HTTPMethod = .POST, token: String?, body: Data?,
              headers: [(String, String)] = HTTPTestClient.versions) async throws -> Reply {
        try await HTTPTestClient(client: client, base: "").send(url, method: method, token: token, body: body, headers: headers)
    }

    /// The same push as `person(…)`, in the binary form.
    func binaryPerson(site: SiteID, region: String, kind: String? = nil, sealed: Bool = true) -> Data {
        let request = try! JSONDecoder().decode(PushRequest.self, from: person(site: site, region: region, kind: kind, sealed: sealed))
        return Data(request.binary())
    }

    func person(site: SiteID, region: String, id: String = UUID().uuidString.lowercased(), millis: Int64? = nil, kind: String? = nil,
                sealed: Bool = true) -> Data {
        let hlc = (millis ?? Int64(Date().timeIntervalSince1970 * 1000)) << 16
        var cs = Changeset(sites: [site], tables: [TableChanges(table: "person", fields: ["region", "name"], rows: [
            RowChange(id: id, cl: 1, hlc: hlc, site: 0, fields: [
                FieldChange(field: 0, value: .text(region), hlc: hlc, site: 0),
                FieldChange(field: 1, value: .text("Test Person"), hlc: hlc, site: 0),
            ]),
        ])])
        if let kind {
            cs.tables.append(TableChanges(table: "incident", fields: ["region", "person_id", "kind", "date"], rows: [
                RowChange(id: UUID().uuidString.lowercased(), cl: 1, hlc: hlc, site: 0, fields: [
                    FieldChange(field: 0, value: .text(region), hlc: hlc, site: 0),
                    FieldChange(field: 1, value: .text(id), hlc: hlc, site: 0),
                    FieldChange(field: 2, value: .text(kind), hlc: hlc, site: 0),
                    FieldChange(field: 3, value: .text("2020-01"), hlc: hlc, site: 0),
                ]),
            ]))
        }
        return try! JSONEncoder().encode(PushRequest(site: site, from: 0, to: 1, changes: WireChangeset(sealed ? TestSealing.seal(cs) : cs)))
    }

    @Test func badRequestsAreRefusedWithJSONAndChangeNothing() async throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let token = try server.token("monitor", regions: "almaty")
        let revoked = try server.token("old", regions: "almaty")
        let coordinator = try server.token("coord", regions: "*", coordinator: true)
        #expect(try CLIRunner.exec(ServerProcess.binary, ["token", "revoke", "--data", server.data, "old"]).status == 0)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await HTTPTestClient(client: client, base: server.url).enrolKeys(coordinator: coordinator, name: "coord")
            try await check(client, server: server, token: token, revoked: revoked, coordinator: coordinator)
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    func check(_ client: HTTPClient, server: ServerProcess, token: String, revoked: String, coordinator: String) async throws {
        let push = server.url + SyncProtocol.pushPath
        let pull = server.url + SyncProtocol.pullPath
        let site = SiteID.random()

        // One good push, so that "unchanged" means something.
        let first = person(site: site, region: "almaty")
        let good = try await send(client, push, token: token, body: first)
        #expect(good.status == 200, "\(good.message)")
        let before = try await send(client, pull, method: HTTPMethod.GET, token: coordinator, body: nil)
        #expect(before.status == 200)

        var cases: [(String, Reply, Int, String?)] = []
        cases.append(("no token", try await send(client, push, token: nil, body: person(site: .random(), region: "almaty")), 401, "unauthorized"))
        cases.append(("revoked token", try await send(client, push, token: revoked, body: person(site: .random(), region: "almaty")), 401, "unauthorized"))
        cases.append(("other region", try await send(client, push, token: token, body: person(site: .random(), region: "atyrau")), 403, "region_not_allowed"))
        cases.append(("malformed JSON", try await send(client, push, token: token, body: Data("{\"site\": ".utf8)), 400, "malformed"))
        cases.append(("wrong types", try await send(client, push, token: token,
                                                    body: Data("{\"site\":\"\(site)\",\"from\":\"zero\",\"to\":1,\"changes\":{\"sites\":[],\"tables\":[]}}".utf8)), 400, "malformed"))
        cases.append(("unknown field", try await send(client, push, token: token,
                                                      body: Data("{\"site\":\"\(site)\",\"from\":0,\"to\":1,\"changes\":{\"sites\":[],\"tables\":[]},\"admin\":true}".utf8)), 400, "malformed"))
        var utf8 = Data("{\"site\":\"".utf8)
        utf8.append(contentsOf: [0xFF, 0xFE, 0xC3])
        utf8.append(contentsOf: Array("\",\"from\":0,\"to\":1,\"changes\":{\"sites\":[],\"tables\":[]}}".utf8))
        cases.append(("invalid UTF-8", try await send(client, push, token: token, body: utf8), 400, "malformed"))
        // The server cannot read values any more; a clear one (an out-of-date or broken device) is refused.
        cases.append(("clear value", try await send(client, push, token: token, body: person(site: .random(), region: "almaty", kind: "arrest", sealed: false)), 400, "not_sealed"))
        cases.append(("old protocol", try await send(client, push, token: token, body: person(site: .random(), region: "almaty"),
                                                     headers: [("Fieldbook-Protocol", "0"), ("Fieldbook-Schema", "1")]), 426, "unsupported_version"))
        cases.append(("no versions", try await send(client, push, token: token, body: person(site: .random(), region: "almaty"), headers: []), 400, "missing_version"))
        var gap = try JSONSerialization.jsonObject(with: person(site: site, region: "almaty")) as! [String: Any]
        gap["from"] = 50
        gap["to"] = 60
        cases.append(("sequence gap", try await send(client, push, token: token, body: try JSONSerialization.data(withJSONObject: gap)), 409, "sequence_gap"))
        let binary = binaryPerson(site: .random(), region: "almaty")
        cases.append(("truncated binary", try await send(client, push, token: token, body: binary.dropLast(3), headers: Self.binaryHeaders), 400, "malformed"))
        cases.append(("binary with a wrong magic", try await send(client, push, token: token, body: Data("FBX1".utf8) + binary.dropFirst(4),
                                                                  headers: Self.binaryHeaders), 400, "malformed"))
        cases.append(("binary clear value", try await send(client, push, token: token,
                                                           body: binaryPerson(site: .random(), region: "almaty", kind: "arrest", sealed: false),
                                                           headers: Self.binaryHeaders), 400, "not_sealed"))
        cases.append(("binary other region", try await send(client, push, token: token, body: binaryPerson(site: .random(), region: "atyrau"),
                                                            headers: Self.binaryHeaders), 403, "region_not_allowed"))
        // More than the server's 100,000 changes per push: refused while decoding (rows + writes) or after.
        func many(_ n: Int, fields: Bool) -> Data {
            let s = SiteID.random()
            let rows = (0..<n).map { i in
                RowChange(id: String(format: "00000000-0000-4000-8000-%012d", i), cl: fields ? 1 : 2, hlc: 1 << 16, site: 0,
                          fields: fields ? [FieldChange(field: 0, value: .text("almaty"), hlc: 1 << 16, site: 0),
                                            FieldChange(field: 1, value: .text("P"), hlc: 1 << 16, site: 0)] : [])
            }
            let cs = Changeset(sites: [s], tables: [TableChanges(table: "person", fields: ["region", "name"], rows: rows)])
            return Data(PushRequest(site: s, from: 0, to: 1, changes: WireChangeset(TestSealing.seal(cs))).binary())
        }
        cases.append(("binary batch over the limit (decoding)", try await send(client, push, token: token, body: many(70_000, fields: true),
                                                                              headers: Self.binaryHeaders), 413, "batch_too_large"))
        cases.append(("binary batch over the limit (counted)", try await send(client, push, token: token, body: many(100_001, fields: false),
                                                                             headers: Self.binaryHeaders), 413, "batch_too_large"))
        cases.append(("unsupported media type", try await send(client, push, token: token, body: person(site: .random(), region: "almaty"),
                                                               headers: [("Fieldbook-Protocol", String(SyncProtocol.version)), ("Fieldbook-Schema", "1"), ("Content-Type", "text/csv")]),
                      415, "unsupported_media_type"))
        cases.append(("bad cursor", try await send(client, pull + "?cursor=yesterday", method: HTTPMethod.GET, token: token, body: nil), 400, "invalid_cursor"))
        cases.append(("100 MB body", try await send(client, push, token: token, body: Data(repeating: 0x20, count: 100 << 20)), 413, "too_large"))

        for (what, reply, status, code) in cases {
            #expect(reply.status == status, "\(what): \(reply.status) \(reply.message)")
            #expect(reply.code == code, "\(what): \(reply.code ?? "no JSON error body")")
            #expect(!reply.message.isEmpty, "\(what)")
        }
        #expect(cases.first { $0.0 == "clear value" }!.1.message.contains("person.name"))
        #expect(cases.first { $0.0 == "binary clear value" }!.1.message.contains("person.name"))
        #expect(cases.first { $0.0 == "truncated binary" }!.1.message.contains("at byte"))

        // A timestamp years ahead is quarantined, not applied.
        let future = try await send(client, push, token: token,
                                    body: person(site: .random(), region: "almaty", millis: Int64(Date().timeIntervalSince1970 * 1000) + 3 * 365 * 86_400_000))
        #expect(future.status == 200)
        let notes = (future.json?["quarantined"] as? [[String: Any]]) ?? []
        #expect(notes.count == 1)
        let listed = try CLIRunner.exec(ServerProcess.binary, ["quarantine", "list", "--data", server.data])
        let listing = listed.stdout
        #expect(listing.contains("person") && listing.contains("ahead"))

        // The server still serves, and its store is as before.
        let health = try await send(client, server.url + SyncProtocol.healthPath, method: HTTPMethod.GET, token: nil, body: nil)
        #expect(health.status == 200)
        let after = try await send(client, pull, method: HTTPMethod.GET, token: coordinator, body: nil)
        func content(_ r: Reply) throws -> Changeset { try JSONDecoder().decode(PullResponse.self, from: r.body).changes.changeset() }
        #expect(try content(after) == content(before))
        #expect(try content(before).changeCount == 2)
        // The binary pull carries the same changes as the JSON pull.
        let binaryPull = try await send(client, pull, method: HTTPMethod.GET, token: coordinator, body: nil,
                                        headers: [("Fieldbook-Protocol", String(SyncProtocol.version)), ("Fieldbook-Schema", "1"), ("Accept", SyncProtocol.binaryMediaType)])
        #expect(binaryPull.status == 200)
        #expect(try PullResponse(binary: [UInt8](binaryPull.body)).changes.changeset() == content(after))
        // A re-sent batch is a no-op.
        let again = try await send(client, push, token: token, body: first)
        #expect(again.status == 200)
        #expect(again.json?["applied"] as? Int == 0)
        let final = try await send(client, pull, method: HTTPMethod.GET, token: coordinator, body: nil)
        #expect(try content(final) == content(before))
    }

    @Test func openAPIDocumentDescribesTheRealRoutes() throws {
        let t = FileManager.default.temporaryDirectory.appendingPathComponent("fb-openapi-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: t) }
        let store = try SQLiteServerStore(directory: t.path)
        let router = SyncRoutes(store: store, configuration: ServerConfiguration(dataDirectory: t.path)).router()
        let routes = Set(router.routes.map { "\($0.method.rawValue.lowercased()) \($0.path)" })
        let doc = try JSONSerialization.jsonObject(with: try OpenAPI.document()) as! [String: Any]
        #expect(doc["openapi"] as? String == "3.1.0")
        var documented = Set<String>()
        for (path, ops) in doc["paths"] as! [String: [String: Any]] {
            for method in ops.keys { documented.insert("\(method) \(path)") }
        }
        #expect(routes == documented)
    }
}
