import AsyncHTTPClient
import FieldbookModel
import FieldbookTestSupport
import Foundation
import Testing

/// Issue 19, item 5: the server enforces a coordinator token's scope on every key route —
/// listing devices, approving, delivering keys, revoking — through both stores, with the real
/// CLI as a coordinator of one region would use it.
@Suite(.serialized) struct CoordinatorScopeTests {
    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    @Test(arguments: TestStore.available)
    func aCoordinatorOfOneRegionCannotApproveRevokeOrKeyAnotherRegionsDevices(store: TestStore) async throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path, store: store)
        defer { server.stop() }
        let (a, b, c) = (cli.dir.appendingPathComponent("a.sqlite").path, cli.dir.appendingPathComponent("b.sqlite").path,
                         cli.dir.appendingPathComponent("c.sqlite").path)
        for (db, name, region) in [(a, "aigul", "almaty"), (b, "baurzhan", "atyrau")] {
            ok(try cli.run(["init", "--region", region, "--device", name], db: db))
            ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token(name, regions: region)], db: db))
            #expect(try cli.run(["sync"], db: db).status == 75, "\(name) registers and waits")
        }
        ok(try cli.run(["init", "--region", "almaty", "--device", "almaty-hq"], db: c))
        let hqToken = try server.token("almaty-hq", regions: "almaty", coordinator: true)
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", hqToken], db: c))
        ok(try cli.run(["keys", "create", "almaty"], db: c), "its own region's key")

        // It sees only the devices of its region.
        let pending = ok(try cli.run(["keys", "pending", "--json"], db: c)).stdout
        #expect(pending.contains("aigul") && !pending.contains("baurzhan"), "\(pending)")
        // It approves its region's device, not another region's.
        let fa = ok(try cli.run(["keys", "fingerprint"], db: a)).line, fb = ok(try cli.run(["keys", "fingerprint"], db: b)).line
        ok(try cli.run(["keys", "approve", "aigul", "--fingerprint", fa], db: c))
        let approve = try cli.run(["keys", "approve", "baurzhan", "--fingerprint", fb], db: c)
        #expect(approve.status != 0 && !approve.stderr.isEmpty, "\(approve.status) \(approve.stderr)")
        // Asked directly, past the CLI (which no longer sees the device), the server refuses.
        let http = HTTPTestClient(client: HTTPClient.shared, base: server.url)
        let direct = try await http.send(SyncProtocol.keysPath, token: hqToken,
                                         body: try JSONEncoder().encode(KeyUploadRequest(keys: [], approve: ["baurzhan"])))
        #expect(direct.status == 403 && direct.code == "region_not_allowed", "\(direct.status) \(direct.message)")
        // No key of another region.
        let create = try cli.run(["keys", "create", "atyrau"], db: c)
        #expect(create.status == 77 && create.stderr.contains("may not make keys of region atyrau"), "\(create.status) \(create.stderr)")
        #expect(!ok(try cli.run(["keys", "list"], db: c)).stdout.contains("atyrau"), "no key of atyrau made")
        // No revocation of another region's laptop: it keeps waiting, not revoked.
        let revoke = try cli.run(["keys", "revoke", "baurzhan"], db: c)
        #expect(revoke.status != 0, "\(revoke.status) \(revoke.stderr)")
        let revokeDirect = try await http.send(SyncProtocol.revokePath, token: hqToken, body: try JSONEncoder().encode(DeviceRevokeRequest(device: "baurzhan")))
        #expect(revokeDirect.status == 403 && revokeDirect.code == "region_not_allowed", "\(revokeDirect.status) \(revokeDirect.message)")
        let waiting = try cli.run(["sync"], db: b)
        #expect(waiting.status == 75 && !waiting.stderr.contains("revoked"), "\(waiting.status) \(waiting.stderr)")
        // Its own region's device syncs, approved.
        ok(try cli.run(["sync"], db: a))
    }
}
