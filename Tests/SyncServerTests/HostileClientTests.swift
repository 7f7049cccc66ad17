import AsyncHTTPClient
import FieldbookModel
import FieldbookTestSupport
import Foundation
import NIOHTTP1
import Testing

/// A real `fieldbook-server` process and real tokens of two regions, attacked the way a holder of
/// one monitor token could: every refusal is a 4xx with a JSON body, the server keeps serving, and
/// the store is exactly as before.
@Suite(.serialized) struct HostileClientTests {
    final class Setup: @unchecked Sendable {
        let cli: CLIRunner
        let server: ServerProcess
        let http: HTTPTestClient
        let almaty: String, atyrau: String, both: String, coordinator: String
        /// The operator's metrics token: the detailed health (the store's site) is for its bearer.
        let metricsToken = "operator-metrics-" + UUID().uuidString

        init() throws {
            cli = try CLIRunner()
            let metricsFile = try cli.file("metrics.token", metricsToken + "\n")
            server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path, arguments: ["--metrics-token-file", metricsFile])
            http = HTTPTestClient(client: HTTPClient(eventLoopGroupProvider: .singleton), base: server.url)
            almaty = try server.token("almaty-monitor", regions: "almaty")
            atyrau = try server.token("atyrau-monitor", regions: "atyrau")
            both = try server.token("two-regions", regions: "almaty,atyrau")
            coordinator = try server.token("coordinator", regions: "*", coordinator: true)
        }

        func close() async {
            try? await http.client.shutdown()
            server.stop()
        }
    }

    func with(_ body: (Setup) async throws -> Void) async throws {
        let s = try Setup()
        do {
            try await s.http.enrolKeys(coordinator: s.coordinator, name: "coordinator")
            try await body(s)
        } catch {
            await s.close()
            throw error
        }
        await s.close()
    }

    func expectRefused(_ r: HTTPTestClient.Reply, _ status: Int, _ code: String? = nil, _ what: String) {
        #expect(r.status == status, "\(what): \(r.status) \(r.message)")
        if let code { #expect(r.code == code, "\(what): \(r.code ?? "no JSON error") \(r.message)") }
        #expect(r.json?["error"] != nil, "\(what): no JSON error body")
    }

    /// Issue 7, item 1 and its family: every integer the decoder reads, set to each extreme and its
    /// neighbours, in both body forms. Never a crash or a 5xx; never a change to the store.
    @Test func integersAtTheirExtremesAreRefusedAndNeverCrashTheServer() async throws {
        try await with { s in
            let site = SiteID.random()
            let p = newID()
            var good = Changeset(sites: [site], tables: [personRow(p, region: "almaty", name: "Asqar Qaiyrbek")])
            good.tables.append(TableChanges(table: "alias", fields: ["region", "person_id", "name"], rows: [
                RowChange(id: newID(), cl: 1, hlc: nowMillis() << 16, site: 0, fields: [
                    FieldChange(field: 0, value: .text("almaty"), hlc: nowMillis() << 16, site: 0),
                    FieldChange(field: 1, value: .text(p), hlc: nowMillis() << 16, site: 0),
                    FieldChange(field: 2, value: .text("Қайырбек"), hlc: nowMillis() << 16, site: 0),
                ]),
            ]))
            #expect(try await s.http.push(good, site: site, token: s.almaty).status == 200)
            let before = try await s.http.pullAll(token: s.coordinator)

            let extremes: [Int64] = [.min, .min + 1, -(1 << 62), -2, -1, 0, 1 << 62, .max - 1, .max]
            let base = WireChangeset(good)
            var slots: [(String, (inout WireChangeset, Int64) -> Void)] = [
                ("table hlc", { w, v in w.tables[0].hlc[0] = v }),
                ("table cl", { w, v in w.tables[0].cl = [v] }),
                ("table site", { w, v in w.tables[0].site = [Int(truncatingIfNeeded: v)] }),
                ("shared", { w, v in w.tables[0].shared[0] = Int(truncatingIfNeeded: v) }),
                ("row step", { w, v in w.tables[0].columns[0].rows[0] = Int(truncatingIfNeeded: v) }),
                ("field hlc offset", { w, v in w.tables[0].columns[1].hlc[0] = v }),
                ("field site", { w, v in w.tables[0].columns[0].site = [Int(truncatingIfNeeded: v)] }),
            ]
            // A second row makes the second step and the row-relative clock of a later row reachable.
            slots.append(("second row step", { w, v in
                w.tables[1].columns[0].rows = [0, Int(truncatingIfNeeded: v)]
                w.tables[1].columns[0].values.append(.text("almaty"))
                w.tables[1].columns[0].hlc.append(0)
            }))
            var tried = 0
            for (name, set) in slots {
                for v in extremes {
                    var w = base
                    set(&w, v)
                    for binary in [true, false] {
                        let r = try await s.http.push(w, site: site, token: s.almaty, from: 1, to: 2, binary: binary)
                        tried += 1
                        // Either refused (4xx, JSON) or, when the value happens to be a valid one, accepted.
                        #expect(r.status == 200 || (400..<500).contains(r.status), "\(name) = \(v) (\(binary ? "binary" : "JSON")): \(r.status) \(r.message)")
                        #expect(r.status == 200 || r.json?["error"] != nil)
                    }
                    #expect(try await s.http.healthy(), "\(name) = \(v): the server stopped answering")
                }
            }
            #expect(tried == slots.count * extremes.count * 2)
            // The exact push of the issue: one row step of Int64.min in a binary body.
            var crash = base
            crash.tables[0].columns[0].rows[0] = Int.min
            expectRefused(try await s.http.push(crash, site: site, token: s.almaty, from: 1, to: 2, binary: true), 400, "malformed", "Int64.min row step")
            // Values that decode but are not clocks or causal lengths never reach the store.
            #expect(try await s.http.pullAll(token: s.coordinator) == before)
        }
    }

    /// Issue 7, item 2 and its family: every path by which a token of one region could create,
    /// move, rename, delete or attach to a record of another region, applied or quarantined.
    @Test func aTokenOfOneRegionCannotTakeOverAnotherRegionsRecords() async throws {
        try await with { s in
            let victimSite = SiteID.random(), attacker = SiteID.random()
            let p = newID()
            #expect(try await s.http.push(Changeset(sites: [victimSite], tables: [personRow(p, region: "almaty", name: "Asqar Qaiyrbek")]),
                                          site: victimSite, token: s.almaty).status == 200)
            let before = try await s.http.pullAll(token: s.coordinator)
            let future = nowMillis() + 3 * 86_400_000
            var n: Int64 = 0
            func attack(_ cs: Changeset, _ token: String, site: SiteID? = nil) async throws -> HTTPTestClient.Reply {
                n += 1
                let site = site ?? attacker
                var cs = cs
                cs.sites = [site]
                return try await s.http.push(cs, site: site, token: token, from: 0, to: n)
            }
            let alias = TableChanges(table: "alias", fields: ["region", "person_id", "name"], rows: [
                RowChange(id: newID(), cl: 1, hlc: nowMillis() << 16, site: 0, fields: [
                    FieldChange(field: 0, value: .text("atyrau"), hlc: nowMillis() << 16, site: 0),
                    FieldChange(field: 1, value: .text(p), hlc: nowMillis() << 16, site: 0),
                    FieldChange(field: 2, value: .text("Impostor"), hlc: nowMillis() << 16, site: 0),
                ]),
            ])
            let cases: [(String, Changeset, String, Int, String)] = [
                ("new incarnation (cl + 2) moved to the attacker's region", Changeset(tables: [personRow(p, region: "atyrau", name: "Renamed", cl: 3)]), s.atyrau, 403, "region_not_allowed"),
                ("same incarnation, region rewritten", Changeset(tables: [personRow(p, region: "atyrau", name: "Renamed")]), s.atyrau, 403, "region_not_allowed"),
                ("rename without a region", Changeset(tables: [personRow(p, region: nil, name: "Renamed")]), s.atyrau, 403, "region_not_allowed"),
                ("delete", Changeset(tables: [personRow(p, region: nil, name: nil, cl: 2)]), s.atyrau, 403, "region_not_allowed"),
                ("child of the attacker's region attached to the victim's person", Changeset(tables: [alias]), s.atyrau, 403, "parent_region_mismatch"),
                ("quarantined rename (clock ahead)", Changeset(tables: [personRow(p, region: nil, name: "Renamed", millis: future)]), s.atyrau, 403, "region_not_allowed"),
                ("quarantined new incarnation", Changeset(tables: [personRow(p, region: "atyrau", name: "Renamed", cl: 5, millis: future)]), s.atyrau, 403, "region_not_allowed"),
                ("a token of both regions moving the record", Changeset(tables: [personRow(p, region: "atyrau", name: "Moved", cl: 3)]), s.both, 403, "region_immutable"),
                ("a token of both regions attaching a child of another region", Changeset(tables: [alias]), s.both, 403, "parent_region_mismatch"),
            ]
            for (what, cs, token, status, code) in cases { expectRefused(try await attack(cs, token), status, code, what) }
            // Pushing under the victim's site id (to hide changes from it, or to forge its log).
            expectRefused(try await attack(Changeset(tables: [personRow(newID(), region: "atyrau", name: "X")]), s.atyrau, site: victimSite),
                          403, "site_not_yours", "push under another token's site")
            // Under the server's own site id.
            let health = try await s.http.send(SyncProtocol.healthPath, method: .GET, token: s.metricsToken, body: nil)
            let serverSite = try #require(try JSONDecoder().decode(HealthResponse.self, from: health.body).site, "the operator's health names the store's site")
            expectRefused(try await attack(Changeset(tables: [personRow(newID(), region: "atyrau", name: "X")]), s.atyrau, site: serverSite),
                          403, "site_not_yours", "push under the server's site")
            #expect(try await s.http.pullAll(token: s.coordinator) == before)
            #expect(try CLIRunner.exec(ServerProcess.binary, ["quarantine", "list", "--data", s.server.data]).line == "no quarantined changes")

            // The legitimate owner still can; a delete of a record the server never held changes nothing.
            #expect(try await s.http.push(Changeset(sites: [victimSite], tables: [personRow(p, region: nil, name: "Asqar Qaiyrbek (corrected)")]),
                                          site: victimSite, token: s.almaty, from: 1, to: 2).status == 200)
            let unknown = try await s.http.push(Changeset(sites: [victimSite], tables: [personRow(newID(), region: nil, name: nil, cl: 2)]),
                                                site: victimSite, token: s.almaty, from: 2, to: 3)
            #expect(unknown.status == 200 && unknown.json?["applied"] as? Int == 0)
        }
    }

    /// Issue 7, item 11: what a small body could make the server allocate is bounded before it is.
    @Test func decodingAllocatesNothingBeforeItChecks() async throws {
        try await with { s in
            let site = SiteID.random()
            // One 30 MB id shared by 200,000 front-coded rows (terabytes once joined).
            var w = WireChangeset(sites: [site], names: nil, tables: [WireChangeset.WireTable(
                table: "person", shared: [0] + Array(repeating: 30_000_000, count: 199_999),
                ids: [String(repeating: "a", count: 30_000_000)] + Array(repeating: "", count: 199_999),
                cl: Array(repeating: 2, count: 200_000), hlc: [nowMillis() << 16] + Array(repeating: 0, count: 199_999), site: nil, columns: [])])
            for binary in [true, false] {
                let r = try await s.http.push(w, site: site, token: s.almaty, binary: binary)
                #expect(r.status == 400 || r.status == 413, "long shared id (\(binary ? "binary" : "JSON")): \(r.status) \(r.message)")
            }
            // A list of 100,000 sites that no change uses: counted against the batch, never registered.
            w = WireChangeset(sites: (0..<100_000).map { _ in SiteID.random() }, names: nil, tables: [])
            let sites = try await s.http.push(w, site: site, token: s.almaty, binary: true)
            expectRefused(sites, 413, "batch_too_large", "100,000 sites")
            // A JSON body of millions of tiny values: counted before it is decoded.
            let tiny = "{\"site\":\"\(site)\",\"from\":0,\"to\":1,\"changes\":{\"sites\":[],\"tables\":[{\"table\":\"person\",\"shared\":[" +
                Array(repeating: "0", count: 3_000_000).joined(separator: ",") + "],\"ids\":[],\"hlc\":[],\"columns\":[]}]}}"
            expectRefused(try await s.http.send(SyncProtocol.pushPath, token: s.almaty, body: Data(tiny.utf8)), 413, "batch_too_large", "JSON of tiny values")
            // Device names that would act on a terminal are refused on arrival.
            var named = WireChangeset(Changeset(sites: [site], tables: [personRow(newID(), region: "almaty", name: "P")]))
            named.names = ["laptop\u{1B}]0;pwned\u{07}"]
            expectRefused(try await s.http.push(named, site: site, token: s.almaty), 400, "invalid", "escape sequence in a device name")
            #expect(try await s.http.pullAll(token: s.coordinator).isEmpty)
            #expect(try await s.http.healthy())
        }
    }
}
