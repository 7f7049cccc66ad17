import AsyncHTTPClient
import FieldbookModel
import FieldbookTestSupport
import Foundation
import ReplicaStore
import SyncServer
import Testing

/// The OpenAPI document describes the real bodies: a push built from a real replica holding the
/// shared fixture, and the server's real answers (push, pull, held, scope, health, errors), are
/// each validated against the document's schema by a JSON Schema validator (jsonschema_rs, from
/// the same PyPI environment as schemathesis; `.ci/run` sets `FIELDBOOK_SCHEMATHESIS`).
@Suite(.serialized) struct OpenAPIBodiesTests {
    static let schemathesis = ProcessInfo.processInfo.environment["FIELDBOOK_SCHEMATHESIS"]

    static let validator = """
        import json, sys, jsonschema_rs
        doc = json.load(open(sys.argv[1]))
        bad = 0
        for line in open(sys.argv[2]):
            item = json.loads(line)
            schema = {"$ref": "#/components/schemas/" + item["schema"], "components": doc["components"]}
            errors = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(item["body"])]
            print(("ok " if not errors else "INVALID ") + item["what"] + ("" if not errors else ": " + "; ".join(errors[:3])))
            bad += 1 if errors else 0
        sys.exit(1 if bad else 0)
        """

    /// Validates each (what, schema, body); returns the validator's output and exit status.
    func validate(_ items: [(what: String, schema: String, body: Data)], in dir: URL) throws -> CLIRunner.Result {
        let doc = dir.appendingPathComponent("openapi.json")
        try OpenAPI.document().write(to: doc)
        var lines = ""
        for i in items {
            let body = try JSONSerialization.jsonObject(with: i.body, options: [.fragmentsAllowed])
            let line = try JSONSerialization.data(withJSONObject: ["what": i.what, "schema": i.schema, "body": body])
            lines += String(decoding: line, as: UTF8.self) + "\n"
        }
        let file = dir.appendingPathComponent("bodies.jsonl")
        try lines.write(to: file, atomically: true, encoding: .utf8)
        let python = URL(fileURLWithPath: Self.schemathesis!).deletingLastPathComponent().appendingPathComponent("python")
        return try CLIRunner.exec(python, ["-c", Self.validator, doc.path, file.path])
    }

    @Test(.enabled(if: schemathesis != nil, "set FIELDBOOK_SCHEMATHESIS to a schemathesis binary in a venv (.ci/run does)"))
    func realRequestAndResponseBodiesMatchTheDocumentSchemas() async throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        let http = HTTPTestClient(client: HTTPClient(eventLoopGroupProvider: .singleton), base: server.url)
        defer { server.stop() }
        do {
            let token = try server.token("almaty", regions: "almaty")
            let coordinator = try server.token("hq", regions: "*", coordinator: true)
            try await http.enrolKeys(coordinator: coordinator, name: "hq")
            // A real replica with the real cases, its changes as a JSON push.
            let db = cli.dir.appendingPathComponent("a.sqlite").path
            #expect(try cli.run(["init", "--region", "almaty", "--device", "laptop-a"], db: db).status == 0)
            #expect(try cli.run(["import", CLIRunner.fixture], db: db).status == 0)
            let replica = try Replica.open(path: db, tables: FieldbookSchema.tables, passphrase: CLIRunner.passphrase)
            let changes = try replica.changes(since: 0, limit: 1_000_000).changeset
            let site = replica.info.site
            let push = try JSONEncoder().encode(PushRequest(site: site, from: 0, to: 1, changes: WireChangeset(TestSealing.seal(changes))))

            var items: [(what: String, schema: String, body: Data)] = [("push request (fixture)", "PushRequest", push)]
            let pushed = try await http.send(SyncProtocol.pushPath, token: token, body: push)
            #expect(pushed.status == 200, "\(pushed.message)")
            items.append(("push response", "PushResponse", pushed.body))
            let ahead = Changeset(sites: [site], tables: [personRow(newID(), region: "almaty", name: "Ahead", millis: nowMillis() + 3_600_000)])
            let held = try await http.push(ahead, site: site, token: token, from: 1, to: 2)
            items.append(("push response with a held change", "PushResponse", held.body))
            for (who, t) in [("monitor", token), ("coordinator", coordinator)] {
                let pull = try await http.send(SyncProtocol.pullPath + "?limit=3", method: .GET, token: t, body: nil)
                #expect(pull.status == 200)
                items.append(("pull response (\(who))", "PullResponse", pull.body))
            }
            let heldList = try await http.send(SyncProtocol.heldPath + "?site=\(site)", method: .GET, token: token, body: nil)
            items.append(("held response", "HeldResponse", heldList.body))
            items.append(("scope response", "ScopeResponse", try await http.send(SyncProtocol.scopePath, method: .GET, token: token, body: nil).body))
            items.append(("health response", "Health", try await http.send(SyncProtocol.healthPath, method: .GET, token: nil, body: nil).body))
            // Devices and keys: a monitor registers; the coordinator (enrolled above) lists, delivers, revokes.
            let (registration, _) = try TestSealing.upload(name: "almaty")
            let registerBody = try JSONEncoder().encode(registration)
            items.append(("device registration", "DeviceRegistration", registerBody))
            let registered = try await http.send(SyncProtocol.devicePath, method: .PUT, token: token, body: registerBody)
            #expect(registered.status == 200, "\(registered.message)")
            items.append(("device", "DeviceInfo", registered.body))
            items.append(("devices", "DeviceListResponse", try await http.send(SyncProtocol.devicesPath, method: .GET, token: coordinator, body: nil).body))
            let coordinatorKeys = try await http.send(SyncProtocol.keysPath, method: .GET, token: coordinator, body: nil)
            items.append(("keys (coordinator)", "KeysResponse", coordinatorKeys.body))
            let delivered = try JSONDecoder().decode(KeysResponse.self, from: coordinatorKeys.body)
            let one = delivered.keys.first { $0.region == "almaty" }!
            let upload = try JSONEncoder().encode(KeyUploadRequest(keys: [one], approve: ["hq"], roster: delivered.rosters.first))
            items.append(("key upload", "KeyUploadRequest", upload))
            items.append(("key upload response", "KeyUploadResponse", try await http.send(SyncProtocol.keysPath, token: coordinator, body: upload).body))
            items.append(("keys (pending monitor)", "KeysResponse", try await http.send(SyncProtocol.keysPath, method: .GET, token: token, body: nil).body))
            let spare = try server.token("spare", regions: "almaty")
            let (spareKeys, _) = try TestSealing.upload(name: "spare")
            #expect(try await http.send(SyncProtocol.devicePath, method: .PUT, token: spare, body: try JSONEncoder().encode(spareKeys)).status == 200)
            let revoke = try JSONEncoder().encode(DeviceRevokeRequest(device: "spare"))
            items.append(("revoke request", "DeviceRevokeRequest", revoke))
            items.append(("revoked device", "DeviceInfo", try await http.send(SyncProtocol.revokePath, token: coordinator, body: revoke).body))
            let refusedRevoked = try await http.send(SyncProtocol.pullPath, method: .GET, token: spare, body: nil)
            #expect(refusedRevoked.status == 403)
            items.append(("error 403 device_revoked", "Error", refusedRevoked.body))
            for (what, reply) in [
                ("401", try await http.send(SyncProtocol.pullPath, method: .GET, token: "fb_wrong", body: nil)),
                ("400", try await http.send(SyncProtocol.pushPath, token: token, body: Data("{".utf8))),
                ("invalid limit", try await http.send(SyncProtocol.pullPath + "?limit=0", method: .GET, token: token, body: nil)),
                ("426", try await http.send(SyncProtocol.pullPath, method: .GET, token: token, body: nil,
                                            headers: [("Fieldbook-Protocol", "9"), ("Fieldbook-Schema", "1")])),
            ] {
                #expect(reply.status >= 400)
                items.append(("error \(what) (\(reply.status))", "Error", reply.body))
            }
            let result = try validate(items, in: cli.dir)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.split(separator: "\n").count == items.count, "\(result.stdout)")
            print(result.stdout)

            // The validator does refuse: a push response without its position, a changeset with a wrong type.
            var broken = try JSONSerialization.jsonObject(with: pushed.body) as! [String: Any]
            broken.removeValue(forKey: "position")
            var request = try JSONSerialization.jsonObject(with: push) as! [String: Any]
            request["from"] = "zero"
            let refused = try validate([("broken response", "PushResponse", try JSONSerialization.data(withJSONObject: broken)),
                                        ("broken request", "PushRequest", try JSONSerialization.data(withJSONObject: request))], in: cli.dir)
            #expect(refused.status == 1 && refused.stdout.components(separatedBy: "INVALID").count == 3, "\(refused.stdout)\(refused.stderr)")
        } catch {
            try? await http.client.shutdown()
            throw error
        }
        try await http.client.shutdown()
    }
}
