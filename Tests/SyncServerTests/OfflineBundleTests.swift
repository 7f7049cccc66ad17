import FieldbookTestSupport
import Foundation
import Testing

/// Issue 9, item 8: when the network is cut, pending changes travel on a USB stick, sealed and
/// signed, and are applied by a replica or by the server as the device's own push.
@Suite(.serialized) struct OfflineBundleTests {
    func db(_ cli: CLIRunner, _ name: String) -> String { cli.dir.appendingPathComponent("\(name).sqlite").path }

    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    func names(_ cli: CLIRunner, _ db: String) throws -> Set<String> {
        let r = try cli.run(["list", "persons", "--json"], db: db)
        return Set((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]).map { $0["name"] as! String })
    }

    func server(_ args: [String]) throws -> CLIRunner.Result { try CLIRunner.exec(ServerProcess.binary, args) }

    @Test func aBundleCarriedOnAStickReachesAReplicaAndTheServerOnceAndTellsAFinderNothing() throws {
        let cli = try CLIRunner()
        let hq = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { hq.stop() }
        let (m, c, other) = (db(cli, "monitor"), db(cli, "coordinator"), db(cli, "other"))
        for (path, name, coordinator) in [(m, "aigul", false), (c, "hq", true), (other, "yerlan", false)] {
            ok(try cli.run(["init", "--region", "almaty", "--device", "\(name)-laptop"], db: path))
            ok(try cli.run(["remote", "add", "hq", hq.url, "--token", try hq.token(name, regions: coordinator ? "*" : "almaty", coordinator: coordinator)], db: path))
        }
        try hq.approve([m, c, other], cli: cli)
        for path in [m, c, other] { ok(try cli.run(["sync"], db: path)) }

        // The internet is cut. The monitor records the real cases and writes them to a stick.
        hq.stop()
        ok(try cli.run(["import", CLIRunner.fixture], db: m))
        #expect(try cli.run(["sync", "--attempts", "1"], db: m).status == 69, "no network")
        let stick = cli.dir.appendingPathComponent("stick.fbb").path
        let written = ok(try cli.run(["bundle", "export", "--out", stick], db: m))
        #expect(written.stdout.contains("changes for hq"), "\(written.stdout)")
        #expect(try cli.run(["bundle", "export", "--out", stick], db: m).status != 0, "never overwritten")
        var secrets = try EncryptedReplicaTests.fixtureSecrets()
        secrets.formUnion(["aigul-laptop", "Qaiyrbek"])
        let found = try EncryptedReplicaTests.leaks(in: cli.dir.path, of: secrets).filter { $0.hasPrefix("stick.fbb") }
        #expect(found.isEmpty, "a finder reads: \(found.prefix(5))")

        // A coordinator applies it to their replica; twice changes nothing.
        let first = ok(try cli.run(["bundle", "import", stick], db: c))
        #expect(first.stdout.contains("bundle from aigul: applied"), "\(first.stdout)")
        #expect(try names(cli, c) == names(cli, m))
        #expect(ok(try cli.run(["bundle", "import", stick], db: c)).stdout.contains("applied 0"))

        // The stick reaches the server's operator: applied as aigul's push, once.
        let imported = try server(["bundle", "import", "--data", hq.data, stick])
        #expect(imported.status == 0 && imported.stdout.contains("bundle from aigul: applied"), "\(imported.stdout) \(imported.stderr)")
        let again = try server(["bundle", "import", "--data", hq.data, stick])
        #expect(again.stdout.contains("applied 0"), "\(again.stdout)")
        try hq.start()
        ok(try cli.run(["sync"], db: other))
        #expect(try names(cli, other) == names(cli, m))
        // When the network is back, the monitor's sync sends nothing the server lacks, and the
        // coordinator's relays nothing twice.
        ok(try cli.run(["sync"], db: m))
        ok(try cli.run(["sync"], db: c))
        #expect(try cli.run(["export", "--format", "csv"], db: c).stdout == cli.run(["export", "--format", "csv"], db: other).stdout)

        // An altered stick is refused by both, whole.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: stick))
        bytes[bytes.count / 2] ^= 0x01
        let altered = try cli.file("altered.fbb", "")
        try bytes.write(to: URL(fileURLWithPath: altered))
        let byReplica = try cli.run(["bundle", "import", altered], db: other)
        #expect(byReplica.status == 74 && byReplica.stderr.contains("altered"), "\(byReplica.stderr)")
        hq.stop()
        let byServer = try server(["bundle", "import", "--data", hq.data, altered])
        #expect(byServer.status == 65 && byServer.stderr.contains("altered"), "\(byServer.stderr)")
    }

    /// A bundle made by a device the server does not hold approved (another key under the name,
    /// or a revoked device) is not applied.
    @Test func aBundleOfARevokedOrUnknownDeviceIsRefusedByTheServer() throws {
        let cli = try CLIRunner()
        let hq = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { hq.stop() }
        let (m, c) = (db(cli, "monitor"), db(cli, "coordinator"))
        for (path, name, coordinator) in [(m, "aigul", false), (c, "hq", true)] {
            ok(try cli.run(["init", "--region", "almaty", "--device", name], db: path))
            ok(try cli.run(["remote", "add", "hq", hq.url, "--token", try hq.token(name, regions: coordinator ? "*" : "almaty", coordinator: coordinator)], db: path))
        }
        try hq.approve([m, c], cli: cli)
        for path in [m, c] { ok(try cli.run(["sync"], db: path)) }
        ok(try cli.run(["person", "add", "--name", "Carried On A Stick"], db: m))
        let stick = cli.dir.appendingPathComponent("stick.fbb").path
        ok(try cli.run(["bundle", "export", "--out", stick], db: m))
        ok(try cli.run(["keys", "revoke", "aigul"], db: c))
        hq.stop()
        let refused = try server(["bundle", "import", "--data", hq.data, stick])
        #expect(refused.status == 77 && refused.stderr.contains("not the approved device"), "\(refused.stderr)")
        // A replica that never synced cannot make one: the bundle names the device as the server knows it.
        let fresh = db(cli, "fresh")
        ok(try cli.run(["init", "--region", "almaty"], db: fresh))
        ok(try cli.run(["remote", "add", "hq", hq.url, "--token", "unused"], db: fresh))
        #expect(try cli.run(["bundle", "export", "--out", cli.dir.appendingPathComponent("x.fbb").path], db: fresh).status == 65)
    }
}
