import FieldbookTestSupport
import Foundation
import Testing

/// Issue 10, item 4 through a real server: two coordinators' laptops merge the same two persons
/// in opposite directions while apart; after syncing, both show one person, the same one.
@Suite(.serialized) struct PersonMergeSyncTests {
    func db(_ cli: CLIRunner, _ name: String) -> String { cli.dir.appendingPathComponent("\(name).sqlite").path }

    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    func persons(_ cli: CLIRunner, _ db: String) throws -> [[String: Any]] {
        try JSONSerialization.jsonObject(with: Data(ok(try cli.run(["list", "persons", "--json"], db: db)).stdout.utf8)) as! [[String: Any]]
    }

    @Test func oppositeMergesOnTwoLaptopsConvergeThroughTheServer() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (x, y) = (db(cli, "x"), db(cli, "y"))
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-x"], db: x))
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-y"], db: y))
        ok(try cli.run(["import", CLIRunner.fixture], db: x))
        let one = ok(try cli.run(["person", "add", "--name", "Тілеужан Бокаев", "--born", "1981", "--sex", "m"], db: x)).line
        let two = ok(try cli.run(["person", "add", "--name", "Tleuzhan Bokayev", "--born", "1981"], db: x)).line
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("x", regions: "almaty")], db: x))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("y", regions: "almaty")], db: y))
        try server.approve([x, y], cli: cli)
        ok(try cli.run(["sync"], db: x))
        ok(try cli.run(["sync"], db: y))
        let before = try persons(cli, x)
        let pairs = try JSONSerialization.jsonObject(with: Data(ok(try cli.run(["persons", "duplicates", "--json"], db: y)).stdout.utf8)) as! [[String: Any]]
        #expect(pairs.map { Set([$0["a"] as! String, $0["b"] as! String]) } == [Set([one, two])], "\(pairs)")
        let (a, b) = (one, two)

        ok(try cli.run(["persons", "merge", a, b], db: x))
        ok(try cli.run(["persons", "merge", b, a], db: y))
        for db in [x, y, x] { ok(try cli.run(["sync"], db: db)) }
        let (onX, onY) = (try persons(cli, x), try persons(cli, y))
        #expect(onX.count == before.count - 1)
        #expect(onX.map { $0["id"] as! String } == onY.map { $0["id"] as! String })
        #expect(onX.contains { $0["id"] as? String == min(a, b) } && !onX.contains { $0["id"] as? String == max(a, b) },
                "the circle is one person, the lower id")
        #expect(ok(try cli.run(["export", "--format", "csv"], db: x)).stdout == ok(try cli.run(["export", "--format", "csv"], db: y)).stdout)
        // The pair is no longer proposed: it is one person.
        let after = try JSONSerialization.jsonObject(with: Data(ok(try cli.run(["persons", "duplicates", "--json"], db: y)).stdout.utf8)) as! [[String: Any]]
        #expect(!after.contains { Set([$0["a"] as! String, $0["b"] as! String]) == Set([a, b]) })
    }
}
