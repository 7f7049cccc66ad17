import AsyncHTTPClient
import FieldbookModel
import FieldbookTestSupport
import Foundation
import GRDB
import Testing

/// A raw hybrid-logical-clock value: milliseconds and a counter.
private func h(_ millis: Int64, _ counter: Int64) -> Int64 { millis << 16 | counter }

/// Issue 10, item 7: the first schema change. Files written by the previous release open,
/// migrate and sync with this one; a server of this release serves clients of the previous
/// schema what they know.
@Suite(.serialized) struct SchemaUpgradeTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/release-0.1")
    /// The passphrase `Tests/Fixtures/release-0.1/make.sh` gave the fixtures' replicas.
    static let fixtureEnv = ["FIELDBOOK_PASSPHRASE": "release-fixture-passphrase"]

    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    func persons(_ cli: CLIRunner, _ db: String) throws -> [[String: Any]] {
        let r = ok(try cli.run(["list", "persons", "--json"], db: db, env: Self.fixtureEnv), "list")
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
    }

    /// A monitor's and a coordinator's replica and the server store, all written by the
    /// previous release, are opened by this one: the server store gains the new column and
    /// table, the replicas too, the coordinator pulls everything again (its last pulls left out
    /// what schema 1 did not know), and merges, unmerges and judgements then travel between them.
    @Test func filesOfThePreviousReleaseOpenMigrateAndSyncMerges() throws {
        let cli = try CLIRunner()
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: Self.fixtures.path) {
            try fm.copyItem(at: Self.fixtures.appendingPathComponent(name), to: cli.dir.appendingPathComponent(name))
        }
        let ids = try String(contentsOf: cli.dir.appendingPathComponent("persons.txt"), encoding: .utf8).split(separator: "\n").map(String.init)
        let (m, c) = (cli.dir.appendingPathComponent("monitor.sqlite").path, cli.dir.appendingPathComponent("coordinator.sqlite").path)
        let serverData = cli.dir.appendingPathComponent("server").path
        let server = try ServerProcess(data: serverData)
        defer { server.stop() }
        // Restored on another port: the devices are pointed at it, keeping what they hold.
        for db in [m, c] { ok(try cli.run(["remote", "set-url", "origin", server.url], db: db, env: Self.fixtureEnv), "set-url") }
        #expect(try persons(cli, m).count == 3, "the monitor's records, read by the new release")
        ok(try cli.run(["sync"], db: m, env: Self.fixtureEnv), "monitor sync")
        let again = ok(try cli.run(["sync"], db: c, env: Self.fixtureEnv), "coordinator sync")
        #expect(again.stderr.contains("pulling everything again"), "\(again.stderr)")
        #expect(!ok(try cli.run(["sync"], db: c, env: Self.fixtureEnv)).stderr.contains("pulling everything again"), "once only")
        #expect(Set(try persons(cli, c).map { $0["id"] as! String }) == Set(ids))

        // The coordinator merges the two spellings and judges the third person different.
        ok(try cli.run(["persons", "merge", ids[0], ids[1]], db: c, env: Self.fixtureEnv), "merge")
        ok(try cli.run(["persons", "distinct", ids[0], ids[2]], db: c, env: Self.fixtureEnv), "distinct")
        ok(try cli.run(["sync"], db: c, env: Self.fixtureEnv))
        ok(try cli.run(["sync"], db: m, env: Self.fixtureEnv))
        let merged = try persons(cli, m)
        #expect(merged.count == 2, "\(merged.map { $0["name"] ?? "" })")
        let kept = merged.first { $0["id"] as? String == ids[0] }
        #expect((kept?["aliases"] as? [String])?.contains("Askar Kairbek") == true, "every name of the merged person is an alias")
        #expect((kept?["incidents"] as? [Any])?.count == 2, "and every incident")
        #expect((kept?["merged"] as? [String]) == [ids[1]])
        let history = ok(try cli.run(["history", ids[1]], db: m, env: Self.fixtureEnv)).stdout
        #expect(history.contains("merged_into") && history.contains("coordinator-laptop"), "who merged, and when: \(history)")
        let dup = ok(try cli.run(["persons", "duplicates", "--json", "--min-score", "0"], db: m, env: Self.fixtureEnv)).stdout
        let pairs = try JSONSerialization.jsonObject(with: Data(dup.utf8)) as! [[String: Any]]
        #expect(!pairs.contains { Set([$0["a"] as! String, $0["b"] as! String]) == Set([ids[0], ids[2]]) }, "judged distinct: \(pairs)")

        // The monitor undoes the merge; the coordinator sees two persons again.
        ok(try cli.run(["persons", "unmerge", ids[1]], db: m, env: Self.fixtureEnv), "unmerge")
        ok(try cli.run(["sync"], db: m, env: Self.fixtureEnv))
        ok(try cli.run(["sync"], db: c, env: Self.fixtureEnv))
        #expect(try persons(cli, c).count == 3)

        // The store on disk has the new column and table.
        server.stop()
        let store = try DatabaseQueue(path: (serverData as NSString).appendingPathComponent("store.sqlite"))
        let (columns, judged) = try store.read { db in
            (try db.columns(in: "person").map(\.name), try db.tableExists("distinct_pair") ? try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM distinct_pair") : nil)
        }
        #expect(columns.contains("merged_into"))
        #expect(judged == 1)
    }

    /// A client of schema 1 (the previous release) pushes and pulls through a server of this
    /// release without an error: it is never sent the table or field it does not know, not even
    /// as a bare row; a schema the server does not serve is told to update (426).
    @Test func aClientOfThePreviousSchemaIsServedOnlyWhatItKnows() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldbook-v1-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try ServerProcess(data: dir.path)
        defer { server.stop() }
        let token = try server.token("hq", regions: "*", coordinator: true)
        let http = HTTPTestClient(client: HTTPClient.shared, base: server.url)
        try await http.enrolKeys(coordinator: token, name: "hq")
        let site = SiteID.random()
        let (a, b) = (newID(), newID())
        let now = nowMillis()
        // This release's push: two persons, one merged into the other, and a judgement.
        var cs = Changeset(sites: [site], tables: [
            TableChanges(table: "person", fields: ["region", "name", "merged_into"], rows: [
                RowChange(id: a, cl: 1, hlc: h(now, 0), site: 0, fields: [
                    FieldChange(field: 0, value: .text("almaty"), hlc: h(now, 0), site: 0),
                    FieldChange(field: 1, value: .text("Асқар Қайырбек"), hlc: h(now, 0), site: 0)]),
                RowChange(id: b, cl: 1, hlc: h(now, 1), site: 0, fields: [
                    FieldChange(field: 0, value: .text("almaty"), hlc: h(now, 1), site: 0),
                    FieldChange(field: 1, value: .text("Askar Kairbek"), hlc: h(now, 1), site: 0),
                    FieldChange(field: 2, value: .text(a), hlc: h(now, 1), site: 0)]),
            ]),
        ])
        let (low, high) = a < b ? (a, b) : (b, a)
        cs.tables.append(TableChanges(table: "distinct_pair", fields: ["region", "person_id", "other_id"], rows: [
            RowChange(id: newID(), cl: 1, hlc: h(now, 2), site: 0, fields: [
                FieldChange(field: 0, value: .text("almaty"), hlc: h(now, 2), site: 0),
                FieldChange(field: 1, value: .text(low), hlc: h(now, 2), site: 0),
                FieldChange(field: 2, value: .text(high), hlc: h(now, 2), site: 0)]),
        ]))
        let pushed = try await http.push(cs, site: site, token: token, from: 0, to: 1, lineage: HTTPTestClient.lineage(ack: nil, id: "0123456789abcdef0123456789abcdef"))
        #expect(pushed.status == 200, "\(pushed.message)")
        // A later push that changes only the new field: an old client must not see the row at all.
        let unmerge = Changeset(sites: [site], tables: [TableChanges(table: "person", fields: ["merged_into"], rows: [
            RowChange(id: b, cl: 1, hlc: h(now, 1), site: 0, fields: [
                FieldChange(field: 0, value: .null, hlc: h(now + 5, 0), site: 0)]),
        ])])

        let v1 = [("Fieldbook-Protocol", String(SyncProtocol.version)), ("Fieldbook-Schema", "1")]
        func pullV1(after cursor: String?) async throws -> PullResponse {
            let path = SyncProtocol.pullPath + "?limit=1000" + (cursor.map { "&cursor=\($0)" } ?? "")
            let r = try await http.send(path, method: .GET, token: token, body: nil, headers: v1)
            #expect(r.status == 200, "\(r.message)")
            return try JSONDecoder().decode(PullResponse.self, from: r.body)
        }
        /// What the previous release checks on arrival: every table and field is one it knows.
        func knownToSchema1(_ page: PullResponse) throws -> Bool {
            try page.changes.changeset().tables.allSatisfy { t in
                guard let schema = FieldbookSchema.tables.first(where: { $0.name == t.table }), schema.since <= 1 else { return false }
                return t.fields.allSatisfy { f in schema.columns.first { $0.name == f }.map { $0.since <= 1 } ?? false }
            }
        }
        let first = try await pullV1(after: nil)
        #expect(try knownToSchema1(first))
        #expect(try first.changes.changeset().tables.flatMap(\.rows).map(\.id).sorted() == [a, b].sorted(), "both persons, without the new field")
        let second = try await http.push(unmerge, site: site, token: token, from: 1, to: 2,
                                         lineage: HTTPTestClient.lineage(ack: "0123456789abcdef0123456789abcdef", id: "1123456789abcdef0123456789abcdef"))
        #expect(second.status == 200, "\(second.message)")
        let next = try await pullV1(after: first.cursor)
        #expect(try next.changes.changeset().isEmpty, "a change of a field schema 1 does not know is not sent as a bare row")
        // A schema-2 pull gets everything.
        let all = try await http.pullAll(token: token)
        #expect(all.tables.contains { $0.table == "distinct_pair" } && all.tables.contains { $0.fields.contains("merged_into") })

        // An old client's push (no merged_into) is taken.
        let oldSite = SiteID.random()
        let old = PushRequest(site: oldSite, from: 0, to: 1, changes: WireChangeset(TestSealing.seal(Changeset(sites: [oldSite], tables: [
            personRow(newID(), region: "almaty", name: "Marat Ilyashev")]))))
        let oldPush = try await http.send(SyncProtocol.pushPath, token: token, body: try JSONEncoder().encode(old),
                                          headers: v1 + HTTPTestClient.lineage(ack: nil, id: "2123456789abcdef0123456789abcdef"))
        #expect(oldPush.status == 200, "\(oldPush.message)")
        for schema in ["0", "3", "x"] {
            let r = try await http.send(SyncProtocol.pullPath, method: .GET, token: token, body: nil,
                                        headers: [("Fieldbook-Protocol", String(SyncProtocol.version)), ("Fieldbook-Schema", schema)])
            #expect(r.status == 426 && r.code == "unsupported_version", "schema \(schema): \(r.status)")
        }
    }
}
