import FieldbookTestSupport
import Foundation
import GRDB
import ReplicaStore
import FieldbookModel
import Testing

/// Real `fieldbook-server` processes on 127.0.0.1 and real replicas driven through `fieldbook`.
@Suite(.serialized) struct SyncEndToEndTests {
    func persons(_ cli: CLIRunner, _ db: String) throws -> [[String: Any]] {
        let r = try cli.run(["list", "persons", "--json"], db: db)
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
    }

    func export(_ cli: CLIRunner, _ db: String) throws -> String {
        try cli.run(["export", "--format", "csv"], db: db).stdout
    }

    func db(_ cli: CLIRunner, _ name: String) -> String { cli.dir.appendingPathComponent("\(name).sqlite").path }

    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    /// Two monitors, offline edits on both, conflicts, delete vs. edit, re-creation; synced in
    /// both orders, every replica ends with the same records and the expected winners.
    @Test(arguments: [true, false])
    func twoMonitorsConvergeWithTheExpectedWinners(aFirst: Bool) throws {
        _ = try twoMonitors(aFirst: aFirst, store: .embedded)
    }

    /// Issue 11: causal length and history exactly as in the embedded store. The scenario above
    /// through a PostgreSQL store gives the same winners and, on each laptop, the same history of
    /// each record as through the embedded store: every value, its device, and whether it won
    /// (a store that sent a value that had already lost would add a conflict to the history).
    @Test(.enabled(if: TestStore.adminURL != nil, TestStore.postgresSkipReason)) func historyThroughPostgreSQLIsTheHistoryThroughTheEmbeddedStore() throws {
        let embedded = try twoMonitors(aFirst: true, store: .embedded)
        let postgres = try twoMonitors(aFirst: true, store: .postgres)
        #expect(embedded.count == 6)
        for (e, p) in zip(embedded, postgres) { #expect(e == p, "embedded:\n\(e.joined(separator: "\n"))\npostgres:\n\(p.joined(separator: "\n"))") }
    }

    /// The scenario; returns the history of the three records it works on, on each laptop.
    func twoMonitors(aFirst: Bool, store: TestStore) throws -> [[String]] {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path, store: store)
        defer { server.stop() }
        let (a, b) = (db(cli, "a"), db(cli, "b"))
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-a"], db: a))
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-b"], db: b))
        ok(try cli.run(["import", CLIRunner.fixture], db: a))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("a", regions: "almaty")], db: a))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("b", regions: "almaty")], db: b))
        try server.approve([a, b], cli: cli)
        let pushed = ok(try cli.run(["sync"], db: a), "first push")
        let pulled = ok(try cli.run(["sync"], db: b), "first pull")
        #expect(try export(cli, a) == export(cli, b), "\(store): A: \(pushed.stdout) B: \(pulled.stdout)\nserver log: \(server.logTail())")

        let all = try persons(cli, a)
        let p = try #require(all.first { $0["name"] as? String == "Asqar Qaiyrbek" }?["id"] as? String)
        let incidents = try #require(all.first { $0["name"] as? String == "Alnur Ilyashev" }?["incidents"] as? [[String: Any]]).compactMap { $0["id"] as? String }
        try #require(incidents.count >= 2)
        let (deleted, recreated) = (incidents[0], incidents[1])

        // Offline on both. A writes first, B later: B's edit of the same field wins.
        ok(try cli.run(["edit", p, "--set", "occupation=activist (A)", "--set", "notes=seen by A"], db: a))
        ok(try cli.run(["delete", deleted], db: a))
        ok(try cli.run(["delete", recreated], db: a))
        ok(try cli.run(["restore", recreated], db: a))
        let x = ok(try cli.run(["person", "add", "--name", "Recorded on A"], db: a)).line
        Thread.sleep(forTimeInterval: 0.01)
        ok(try cli.run(["edit", p, "--set", "occupation=activist (B)", "--set", "born=1976"], db: b))
        ok(try cli.run(["edit", deleted, "--set", "description=edited on B, concurrently with the delete"], db: b))
        ok(try cli.run(["edit", recreated, "--set", "verification=possible"], db: b))
        let y = ok(try cli.run(["person", "add", "--name", "Recorded on B"], db: b)).line

        for replica in aFirst ? [a, b, a] : [b, a, b] { ok(try cli.run(["sync"], db: replica), "sync") }

        #expect(try export(cli, a) == export(cli, b))
        let pa = try persons(cli, a), pb = try persons(cli, b)
        #expect(pa.map { $0["id"] as! String } == pb.map { $0["id"] as! String })
        let asqar = try #require(pa.first { $0["id"] as? String == p })
        #expect(asqar["occupation"] as? String == "activist (B)")  // newer edit of the same field
        #expect(asqar["notes"] as? String == "seen by A")           // different fields both survive
        #expect(asqar["born"] as? String == "1976")
        let alnur = try #require(pa.first { $0["name"] as? String == "Alnur Ilyashev" }?["incidents"] as? [[String: Any]])
        #expect(!alnur.contains { $0["id"] as? String == deleted })   // the delete beats the concurrent edit
        let back = alnur.first { $0["id"] as? String == recreated }
        #expect(back != nil)                                          // the re-creation beats the delete
        #expect(back?["verification"] as? String == "confirmed")      // and the edit made in the older incarnation
        #expect(pa.contains { $0["id"] as? String == x } && pa.contains { $0["id"] as? String == y })
        // Nothing is lost: the losing edit is in the history, with the device that wrote it.
        #expect(try cli.run(["history", p], db: a).stdout.contains("activist (A)"))
        let historyOnB = try cli.run(["history", p], db: b).stdout
        #expect(historyOnB.contains("laptop-a") && historyOnB.contains("this device (laptop-b)"))
        let occupation = try Self.history(cli, p, a, me: "laptop-a").filter { $0.hasPrefix("occupation|") }
        #expect(occupation.contains("occupation|activist (B)|laptop-b|current"), "\(occupation)")
        #expect(occupation.contains { $0.hasPrefix("occupation|activist (A)|laptop-a|") && !$0.hasSuffix("|current") }, "\(occupation)")
        // Nothing left to exchange.
        #expect(ok(try cli.run(["sync"], db: a)).line == "pushed 0, pulled 0")
        return try [p, deleted, recreated].flatMap { id in
            [try Self.history(cli, id, a, me: "laptop-a"), try Self.history(cli, id, b, me: "laptop-b")]
        }
    }

    /// A record's history as lines "field|value|device|status", times left out, "this device (X)"
    /// read as X.
    static func history(_ cli: CLIRunner, _ id: String, _ db: String, me: String) throws -> [String] {
        let out = try cli.run(["history", id], db: db).stdout
        return out.split(separator: "\n").dropFirst(2).map { line in
            let cols = line.split(separator: "  ", omittingEmptySubsequences: true).map { $0.trimmingCharacters(in: .whitespaces) }
            return cols.dropFirst().map { $0 == "this device (\(me))" ? me : $0 }.joined(separator: "|")
        }
    }

    /// Two regional servers and a coordinator with both as remotes: changes relayed keep their
    /// clocks and sites, all three converge, and a further sync moves nothing (no echo).
    @Test func twoServersAndACoordinatorConverge() throws {
        let cli = try CLIRunner()
        let s1 = try ServerProcess(data: cli.dir.appendingPathComponent("s1").path)
        let s2 = try ServerProcess(data: cli.dir.appendingPathComponent("s2").path)
        defer { s1.stop(); s2.stop() }
        let (a, b, c) = (db(cli, "a"), db(cli, "b"), db(cli, "c"))
        ok(try cli.run(["init", "--region", "almaty"], db: a))
        ok(try cli.run(["init", "--region", "atyrau"], db: b))
        ok(try cli.run(["init", "--region", "almaty", "--device", "coordinator"], db: c))
        ok(try cli.run(["import", CLIRunner.fixture], db: a))
        let p = ok(try cli.run(["person", "add", "--name", "Nurlan Atyrauov", "--born", "1972"], db: b)).line
        ok(try cli.run(["incident", "add", "--person", p, "--kind", "detention", "--date", "2020-05-22", "--article", "CC 174"], db: b))
        ok(try cli.run(["remote", "add", "s1", s1.url, "--token", try s1.token("a", regions: "almaty")], db: a))
        ok(try cli.run(["remote", "add", "s2", s2.url, "--token", try s2.token("b", regions: "atyrau")], db: b))
        ok(try cli.run(["remote", "add", "s1", s1.url, "--token", try s1.token("c", regions: "*", coordinator: true)], db: c))
        ok(try cli.run(["remote", "add", "s2", s2.url, "--token", try s2.token("c", regions: "*", coordinator: true)], db: c))
        try s1.approve([a, c], cli: cli, remote: "s1")
        try s2.approve([b, c], cli: cli, remote: "s2")
        ok(try cli.run(["sync"], db: a))
        ok(try cli.run(["sync"], db: b))
        ok(try cli.run(["sync"], db: c))
        ok(try cli.run(["sync"], db: c))
        // What each server holds, seen through fresh coordinator replicas.
        var views: [String] = []
        for (i, s) in [s1, s2].enumerated() {
            let v = db(cli, "view\(i)")
            ok(try cli.run(["init", "--region", "almaty"], db: v))
            ok(try cli.run(["remote", "add", "s", s.url, "--token", try s.token("view\(i)", regions: "*", coordinator: true)], db: v))
            try s.approve([v], cli: cli)
            ok(try cli.run(["sync"], db: v))
            views.append(try export(cli, v))
        }
        let merged = try export(cli, c)
        #expect(views[0] == merged && views[1] == merged)
        #expect(merged.contains("Nurlan Atyrauov") && merged.contains("Asqar Qaiyrbek"))
        let again = ok(try cli.run(["sync"], db: c)).stdout
        #expect(again.contains("s1: pushed 0, pulled 0") && again.contains("s2: pushed 0, pulled 0"))
        // The monitor of one region sees only its region.
        ok(try cli.run(["sync"], db: a))
        #expect(!(try export(cli, a)).contains("Nurlan Atyrauov"))
    }

    /// A CSV of `n` synthetic incidents, for large pushes.
    func syntheticCSV(_ n: Int) -> String {
        var s = "ref,person_name,person_aliases,person_born,person_sex,person_occupation,person_affiliation,incident_kind,date,date_text,place_region,settlement,facility,authority,articles,sentence_kind,sentence_term,fine_amount,fine_unit,description,source_outlet,source_url,source_date,reliability,verification\r\n"
        for i in 0..<n {
            s += "syn-\(i),Person \(i % 400),,,m,blogger,,detention,2021-0\(1 + i % 9)-1\(i % 10),,Almaty,Almaty,,police,CC 274,,,,,Synthetic incident \(i),RFE/RL,,2022,usually_reliable,likely\r\n"
        }
        return s
    }

    func poll(_ path: String, _ sql: String, timeout: TimeInterval = 60) throws -> Bool {
        // The replica is encrypted: read it through the replica store (its VFS and key).
        let replica = try Replica.open(path: path, tables: FieldbookSchema.tables, passphrase: CLIRunner.passphrase)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? replica.read { db in try Bool.fetchOne(db, sql: sql) }) == true { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    /// Starts `fieldbook ARGS` without waiting for it.
    func background(_ args: [String]) throws -> SpawnedProcess {
        try Spawn.start(CLIRunner.binary, args, env: CLIRunner.encryption)
    }

    /// SIGKILL the server in the middle of a large push and of a large pull, restart it, sync
    /// again: nothing lost, nothing duplicated, converged.
    @Test func killedServerDuringPushAndPullLosesNothing() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (a, d) = (db(cli, "a"), db(cli, "d"))
        ok(try cli.run(["init", "--region", "almaty"], db: a))
        ok(try cli.run(["import", try cli.file("big.csv", syntheticCSV(4_000))], db: a))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("a", regions: "almaty")], db: a))
        let coordinator = try server.token("d", regions: "*", coordinator: true)
        try server.approve([a], cli: cli)

        // Push in small batches; kill the server once some are in.
        let push = try background(["sync", "--db", a, "--batch", "1", "--attempts", "1"])
        #expect(try poll(a, "SELECT push_cursor > 2 FROM _fb_remote"))
        server.stop(signal: SIGKILL)
        push.waitUntilExit()
        #expect(push.terminationStatus != 0)
        try server.start()
        ok(try cli.run(["sync"], db: a), "push after restart")

        // Pull in small pages into a fresh replica; kill the server once some pages are in.
        ok(try cli.run(["init", "--region", "almaty"], db: d))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", coordinator], db: d))
        try server.approve([d], cli: cli)
        let pull = try background(["sync", "--db", d, "--page", "600", "--attempts", "1"])
        #expect(try poll(d, "SELECT pull_cursor IS NOT NULL FROM _fb_remote"))
        server.stop(signal: SIGKILL)
        pull.waitUntilExit()
        try server.start()
        ok(try cli.run(["sync"], db: d), "pull after restart")

        #expect(try export(cli, a) == export(cli, d))
        let incidents = try cli.run(["list", "incidents", "--json"], db: d).stdout
        let list = try JSONSerialization.jsonObject(with: Data(incidents.utf8)) as! [[String: Any]]
        #expect(list.count == 4_000)
        #expect(Set(list.map { $0["ref"] as! String }).count == 4_000)
    }

    /// The server's store is restored from an older backup: the monitor's next sync finds the
    /// server behind what it acknowledged, pushes everything again, and nothing is lost.
    @Test func serverRestoredFromBackupIsRefilled() throws {
        let cli = try CLIRunner()
        let data = cli.dir.appendingPathComponent("server").path
        let backup = cli.dir.appendingPathComponent("backup").path
        let server = try ServerProcess(data: data)
        defer { server.stop() }
        let (a, d) = (db(cli, "a"), db(cli, "d"))
        ok(try cli.run(["init", "--region", "almaty"], db: a))
        ok(try cli.run(["person", "add", "--name", "Before The Backup"], db: a))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("a", regions: "almaty")], db: a))
        let coordinator = try server.token("d", regions: "*", coordinator: true)
        try server.approve([a], cli: cli)
        ok(try cli.run(["sync"], db: a))
        server.stop()
        try FileManager.default.copyItem(atPath: data, toPath: backup)
        try server.start()
        ok(try cli.run(["import", CLIRunner.fixture], db: a))
        ok(try cli.run(["sync"], db: a))
        server.stop()
        try FileManager.default.removeItem(atPath: data)
        try FileManager.default.copyItem(atPath: backup, toPath: data)
        try server.start()
        ok(try cli.run(["person", "add", "--name", "After The Restore"], db: a))
        ok(try cli.run(["sync"], db: a), "sync after the restore")
        ok(try cli.run(["init", "--region", "almaty"], db: d))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", coordinator], db: d))
        try server.approve([d], cli: cli)
        ok(try cli.run(["sync"], db: d))
        #expect(try export(cli, a) == export(cli, d))
        #expect(try persons(cli, d).count == 33)
    }
}
