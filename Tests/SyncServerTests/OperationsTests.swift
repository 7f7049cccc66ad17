import AsyncHTTPClient
import FieldbookModel
import FieldbookTestSupport
import Foundation
import Testing

/// Issue 11, item 6 (operations), on the embedded store: `/metrics` in the Prometheus text
/// format for the bearer of the metrics token only, a request id on every response, and a
/// health check that asks the store.
@Suite(.serialized) struct OperationsTests {
    @Test func metricsCountRequestsAndChangesForTheBearerOfTheMetricsTokenOnly() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldbook-ops-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let secret = "metrics-" + UUID().uuidString
        let tokenFile = dir.appendingPathComponent("metrics.token")
        try (secret + "\n").write(to: tokenFile, atomically: true, encoding: .utf8)
        let server = try ServerProcess(data: dir.appendingPathComponent("data").path, arguments: ["--metrics-token-file", tokenFile.path])
        defer { server.stop() }
        let http = HTTPTestClient(client: HTTPClient.shared, base: server.url)
        let token = try server.token("hq", regions: "*", coordinator: true)
        try await http.enrolKeys(coordinator: token, name: "hq")

        let site = SiteID.random()
        let push = try await http.push(Changeset(sites: [site], tables: [personRow(newID(), region: "almaty", name: "Асқар Қайырбек")]),
                                       site: site, token: token, lineage: HTTPTestClient.lineage(ack: nil, id: "0123456789abcdef0123456789abcdef"))
        #expect(push.status == 200, "\(push.message)")
        let ids = [push.headers.first(name: "X-Request-Id"), try await http.healthReply().headers.first(name: "X-Request-Id")]
        #expect(ids.allSatisfy { ($0?.count ?? 0) > 0 } && ids[0] != ids[1], "every response names its request: \(ids)")
        _ = try await http.pullAll(token: token)
        let refused = try await http.send(SyncProtocol.pullPath, method: .GET, token: "fb_not_a_token", body: nil)
        #expect(refused.status == 401)

        #expect(try await http.send(SyncProtocol.metricsPath, method: .GET, token: nil, body: nil, headers: []).status == 401)
        #expect(try await http.send(SyncProtocol.metricsPath, method: .GET, token: token, body: nil, headers: []).status == 401,
                "a device token is not the metrics token")
        let scrape = try await http.send(SyncProtocol.metricsPath, method: .GET, token: secret, body: nil, headers: [])
        #expect(scrape.status == 200)
        #expect(scrape.headers.first(name: "Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = String(decoding: scrape.body, as: UTF8.self)
        func sample(_ name: String, _ labels: [String]) -> Double? {
            for line in text.split(separator: "\n") where line.hasPrefix(name) && labels.allSatisfy({ line.contains($0) }) {
                return Double(line.split(separator: " ").last ?? "")
            }
            return nil
        }
        #expect(sample("fieldbook_http_requests_total", ["route=\"/v1/push\"", "method=\"POST\"", "status=\"200\""]) == 1, "\(text)")
        #expect(sample("fieldbook_http_requests_total", ["route=\"/v1/pull\"", "status=\"401\""]) == 1)
        #expect((sample("fieldbook_http_requests_total", ["route=\"/v1/pull\"", "status=\"200\""]) ?? 0) >= 1)
        #expect(sample("fieldbook_changes_pushed_total", []) == 2, "a new person: region and name")
        #expect((sample("fieldbook_changes_pulled_total", []) ?? 0) >= 2)
        #expect((sample("fieldbook_http_request_duration_seconds_count", ["route=\"/v1/push\""]) ?? 0) == 1)
        #expect(text.contains("fieldbook_http_request_duration_seconds_bucket{route=\"/v1/push\""))
        #expect(!text.contains("Қайырбек") && !text.contains(site.description), "no value, id or site in the metrics")
    }

    @Test func aServerWithoutAMetricsTokenServesNoMetricsAndItsHealthAsksTheStore() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fieldbook-ops-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try ServerProcess(data: dir.path)
        defer { server.stop() }
        let http = HTTPTestClient(client: HTTPClient.shared, base: server.url)
        let r = try await http.send(SyncProtocol.metricsPath, method: .GET, token: "anything-at-all-16", body: nil, headers: [])
        #expect(r.status == 404 && r.code == "not_found")
        let health = try await http.healthReply()
        #expect(health.status == 200 && health.json?["status"] as? String == "ok")
    }
}

extension HTTPTestClient {
    func healthReply() async throws -> Reply { try await send(SyncProtocol.healthPath, method: .GET, token: nil, body: nil, headers: []) }
}
