import FieldbookTestSupport
import Foundation
import Testing

/// Issue 7, item 7: each server receives only the regions its token covers. Real server
/// processes, real replicas, the real CLI.
@Suite(.serialized) struct RegionAwarePushTests {
    func db(_ cli: CLIRunner, _ name: String) -> String { cli.dir.appendingPathComponent("\(name).sqlite").path }

    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    func names(_ cli: CLIRunner, _ db: String) throws -> Set<String> {
        let r = try cli.run(["list", "persons", "--json"], db: db)
        let all = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
        return Set(all.map { $0["name"] as! String })
    }

    func replica(_ cli: CLIRunner, _ name: String, region: String, remotes: [(String, ServerProcess, String)]) throws -> String {
        let path = db(cli, name)
        ok(try cli.run(["init", "--region", region, "--device", name], db: path))
        for (remote, server, token) in remotes { ok(try cli.run(["remote", "add", remote, server.url, "--token", token], db: path)) }
        return path
    }

    /// A coordinator relays between a regional server (almaty) and a national one (almaty,
    /// atyrau) holding regional tokens only: each server gets exactly its regions, nothing is
    /// refused, and a record written on the regional server reaches the national one.
    @Test func coordinatorRelaysBetweenRegionalServersHoldingRegionalTokens() throws {
        let cli = try CLIRunner()
        let regional = try ServerProcess(data: cli.dir.appendingPathComponent("regional").path)
        defer { regional.stop() }
        let national = try ServerProcess(data: cli.dir.appendingPathComponent("national").path)
        defer { national.stop() }
        let hq = try replica(cli, "hq", region: "almaty", remotes: [
            ("regional", regional, try regional.token("hq", regions: "almaty", coordinator: true)),
            ("national", national, try national.token("hq", regions: "almaty,atyrau", coordinator: true)),
        ])
        let monitor = try replica(cli, "monitor", region: "almaty", remotes: [("hq", regional, try regional.token("m", regions: "almaty"))])
        let reader = try replica(cli, "reader", region: "atyrau", remotes: [("hq", national, try national.token("r", regions: "almaty,atyrau"))])
        let regionalReader = try replica(cli, "regional-reader", region: "almaty",
                                         remotes: [("hq", regional, try regional.token("rr", regions: "almaty"))])
        try regional.approve([hq, monitor, regionalReader], cli: cli, remote: nil)
        try national.approve([hq, reader], cli: cli, remote: nil)

        ok(try cli.run(["person", "add", "--name", "Almaty person"], db: hq))
        let add = ok(try cli.run(["person", "add", "--name", "Atyrau person", "--region", "atyrau"], db: hq))
        #expect(!add.stderr.contains("warning"), "atyrau is covered by the national server: \(add.stderr)")
        ok(try cli.run(["person", "add", "--name", "Written on the regional server"], db: monitor))
        ok(try cli.run(["sync"], db: monitor))
        let relay = ok(try cli.run(["sync"], db: hq), "relay")
        #expect(!relay.stderr.contains("warning"), "\(relay.stderr)")
        ok(try cli.run(["sync"], db: reader))
        ok(try cli.run(["sync"], db: regionalReader))

        #expect(try names(cli, reader) == ["Almaty person", "Atyrau person", "Written on the regional server"])
        #expect(try names(cli, regionalReader) == ["Almaty person", "Written on the regional server"])
        #expect(try names(cli, hq) == ["Almaty person", "Atyrau person", "Written on the regional server"])
        #expect(ok(try cli.run(["sync"], db: hq)).line.contains("pushed 0, pulled 0"))
        let status = ok(try cli.run(["status"], db: hq)).stdout
        #expect(!status.contains("not sent"), "\(status)")
        #expect(status.contains("regions          almaty, atyrau"), "\(status)")
    }

    /// A monitor records a person of a region their token does not cover: a warning when it is
    /// written, at every sync and in `status`; every sync exits 0 and the rest syncs.
    @Test func recordOfARegionNoRemoteCoversStaysHereAndIsReported() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let a = try replica(cli, "a", region: "almaty", remotes: [("hq", server, try server.token("m", regions: "almaty"))])
        let b = try replica(cli, "b", region: "almaty", remotes: [("hq", server, try server.token("m2", regions: "almaty"))])
        try server.approve([a, b], cli: cli)
        ok(try cli.run(["sync"], db: a))  // learns what the token covers
        let add = ok(try cli.run(["person", "add", "--name", "Shymkent person", "--region", "shymkent"], db: a))
        #expect(add.stderr.contains("warning") && add.stderr.contains("shymkent"), "\(add.stderr)")
        #expect(!ok(try cli.run(["person", "add", "--name", "Almaty person"], db: a)).stderr.contains("warning"))

        for round in 1...2 {
            let sync = ok(try cli.run(["sync"], db: a), "round \(round)")
            #expect(sync.stderr.contains("warning") && sync.stderr.contains("\"shymkent\""), "round \(round): \(sync.stderr)")
        }
        let status = ok(try cli.run(["status"], db: a)).stdout
        #expect(status.contains("not sent  region shymkent: 1 record"), "\(status)")
        #expect(status.contains("pending changes  0"), "\(status)")
        ok(try cli.run(["sync"], db: b))
        #expect(try names(cli, b) == ["Almaty person"])
        #expect(try names(cli, a) == ["Almaty person", "Shymkent person"])
    }
}
