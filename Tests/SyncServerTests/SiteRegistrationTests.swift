import AsyncHTTPClient
import FieldbookModel
import FieldbookTestSupport
import Foundation
import GRDB
import SealedSync
import Testing

/// Issue 26, item 2: a store registers only the sites some change of a push uses — one token
/// listing 2,000 named sites with one change must not fill the site table. One rule
/// (`Changeset.usedSites`), both stores, over HTTP.
@Suite(.serialized) struct SiteRegistrationTests {
    /// The number of sites the server's store has registered.
    static func registeredSites(_ server: ServerProcess) throws -> Int {
        if let url = server.database {
            let r = try CLIRunner.exec(URL(fileURLWithPath: "/usr/bin/psql"), [url, "-At", "-c", "SELECT count(*) FROM fb_site"])
            guard r.status == 0, let n = Int(r.line) else { throw HTTPTestError(message: "psql: \(r.stderr)") }
            return n
        }
        var config = Configuration()
        config.readonly = true
        let q = try DatabaseQueue(path: (server.data as NSString).appendingPathComponent("store.sqlite"), configuration: config)
        return try q.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM _fb_site") ?? -1 }
    }

    @Test(arguments: TestStore.available)
    func aPushRegistersOnlyTheSitesItsChangesUse(store: TestStore) async throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path, store: store)
        defer { server.stop() }
        let http = HTTPTestClient(client: HTTPClient.shared, base: server.url)
        let token = try server.token("hq", regions: "*", coordinator: true)
        try await http.enrolKeys(coordinator: token, name: "hq")
        let before = try Self.registeredSites(server)

        let me = SiteID.random()
        var sites = [me]
        var names: [String?] = []
        for _ in 0..<2_000 { sites.append(.random()) }
        for s in sites { names.append(try SealedName.seal("device \(s.description.prefix(8))", site: s, region: "almaty", keys: TestSealing.ring)) }
        let cs = Changeset(sites: sites, tables: [personRow(newID(), region: "almaty", name: "Асқар Қайырбек")], siteNames: names)
        let r = try await http.push(cs, site: me, token: token, lineage: HTTPTestClient.lineage(ack: nil, id: "0123456789abcdef0123456789abcdef"))
        #expect(r.status == 200, "\(r.status) \(r.message)")
        let after = try Self.registeredSites(server)
        #expect(after - before == 1, "\(store): \(after - before) sites registered by one push of one change (listed: \(sites.count)); only the pushing site's")
    }
}
