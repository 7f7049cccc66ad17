import AsyncHTTPClient
import FieldbookModel
import FieldbookTestSupport
import Foundation
import Testing

/// Issue 7, item 6: one site id used by two writers — a replica restored from an older backup,
/// or one file copied to a second laptop. Real server process, real replica files, the real CLI.
@Suite(.serialized) struct ForkedReplicaTests {
    func db(_ cli: CLIRunner, _ name: String) -> String { cli.dir.appendingPathComponent("\(name).sqlite").path }

    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    /// The replica file with its WAL, as a person copying it (or a backup tool) would.
    func copy(_ from: String, _ to: String) throws {
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: to + suffix)
            if FileManager.default.fileExists(atPath: from + suffix) { try FileManager.default.copyItem(atPath: from + suffix, toPath: to + suffix) }
        }
    }

    func persons(_ cli: CLIRunner, _ db: String) throws -> [String: [String: Any]] {
        let r = try cli.run(["list", "persons", "--json"], db: db)
        let all = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
        return Dictionary(uniqueKeysWithValues: all.map { ($0["id"] as! String, $0) })
    }

    func site(_ cli: CLIRunner, _ db: String) throws -> String {
        let status = try cli.run(["status"], db: db).stdout
        return status.split(separator: "\n").first { $0.hasPrefix("site") }!.split(separator: " ").last.map(String.init)!
    }

    @Test func copiedReplicaOnTwoLaptopsEndsWithEveryEditOnEveryReplica() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (a, b, c) = (db(cli, "a"), db(cli, "b"), db(cli, "c"))
        let token = try server.token("almaty", regions: "almaty")
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-a"], db: a))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", token], db: a))
        try server.approve([a], cli: cli)
        let p = ok(try cli.run(["person", "add", "--name", "Asqar Qaiyrbek"], db: a)).line
        ok(try cli.run(["sync"], db: a))
        try copy(a, b)  // the same file, now on a second laptop
        #expect(try site(cli, a) == site(cli, b))

        // Both write, under the same site id, and both sync: the second to push is caught.
        ok(try cli.run(["edit", p, "--set", "occupation=journalist"], db: a))
        let onA = ok(try cli.run(["person", "add", "--name", "Recorded on A"], db: a)).line
        ok(try cli.run(["edit", p, "--set", "notes=seen on B"], db: b))
        let onB = ok(try cli.run(["person", "add", "--name", "Recorded on B"], db: b)).line
        ok(try cli.run(["sync"], db: a), "a")
        let healed = ok(try cli.run(["sync"], db: b), "b")
        #expect(healed.stderr.contains("also used by another copy"), "the notice: \(healed.stderr)")
        #expect(try site(cli, a) != site(cli, b))
        ok(try cli.run(["sync"], db: a), "a again")
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-c"], db: c))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("almaty-c", regions: "almaty")], db: c))
        try server.approve([c], cli: cli)
        ok(try cli.run(["sync"], db: c), "c")

        for replica in [a, b, c] {
            let all = try persons(cli, replica)
            #expect(all[onA] != nil && all[onB] != nil, "\(replica) lacks a record")
            #expect(all[p]?["occupation"] as? String == "journalist", "\(replica)")
            #expect(all[p]?["notes"] as? String == "seen on B", "\(replica)")
        }
        #expect(try cli.run(["export", "--format", "csv"], db: a).stdout == cli.run(["export", "--format", "csv"], db: b).stdout)
        // And it stays healed: nothing more to exchange, no further notice.
        let again = ok(try cli.run(["sync"], db: b))
        #expect(again.line == "pushed 0, pulled 0" && !again.stderr.contains("also used"), "\(again.stdout) \(again.stderr)")
    }

    @Test func replicaRestoredFromAnOlderBackupGetsBackWhatItPushedAfterTheBackup() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (a, backup, c) = (db(cli, "a"), db(cli, "a-backup"), db(cli, "c"))
        let token = try server.token("almaty", regions: "almaty")
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-a"], db: a))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", token], db: a))
        try server.approve([a], cli: cli)
        let first = ok(try cli.run(["person", "add", "--name", "Before the backup"], db: a)).line
        ok(try cli.run(["sync"], db: a))
        try copy(a, backup)
        let second = ok(try cli.run(["person", "add", "--name", "After the backup"], db: a)).line
        ok(try cli.run(["edit", first, "--set", "occupation=lawyer"], db: a))
        ok(try cli.run(["sync"], db: a))

        // The laptop dies; the backup is restored. Only pulling must bring back what it pushed since.
        try copy(backup, a)
        #expect(try persons(cli, a)[second] == nil)
        let pulled = ok(try cli.run(["sync"], db: a), "restored")
        #expect(pulled.stderr.contains("also used by another copy"), "\(pulled.stderr)")
        var all = try persons(cli, a)
        #expect(all[second] != nil)
        #expect(all[first]?["occupation"] as? String == "lawyer")

        // New edits on the restored replica reach everyone.
        let third = ok(try cli.run(["person", "add", "--name", "After the restore"], db: a)).line
        ok(try cli.run(["sync"], db: a))
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-c"], db: c))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("almaty-c", regions: "almaty")], db: c))
        try server.approve([c], cli: cli)
        ok(try cli.run(["sync"], db: c))
        all = try persons(cli, c)
        #expect(all[first] != nil && all[second] != nil && all[third] != nil)
        #expect(all[first]?["occupation"] as? String == "lawyer")
    }

    /// The lineage rule over raw HTTP: a retry after a lost answer repeats the push's id and is
    /// accepted; another writer naming an older acknowledgement is refused, on push and on pull;
    /// malformed lineage headers are a 400.
    @Test func retryAfterALostAnswerIsAcceptedAndASecondWriterIsRefused() async throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        let http = HTTPTestClient(client: HTTPClient(eventLoopGroupProvider: .singleton), base: server.url)
        defer { server.stop() }
        do {
            let token = try server.token("almaty", regions: "almaty")
            try await http.enrolKeys(coordinator: try server.token("hq", regions: "*", coordinator: true), name: "hq")
            let site = SiteID.random()
            let (x, y, z) = (String(repeating: "a", count: 32), String(repeating: "b", count: 32), String(repeating: "c", count: 32))
            func push(ack: String?, id: String?, name: String) async throws -> HTTPTestClient.Reply {
                let cs = Changeset(sites: [site], tables: [personRow(newID(), region: "almaty", name: name)])
                return try await http.push(cs, site: site, token: token, binary: true, lineage: HTTPTestClient.lineage(ack: ack, id: id))
            }
            func pull(ack: String?) async throws -> HTTPTestClient.Reply {
                try await http.send(SyncProtocol.pullPath + "?site=\(site)", method: .GET, token: token, body: nil,
                                    headers: HTTPTestClient.versions + [(SyncProtocol.ackHeader, ack ?? "none")])
            }
            #expect(try await push(ack: nil, id: x, name: "first").status == 200)
            #expect(try await push(ack: nil, id: x, name: "first, again").status == 200, "a retry")
            let fork = try await push(ack: nil, id: y, name: "a copy's first")
            #expect(fork.status == 409 && fork.code == "site_forked", "\(fork.status) \(fork.message)")
            #expect(try await pull(ack: nil).code == "site_forked")
            #expect(try await pull(ack: x).status == 200)
            #expect(try await push(ack: x, id: y, name: "second").status == 200)
            #expect(try await push(ack: nil, id: x, name: "an old retry").code == "site_forked", "only the last push can be retried")
            #expect(try await push(ack: x, id: z, name: "behind").code == "site_forked")
            #expect(try await pull(ack: y).status == 200)
            // The refused pushes changed nothing.
            let names = try await http.pullAll(token: token).tables.flatMap(\.rows).compactMap { $0.fields.last?.value.text }
            #expect(Set(names) == ["first", "first, again", "second"])
            for bad in [("nonsense", y), (x, "short"), (x.uppercased(), y)] {
                let r = try await push(ack: bad.0, id: bad.1, name: "bad")
                #expect(r.status == 400 && r.code == "invalid_lineage", "\(bad): \(r.status) \(r.message)")
            }
            let noID = try await http.push(Changeset(sites: [site], tables: [personRow(newID(), region: "almaty", name: "x")]),
                                           site: site, token: token, lineage: [(SyncProtocol.ackHeader, y)])
            #expect(noID.status == 400 && noID.code == "invalid_lineage")
        } catch {
            try? await http.client.shutdown()
            throw error
        }
        try await http.client.shutdown()
    }
}
