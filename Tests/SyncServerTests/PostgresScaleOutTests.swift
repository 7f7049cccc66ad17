import FieldbookModel
import FieldbookTestSupport
import Foundation
import Logging
import PostgresNIO
@testable import PostgresStore
import SyncCore
import SyncServer
import Testing

/// Issue 11, items 2 and 3: several servers on one PostgreSQL database, and pull cursors that
/// never skip a change that commits late. Run where `FIELDBOOK_TEST_DATABASE_URL` is set
/// (`.ci/run`); elsewhere `StoreContractTests.postgresStoreTestsRunOrSayHowTo` says how.
@Suite(.serialized) struct PostgresScaleOutTests {
    static var logger: Logger {
        var l = Logger(label: "test")
        l.logLevel = .warning
        return l
    }

    /// Two transactions write log entries; the one that began first commits last. A reader that
    /// pulls in between gets neither (the first is still running), where a plain sequence would
    /// have handed out the second and passed the first for good; once both commit, the next
    /// pull gets both, the first first.
    @Test(.enabled(if: TestStore.adminURL != nil, TestStore.postgresSkipReason)) func aChangeThatCommitsLateIsNeverSkipped() async throws {
        try await TestExecutor.run {
            let token = TokenInfo(name: "hq", regions: ["*"], coordinator: true, createdAt: "now")
            try await Self.attempts("the early transaction") {
                let client = try PostgresDatabase(url: try TestStore.createDatabase()).makeClient(logger: Self.logger)
                return try await withThrowingTaskGroup(of: Void.self) { group -> Bool in
                    group.addTask { await client.run() }
                    defer { group.cancelAll() }
                    await PostgresDatabase.started()
                    let store = try await PostgresServerStore.open(client: client, logger: Self.logger, horizonWait: .milliseconds(200))
                    try await store.beginEpoch()
                    return try await client.withConnection { early in
                        try await Self.begin(early)
                        try await early.query(PostgresQuery(unsafeSQL: Self.logEntry("first")), logger: Self.logger)  // the lower xid and seq
                        try await client.query(PostgresQuery(unsafeSQL: Self.logEntry("second")), logger: Self.logger)
                        // What a reader by sequence number would see now: the second, not the first.
                        var visible: [String] = []
                        for try await id in try await client.query("SELECT id FROM fb_log ORDER BY seq", logger: Self.logger).decode(String.self) {
                            visible.append(id)
                        }
                        let between = try await store.pull(after: nil, limit: 100, token: token, requester: nil, lineage: .absent)
                        guard try await Self.commit(early) else { return false }
                        #expect(visible == ["second"], "the race is real: \(visible)")
                        #expect(between.changes.isEmpty, "nothing is handed out past a transaction still running")
                        let after = try await store.pull(after: between.cursor, limit: 100, token: token, requester: nil, lineage: .absent)
                        #expect(after.changes.tables.flatMap(\.rows).map(\.id) == ["first", "second"])
                        let end = try await store.pull(after: after.cursor, limit: 100, token: token, requester: nil, lineage: .absent)
                        #expect(end.changes.isEmpty && !end.more)
                        return true
                    }
                }
            }
        }
    }

    /// A writing transaction of the same database, begun before a change was pushed, may still
    /// write the log below it: a pull that begins while it runs waits for it rather than answer
    /// "nothing more" without an acknowledged change; a blocker that outlasts the wait leaves the
    /// change for the next pull, never skipped.
    @Test(.enabled(if: TestStore.adminURL != nil, TestStore.postgresSkipReason)) func aPullWaitsForAnOlderTransactionOfItsDatabase() async throws {
        try await TestExecutor.run {
            let token = TokenInfo(name: "hq", regions: ["*"], coordinator: true, createdAt: "now")
            try await Self.attempts("the blocking transaction") {
                let here = try PostgresDatabase(url: try TestStore.createDatabase()).makeClient(logger: Self.logger)
                return try await withThrowingTaskGroup(of: Void.self) { group -> Bool in
                    group.addTask { await here.run() }
                    defer { group.cancelAll() }
                    await PostgresDatabase.started()
                    let store = try await PostgresServerStore.open(client: here, logger: Self.logger)
                    let impatient = try await PostgresServerStore.open(client: here, logger: Self.logger, horizonWait: .milliseconds(100))
                    try await store.beginEpoch()
                    return try await here.withConnection { blocker in
                        try await Self.begin(blocker)   // a writer of this database: holds its horizon
                        try await here.query(PostgresQuery(unsafeSQL: Self.logEntry("acknowledged")), logger: Self.logger)
                        let pull = TestExecutor.task { try await store.pull(after: nil, limit: 100, token: token, requester: nil, lineage: .absent) }
                        try await Task.sleep(for: .milliseconds(300))
                        guard try await Self.commit(blocker) else { return false }
                        let page = try await pull.value
                        #expect(page.changes.tables.flatMap(\.rows).map(\.id) == ["acknowledged"], "the pull waited for the older transaction")

                        try await Self.begin(blocker)
                        try await here.query(PostgresQuery(unsafeSQL: Self.logEntry("later")), logger: Self.logger)
                        let early = try await impatient.pull(after: page.cursor, limit: 100, token: token, requester: nil, lineage: .absent)
                        guard try await Self.commit(blocker) else { return false }
                        #expect(early.changes.isEmpty && !early.more, "past the wait: answered without it")
                        let next = try await impatient.pull(after: early.cursor, limit: 100, token: token, requester: nil, lineage: .absent)
                        #expect(next.changes.tables.flatMap(\.rows).map(\.id) == ["later"], "and not skipped: the next pull has it")
                        return true
                    }
                }
            }
        }
    }

    /// PostgreSQL's horizon is the cluster's, but a transaction of another database cannot write
    /// this one's log: while one runs, begun before a change was pushed here, a pull hands the
    /// change out at once (a server whose pulls waited, then answered "nothing more", for as long
    /// as another application's transaction ran was seen on CI: a test's idle transaction in
    /// its own database held a sync's pull back for 30 s).
    @Test(.enabled(if: TestStore.adminURL != nil, TestStore.postgresSkipReason)) func aWritingTransactionInAnotherDatabaseHoldsNoPullBack() async throws {
        try await TestExecutor.run {
            let token = TokenInfo(name: "hq", regions: ["*"], coordinator: true, createdAt: "now")
            try await Self.attempts("the transaction elsewhere") {
                let here = try PostgresDatabase(url: try TestStore.createDatabase()).makeClient(logger: Self.logger)
                let elsewhere = try PostgresDatabase(url: try TestStore.createDatabase()).makeClient(logger: Self.logger)
                return try await withThrowingTaskGroup(of: Void.self) { group -> Bool in
                    group.addTask { await here.run() }
                    group.addTask { await elsewhere.run() }
                    defer { group.cancelAll() }
                    await PostgresDatabase.started()
                    let impatient = try await PostgresServerStore.open(client: here, logger: Self.logger, horizonWait: .milliseconds(100))
                    try await impatient.beginEpoch()
                    return try await elsewhere.withConnection { other in
                        let xid = try await Self.begin(other)
                        try await here.query(PostgresQuery(unsafeSQL: Self.logEntry("acknowledged")), logger: Self.logger)
                        var held = false   // the cluster's horizon is really held back by it
                        for try await h in try await here.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", logger: Self.logger)
                            .decode(String.self) { held = UInt64(h).map { $0 <= xid } ?? false }
                        let page = try await impatient.pull(after: nil, limit: 100, token: token, requester: nil, lineage: .absent)
                        guard try await Self.commit(other) else { return false }
                        #expect(held, "the cluster's horizon was held by the transaction elsewhere")
                        #expect(page.changes.tables.flatMap(\.rows).map(\.id) == ["acknowledged"], "not held back by another database")
                        let next = try await impatient.pull(after: page.cursor, limit: 100, token: token, requester: nil, lineage: .absent)
                        #expect(next.changes.isEmpty && !next.more)
                        return true
                    }
                }
            }
        }
    }

    /// Begins a writing transaction (it holds an xid) that PostgreSQL ends if it is left idle for
    /// 2 s: a test process kept from running (other tests block its threads) cannot hold the
    /// cluster's horizon back for long, and so hold up every other test's pulls.
    /// Returns its xid.
    @discardableResult
    static func begin(_ conn: PostgresConnection) async throws -> UInt64 {
        try await conn.query("SET idle_in_transaction_session_timeout = '2s'", logger: logger)
        try await conn.query("BEGIN", logger: logger)
        for try await xid in try await conn.query("SELECT pg_current_xact_id()::text", logger: logger).decode(String.self) {
            if let xid = UInt64(xid) { return xid }
        }
        throw ScaleOutError(message: "no xid")
    }

    /// Commits; false when PostgreSQL had ended the transaction (the attempt proves nothing).
    static func commit(_ conn: PostgresConnection) async throws -> Bool {
        do { try await conn.query("COMMIT", logger: logger) } catch { return false }
        return true
    }

    /// Runs `attempt` until it could judge (at most three times).
    static func attempts(_ what: String, _ attempt: () async throws -> Bool) async throws {
        for _ in 1...3 { if try await attempt() { return } }
        Issue.record("in three attempts \(what) was ended by PostgreSQL before the test was done with it")
    }

    /// A person row in almaty and its `fb_log` entry, as one SQL statement.
    static func logEntry(_ id: String) -> String {
        let (h, s) = (nowMillis() << 16, SiteID.random())
        func hex(_ d: Data) -> String { "'\\x" + d.map { String(format: "%02x", $0) }.joined() + "'::bytea" }
        return """
            WITH r AS (INSERT INTO fb_row (tbl, id, region, parent, cl, hlc, site, cells)
                       VALUES ('person', '\(id)', 'almaty', NULL, 1, \(h), '\(s)'::uuid, \(hex(CellCoding.encode([])))))
            INSERT INTO fb_log (tbl, id, region, origin, change) VALUES ('person', '\(id)', 'almaty', NULL, \(hex(CellCoding.encode(LoggedChange(cl: 1, h: h, s: s, f: [])))))
            """
    }

    /// A request waits for a pooled connection at most `connectionWait`, then gets `503 busy`
    /// (clients retry after `Retry-After`), and the metrics count it.
    @Test(.enabled(if: TestStore.adminURL != nil, TestStore.postgresSkipReason)) func aRequestWaitsForAConnectionOnlySoLong() async throws {
        try await TestExecutor.run {
            let db = try PostgresDatabase(url: try TestStore.createDatabase() + "?max_connections=1")
            let client = db.makeClient(logger: Self.logger)
            let metrics = ServerMetrics()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                await PostgresDatabase.started()
                let store = try await PostgresServerStore.open(client: client, logger: Self.logger, metrics: metrics, connectionWait: .milliseconds(300))
                #expect(try await store.tokens().isEmpty, "a free connection: served")
                let (held, signal) = AsyncStream<Void>.makeStream()
                let holder = TestExecutor.task {
                    try await client.withConnection { conn in
                        signal.yield()   // the only connection is taken from here on
                        try await conn.query("SELECT pg_sleep(2)", logger: Self.logger)
                    }
                }
                for await _ in held { break }
                let start = ContinuousClock.now
                do {
                    _ = try await store.tokens()
                    Issue.record("served although the only connection was held")
                } catch let e as ServerError {
                    #expect(e.status.code == 503 && e.code == "busy")
                }
                #expect(ContinuousClock.now - start < .seconds(1.5), "refused after the bounded wait, not after the holder")
                _ = try await holder.value
                #expect(metrics.text().contains("fieldbook_store_connection_timeouts_total 1"))
                #expect(try await store.tokens().isEmpty, "served again once the connection is free")
            }
        }
    }

    /// Three replicas sync through two servers on one database, switching server at random
    /// (as behind a load balancer), while one server is killed (SIGKILL) and restarted now and
    /// then; edits, deletes and re-creations on all three. At the end every replica holds the
    /// same records. Seeds 1–3; a failure names its seed.
    @Test(.enabled(if: TestStore.adminURL != nil, TestStore.postgresSkipReason), arguments: ProcessInfo.processInfo.environment["FIELDBOOK_SCALEOUT_SEED"].flatMap(UInt64.init).map { [$0] } ?? [UInt64(1), 2, 3])
    func replicasConvergeThroughTwoServersOnOneDatabaseWhileOneIsKilled(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let cli = try CLIRunner()
        let database = try TestStore.createDatabase()
        let servers = try (0..<2).map { i in try ServerProcess(data: cli.dir.appendingPathComponent("server\(i)").path, database: database) }
        defer { servers.forEach { $0.stop() } }
        let names = ["a", "b", "c"]
        let dbs = names.map { cli.dir.appendingPathComponent("\($0).sqlite").path }
        func ok(_ r: CLIRunner.Result, _ what: String) throws {
            if r.status != 0 { throw ScaleOutError(message: "seed \(seed): \(what): exit \(r.status): \(r.stderr)") }
        }
        for (i, d) in dbs.enumerated() {
            try ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-\(names[i])"], db: d), "init")
            let token = try servers[0].token(names[i], regions: "almaty")
            try ok(try cli.run(["remote", "add", "hq", servers[0].url, "--token", token], db: d), "remote add")
        }
        try servers[0].approve(dbs, cli: cli)
        var persons: [String] = []
        for step in 0..<24 {
            let r = Int(rng.next() % 3)
            switch rng.next() % 6 {
            case 0, 1:
                let out = try cli.run(["person", "add", "--name", "Person \(seed)-\(step)", "--born", "19\(60 + step)"], db: dbs[r])
                try ok(out, "person add")
                persons.append(out.line)
            case 2 where !persons.isEmpty:
                let p = persons[Int(rng.next() % UInt64(persons.count))]
                _ = try cli.run(["edit", p, "--set", "occupation=edit \(step) on \(names[r])"], db: dbs[r])  // may be deleted here
            case 3 where !persons.isEmpty:
                let p = persons[Int(rng.next() % UInt64(persons.count))]
                _ = try cli.run(rng.next() % 2 == 0 ? ["delete", p] : ["restore", p], db: dbs[r])
            case 4:
                // Kill a server mid-run; the replicas that reach it next find the other.
                let victim = servers[Int(rng.next() % 2)]
                victim.stop(signal: SIGKILL)
                try victim.start()
            default:
                break
            }
            let s = servers[Int(rng.next() % 2)]
            try ok(try cli.run(["remote", "set-url", "hq", s.url], db: dbs[r]), "set-url")
            try ok(try cli.run(["sync"], db: dbs[r]), "sync of \(names[r]) with server \(s.url) at step \(step)")
        }
        for _ in 0..<2 {
            for (i, d) in dbs.enumerated() {
                try ok(try cli.run(["remote", "set-url", "hq", servers[i % 2].url], db: d), "set-url")
                try ok(try cli.run(["sync"], db: d), "final sync")
            }
        }
        let exports = try dbs.map { try cli.run(["export", "--format", "csv"], db: $0).stdout }
        for i in 1..<3 where exports[i] != exports[0] {
            let (x, y) = (Set(exports[0].split(separator: "\r\n")), Set(exports[i].split(separator: "\r\n")))
            var detail = ""
            if ProcessInfo.processInfo.environment["FIELDBOOK_DEBUG_SCALEOUT"] == "1" {
                for d in [dbs[0], dbs[i]] {
                    let list = try cli.run(["list", "persons", "--json"], db: d).stdout
                    detail += "\n== \(d)\n" + list
                    for p in persons { detail += "\n-- \(p)\n" + (try cli.run(["history", p], db: d).stdout) }
                    detail += "\n== check\n" + (try cli.run(["check", "--json"], db: d).stdout) + "\n== status\n" + (try cli.run(["status"], db: d).stdout)
                }
            }
            Issue.record("seed \(seed): replica \(names[i]) differs from a: only in a \(x.subtracting(y).sorted()); only in \(names[i]) \(y.subtracting(x).sorted())\(detail)")
        }
        #expect(!exports[0].isEmpty)
    }

    struct ScaleOutError: Error, CustomStringConvertible { var message: String; var description: String { message } }
}


/// Issue 11, item 5: an embedded store moved into PostgreSQL; devices keep syncing.
@Suite(.serialized) struct MigrateStoreTests {
    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    @Test(.enabled(if: TestStore.adminURL != nil, TestStore.postgresSkipReason)) func anEmbeddedStoreMovesIntoPostgresAndDevicesSyncOn() throws {
        let cli = try CLIRunner()
        let dir = cli.dir.appendingPathComponent("server").path
        let embedded = try ServerProcess(data: dir)
        let (m, c) = (cli.dir.appendingPathComponent("m.sqlite").path, cli.dir.appendingPathComponent("c.sqlite").path)
        ok(try cli.run(["init", "--region", "almaty", "--device", "monitor-laptop"], db: m))
        ok(try cli.run(["init", "--region", "almaty", "--device", "hq-laptop"], db: c))
        ok(try cli.run(["import", CLIRunner.fixture], db: m))
        ok(try cli.run(["remote", "add", "hq", embedded.url, "--token", try embedded.token("monitor", regions: "almaty")], db: m))
        ok(try cli.run(["remote", "add", "hq", embedded.url, "--token", try embedded.token("hq", regions: "*", coordinator: true)], db: c))
        try embedded.approve([m, c], cli: cli)
        ok(try cli.run(["sync"], db: m))
        ok(try cli.run(["sync"], db: c))
        let before = ok(try cli.run(["export", "--format", "csv"], db: c)).stdout
        embedded.stop()

        let database = try TestStore.createDatabase()
        let copy = try CLIRunner.exec(ServerProcess.binary, ["migrate-store", "--from", dir, "--database", database])
        #expect(copy.status == 0 && copy.stdout.contains("tokens"), "\(copy.stdout) \(copy.stderr)")
        let twice = try CLIRunner.exec(ServerProcess.binary, ["migrate-store", "--from", dir, "--database", database])
        #expect(twice.status == 65 && twice.stderr.contains("empty"), "a second copy is refused: \(twice.stderr)")

        let server = try ServerProcess(data: cli.dir.appendingPathComponent("pg").path, database: database)
        defer { server.stop() }
        for db in [m, c] { ok(try cli.run(["remote", "set-url", "hq", server.url], db: db)) }
        // No new approval, no new token: the devices, their keys and tokens came along.
        let edited = ok(try cli.run(["list", "persons", "--json"], db: m)).stdout
        let p = try #require((try JSONSerialization.jsonObject(with: Data(edited.utf8)) as? [[String: Any]])?.first?["id"] as? String)
        ok(try cli.run(["edit", p, "--set", "occupation=moved with the store"], db: m))
        ok(try cli.run(["sync"], db: m), "monitor after the move")
        let again = ok(try cli.run(["sync"], db: c), "coordinator after the move")
        #expect(again.stderr.contains("pulling everything again"), "the old cursor is refused once: \(again.stderr)")
        let after = ok(try cli.run(["export", "--format", "csv"], db: c)).stdout
        #expect(after == ok(try cli.run(["export", "--format", "csv"], db: m)).stdout)
        #expect(after.contains("moved with the store") && after.count > before.count - 100)
        let tokens = try CLIRunner.exec(ServerProcess.binary, ["token", "list", "--database", database])
        #expect(tokens.stdout.contains("monitor") && tokens.stdout.contains("hq"), "\(tokens.stdout)")
    }
}
