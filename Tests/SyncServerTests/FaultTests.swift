import FieldbookModel
import FieldbookTestSupport
import Foundation
import GRDB
import Testing

/// Bad luck rather than malice: a wrong clock, a busy store, a server restored from an older
/// backup. Real server processes, real replicas driven through `fieldbook`.
@Suite(.serialized) struct FaultTests {
    func db(_ cli: CLIRunner, _ name: String) -> String { cli.dir.appendingPathComponent("\(name).sqlite").path }

    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    func names(_ cli: CLIRunner, _ db: String) throws -> [String] {
        let r = try cli.run(["list", "persons", "--json"], db: db)
        return (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]).map { $0["name"] as! String }.sorted()
    }

    /// Issue 7, item 3: a laptop whose clock runs 8 minutes fast records a person; the server holds
    /// it and says so; after the clock is fixed an edit of only one field syncs (it waits behind);
    /// once the server's time has caught up both are applied, and another laptop gets them.
    @Test func aLaptopWithAFastClockLosesNothing() throws {
        let cli = try CLIRunner()
        let dir = cli.dir.appendingPathComponent("server").path
        var server = try ServerProcess(data: dir)
        defer { server.stop() }
        let (a, b) = (db(cli, "a"), db(cli, "b"))
        let fast = ClockSkew.shifted(minutes: 8)
        ok(try cli.run(["init", "--region", "almaty", "--device", "fast-laptop"], db: a, env: fast))
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-b"], db: b))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("a", regions: "almaty")], db: a))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("b", regions: "almaty")], db: b))
        try server.approve([a, b], cli: cli)
        let p = ok(try cli.run(["person", "add", "--name", "Recorded Fast"], db: a, env: fast)).line
        let first = ok(try cli.run(["sync"], db: a, env: fast), "sync with a fast clock")
        #expect(first.line.contains("1 held by the server"), "\(first.stdout)")
        let status = ok(try cli.run(["status"], db: a)).stdout
        #expect(status.contains("held by server   1") && status.contains("ahead"), "\(status)")

        // The clock is corrected; an edit sends only the changed field (the server does not know the row yet).
        ok(try cli.run(["edit", p, "--set", "occupation=journalist"], db: a))
        let second = ok(try cli.run(["sync"], db: a), "sync after the clock is fixed")
        #expect(second.line.contains("held by the server"), "\(second.stdout)")
        ok(try cli.run(["sync"], db: b))
        #expect(try names(cli, b).isEmpty)

        // Ten minutes pass (every clock is shifted by 10 minutes): the held changes apply, in order.
        let later = ClockSkew.shifted(minutes: 10)
        server.stop()
        server = try ServerProcess(data: dir, port: server.port, environment: later)
        ok(try cli.run(["sync"], db: b, env: later))
        #expect(try names(cli, b) == ["Recorded Fast"])
        let shown = try cli.run(["show", p, "--json"], db: b).stdout
        #expect(shown.contains("journalist"), "\(shown)")
        ok(try cli.run(["sync"], db: a, env: later))
        #expect(ok(try cli.run(["status"], db: a)).stdout.contains("held by server   none"))
    }

    /// The operator's way out when the server's own clock is the wrong one (here a day behind every
    /// device): `quarantine release` applies a held change at once, with its own clocks; `drop`
    /// deletes one.
    @Test func quarantineReleaseAndDropAreTheOperatorsWord() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (a, b) = (db(cli, "a"), db(cli, "b"))
        let fast = ClockSkew.shifted(minutes: 24 * 60)
        ok(try cli.run(["init", "--region", "almaty"], db: a, env: fast))
        ok(try cli.run(["init", "--region", "almaty"], db: b, env: fast))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("a", regions: "almaty")], db: a))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("b", regions: "almaty")], db: b))
        try server.approve([a, b], cli: cli)
        ok(try cli.run(["person", "add", "--name", "Kept"], db: a, env: fast))
        ok(try cli.run(["person", "add", "--name", "Dropped"], db: a, env: fast))
        ok(try cli.run(["sync", "--batch", "1"], db: a, env: fast))
        let list = try CLIRunner.exec(ServerProcess.binary, ["quarantine", "list", "--data", server.data]).stdout
        let ids = list.split(separator: "\n").map { $0.split(separator: "\t")[0] }
        #expect(ids.count == 2, "\(list)")
        #expect(try CLIRunner.exec(ServerProcess.binary, ["quarantine", "drop", "--data", server.data, String(ids[1])]).line == "dropped 1")
        #expect(try CLIRunner.exec(ServerProcess.binary, ["quarantine", "release", "--data", server.data, "--all"]).line == "released 1")
        #expect(try CLIRunner.exec(ServerProcess.binary, ["quarantine", "release", "--data", server.data, "99"]).status != 0)
        ok(try cli.run(["sync"], db: b, env: fast))
        #expect(try names(cli, b) == ["Kept"])
    }

    /// Issue 7, item 4: a store locked by another writer is a 503 with Retry-After, never a
    /// refusal; the client waits and retries, and the sync completes once the lock is gone.
    @Test func aBusyStoreIsRetriedNotRefused() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let a = db(cli, "a")
        ok(try cli.run(["init", "--region", "almaty"], db: a))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("a", regions: "almaty")], db: a))
        try server.approve([a], cli: cli)
        ok(try cli.run(["person", "add", "--name", "Waited For"], db: a))
        // Another process holds the store's write lock for 7 s, longer than the server waits (5 s).
        let store = (server.data as NSString).appendingPathComponent("store.sqlite")
        let lockerOut = cli.dir.appendingPathComponent("locker.out").path
        let locker = try Spawn.start(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute("BEGIN IMMEDIATE"); print("locked", flush=True); time.sleep(7); c.execute("COMMIT")
            """, store], stdout: lockerOut)
        #expect(Spawn.firstLine(of: lockerOut, while: locker) == "locked")
        let started = Date()
        let r = try cli.run(["sync", "--attempts", "6"], db: a)
        locker.waitUntilExit()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) > 6)
        #expect(!r.stderr.contains("refused"), "\(r.stderr)")
        ok(try cli.run(["sync"], db: a))
        #expect(try cli.run(["status"], db: a).stdout.contains("pending changes  0"))
    }

    /// Issue 7, item 5: a replica whose cursor lies beyond the end of a server restored from an
    /// older backup — and the store has since grown past that cursor again with other changes —
    /// pulls everything again, with a notice, and ends with every record.
    @Test func aServerRestoredFromAnOlderBackupRefillsEveryReplica() throws {
        let cli = try CLIRunner()
        let dir = cli.dir.appendingPathComponent("server").path
        let backup = cli.dir.appendingPathComponent("backup").path
        var server = try ServerProcess(data: dir)
        defer { server.stop() }
        let (a, b, c) = (db(cli, "a"), db(cli, "b"), db(cli, "c"))
        for (d, name) in [(a, "a"), (b, "b"), (c, "c")] {
            ok(try cli.run(["init", "--region", "almaty", "--device", name], db: d))
            ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token(name, regions: "almaty")], db: d))
        }
        try server.approve([a, b, c], cli: cli)
        for i in 1...3 { ok(try cli.run(["person", "add", "--name", "Before Backup \(i)"], db: a)) }
        ok(try cli.run(["sync"], db: a))
        ok(try cli.run(["sync"], db: b))
        server.stop()
        try FileManager.default.copyItem(atPath: dir, toPath: backup)
        server = try ServerProcess(data: dir, port: server.port)
        for i in 1...3 { ok(try cli.run(["person", "add", "--name", "After Backup \(i)"], db: a)) }
        ok(try cli.run(["sync"], db: a))
        ok(try cli.run(["sync"], db: b))  // B's cursor is now beyond what the backup holds
        #expect(try names(cli, b).count == 6)

        // The disk dies; the operator restores last night's backup.
        server.stop()
        try FileManager.default.removeItem(atPath: dir)
        try FileManager.default.copyItem(atPath: backup, toPath: dir)
        server = try ServerProcess(data: dir, port: server.port)
        // Others push before B comes back, so the restored store's end passes B's old cursor again.
        for i in 1...8 { ok(try cli.run(["person", "add", "--name", "From C \(i)"], db: c)) }
        ok(try cli.run(["sync"], db: c))
        ok(try cli.run(["sync"], db: a), "A pushes again what the restored store lacks")
        let back = ok(try cli.run(["sync"], db: b), "B comes back")
        #expect(back.stderr.contains("pulling everything again"), "\(back.stderr)")
        ok(try cli.run(["sync"], db: a))
        ok(try cli.run(["sync"], db: c))
        let expected = try names(cli, a)
        #expect(expected.count == 14)
        #expect(try names(cli, b) == expected)
        #expect(try names(cli, c) == expected)
    }
}
