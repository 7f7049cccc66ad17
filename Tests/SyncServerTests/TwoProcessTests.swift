import FieldbookModel
import FieldbookTestSupport
import Foundation
import ReplicaStore
import Testing

/// One replica file written by several processes at once — the CLI in two terminals while a
/// sync runs in a third — as SQLite's WAL allows. Real processes, a real server.
@Suite(.serialized) struct TwoProcessTests {
    /// Runs `script` in `sh` with `FIELDBOOK_DB` set, in the background.
    func start(_ script: String, db: String) throws -> SpawnedProcess {
        var env = ["FIELDBOOK_DB": db, "FB": CLIRunner.binary.path]
        for (k, v) in CLIRunner.encryption { env[k] = v }
        return try Spawn.start(URL(fileURLWithPath: "/bin/sh"), ["-c", "set -e; " + script], env: env)
    }

    @Test func twoProcessesWritingOneReplicaWhileItSyncsLoseNothingAndNeverShareAClock() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let token = try server.token("almaty", regions: "almaty")
        let (a, c) = (cli.dir.appendingPathComponent("a.sqlite").path, cli.dir.appendingPathComponent("c.sqlite").path)
        #expect(try cli.run(["init", "--region", "almaty", "--device", "laptop"], db: a).status == 0)
        #expect(try cli.run(["remote", "add", "hq", server.url, "--token", token], db: a).status == 0)
        try server.approve([a], cli: cli)
        let n = 25
        let writers = try ["first", "second"].map { who in
            try start("for i in $(seq 1 \(n)); do \"$FB\" person add --name \"\(who) $i\" --occupation \"by the \(who) process\" > /dev/null; done", db: a)
        }
        let syncer = try start("for i in 1 2 3 4 5; do \"$FB\" sync > /dev/null; done", db: a)
        for p in writers + [syncer] { p.waitUntilExit() }
        for (i, p) in (writers + [syncer]).enumerated() { #expect(p.terminationStatus == 0, "process \(i) failed") }

        // Every write is there, once, each with its own clock and log position.
        let replica = try Replica.open(path: a, tables: FieldbookSchema.tables, passphrase: CLIRunner.passphrase)
        let all = try replica.changes(since: 0, limit: 1_000_000).changeset
        let rows = all.tables.first { $0.table == "person" }?.rows ?? []
        #expect(rows.count == 2 * n)
        #expect(Set(rows.map(\.hlc)).count == rows.count, "two writes share a clock")
        let names = Set(rows.compactMap { r in r.fields.first { all.tables[0].fields[$0.field] == "name" }?.value.text })
        #expect(names == Set((1...n).flatMap { ["first \($0)", "second \($0)"] }))

        // And all of it reaches another replica through the server.
        #expect(try cli.run(["sync"], db: a).status == 0)
        #expect(try cli.run(["init", "--region", "almaty", "--device", "other"], db: c).status == 0)
        #expect(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("other", regions: "almaty")], db: c).status == 0)
        try server.approve([c], cli: cli)
        #expect(try cli.run(["sync"], db: c).status == 0)
        let export = { (db: String) in try cli.run(["export", "--format", "csv"], db: db).stdout }
        #expect(try export(a) == export(c))
        let listed = try JSONSerialization.jsonObject(with: Data(cli.run(["list", "persons", "--json"], db: c).stdout.utf8)) as! [[String: Any]]
        #expect(listed.count == 2 * n)
    }
}

/// The test harness's own launcher: a child holds only its standard descriptors (so no test's
/// socket, pipe or database file is kept open by another test's server), and its exit code and
/// killing signal are reported as `Process` reported them.
@Suite struct SpawnTests {
    @Test func aChildInheritsOnlyItsStandardDescriptors() throws {
        let cli = try CLIRunner()
        let dir = cli.dir
        let held = open(dir.appendingPathComponent("held").path, O_WRONLY | O_CREAT, 0o644) // not close-on-exec
        defer { close(held) }
        let out = dir.appendingPathComponent("fds").path
        let p = try Spawn.start(URL(fileURLWithPath: "/bin/sh"), ["-c", "ls /proc/$$/fd"], stdout: out)
        #expect(p.terminationStatus == 0)
        let fds = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").compactMap { Int($0) }.filter { $0 != 255 }
        #expect(held >= 3)
        #expect(Set(fds) == [0, 1, 2], "\(fds)")
    }

    @Test func exitCodesAndSignalsAreReported() throws {
        let exited = try Spawn.start(URL(fileURLWithPath: "/bin/sh"), ["-c", "exit 7"])
        #expect(exited.terminationStatus == 7)
        #expect(!exited.isRunning)
        let sleeper = try Spawn.start(URL(fileURLWithPath: "/bin/sleep"), ["30"])
        #expect(sleeper.isRunning)
        kill(sleeper.processIdentifier, SIGKILL)
        #expect(sleeper.terminationStatus == SIGKILL)
    }
}
