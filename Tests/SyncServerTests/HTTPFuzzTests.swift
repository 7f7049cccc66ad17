import AsyncHTTPClient
import FieldbookModel
import FieldbookTestSupport
import Foundation
import Testing

/// An HTTP fuzz of a real server process from its own OpenAPI document, by schemathesis (from
/// PyPI; `.ci/run` installs it and sets `FIELDBOOK_SCHEMATHESIS` to its path). Thousands of
/// requests — positive and negative, every route, headers, query and bodies — with a monitor
/// token of one region: never a 5xx, every status and response body as the document says, the
/// server still serving afterwards, and another region's records exactly as before.
/// `FB_HTTP_FUZZ_SEED` replays a run; `FB_HTTP_FUZZ_EXAMPLES` sets the examples per route.
@Suite(.serialized) struct HTTPFuzzTests {
    static let schemathesis = ProcessInfo.processInfo.environment["FIELDBOOK_SCHEMATHESIS"]

    @Test(.enabled(if: schemathesis != nil, "set FIELDBOOK_SCHEMATHESIS to a schemathesis binary (.ci/run does)"))
    func openAPIFuzzOfARealServerFindsNo5xxAndChangesNothingItMayNot() async throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        let http = HTTPTestClient(client: HTTPClient(eventLoopGroupProvider: .singleton), base: server.url)
        defer { server.stop() }
        do {
            let fuzzToken = try server.token("fuzz", regions: "almaty")
            let atyrau = try server.token("atyrau", regions: "atyrau")
            try await http.enrolKeys(coordinator: try server.token("hq", regions: "*", coordinator: true), name: "hq")
            let site = SiteID.random()
            let seeded = try await http.push(Changeset(sites: [site], tables: [personRow(newID(), region: "atyrau", name: "Серікжан Білаш")]),
                                             site: site, token: atyrau, binary: true)
            #expect(seeded.status == 200, "\(seeded.message)")
            let before = try await http.pullAll(token: atyrau)

            let env = ProcessInfo.processInfo.environment
            let seed = env["FB_HTTP_FUZZ_SEED"] ?? String(UInt32.random(in: 1...UInt32.max))
            let examples = env["FB_HTTP_FUZZ_EXAMPLES"] ?? "200"
            let run = try CLIRunner.exec(URL(fileURLWithPath: Self.schemathesis!), [
                "run", server.url + SyncProtocol.openAPIPath, "-H", "Authorization: Bearer \(fuzzToken)",
                "-c", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "-n", examples, "--seed", seed, "--no-shrink",
            ], env: ["NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""])
            let tail = run.stdout.split(separator: "\n").suffix(40).joined(separator: "\n")
            #expect(run.status == 0, "schemathesis (seed \(seed), replay with FB_HTTP_FUZZ_SEED=\(seed)) found problems:\n\(tail)\n\(run.stderr.suffix(2000))")
            let generated = run.stdout.split(separator: "\n").first { $0.contains("generated") } ?? ""
            print("HTTP fuzz, seed \(seed): \(generated.trimmingCharacters(in: .whitespaces))")

            #expect(server.isRunning)
            #expect(try await http.healthy())
            #expect(try await http.pullAll(token: atyrau) == before, "a token of another region changed atyrau's records")
            let log = (try? String(contentsOfFile: (server.data as NSString).appendingPathComponent("server.log"), encoding: .utf8)) ?? ""
            #expect(!log.contains("request failed"), "the server logged a 5xx:\n\(log.suffix(3000))")
        } catch {
            try? await http.client.shutdown()
            throw error
        }
        try await http.client.shutdown()
    }
}
