import AsyncHTTPClient
import CProcessHardening
import FieldbookModel
import FieldbookTestSupport
import Foundation
import PostgresStore
import Testing

/// Issue 20, items 5 and 6: a seized or pressured server keeps no diary of the monitors, a
/// scan learns nothing from its health answer, neither binary leaves a core file, and the
/// PostgreSQL password stays out of the process list.
@Suite(.serialized) struct ServerDiaryTests {
    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    /// At the default level (info) a server that served a monitor's registration, pushes and
    /// pulls logs no token name, device name or site — the device's or the store's; at `debug`
    /// the same work is logged per request (the check sees what a diary would hold).
    @Test func theServerKeepsNoDiaryAtTheDefaultLevel() async throws {
        let cli = try CLIRunner()
        let data = cli.dir.appendingPathComponent("server").path
        let metrics = "operator-metrics-" + UUID().uuidString
        let metricsFile = try cli.file("metrics.token", metrics + "\n")
        let server = try ServerProcess(data: data, arguments: ["--log-level", "info", "--metrics-token-file", metricsFile])
        defer { server.stop() }
        let a = cli.dir.appendingPathComponent("a.sqlite").path
        let token = try server.token("token-of-aigul-almaty", regions: "almaty")
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-of-aigul"], db: a))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token-file", try cli.file("token", token + "\n")], db: a))
        try server.approve([a], cli: cli)
        ok(try cli.run(["person", "add", "--name", "Асқар Қайырбек"], db: a))
        ok(try cli.run(["sync"], db: a))
        ok(try cli.run(["sync"], db: a))
        let deviceSite = ok(try cli.run(["status"], db: a)).stdout.split(separator: "\n")
            .first { $0.hasPrefix("site") }.map { String($0.dropFirst(4)).trimmingCharacters(in: .whitespaces) } ?? "?"
        let http = HTTPTestClient(client: HTTPClient.shared, base: server.url)
        let detailed = try await http.send(SyncProtocol.healthPath, method: .GET, token: metrics, body: nil)
        let storeSite = try #require(try JSONDecoder().decode(HealthResponse.self, from: detailed.body).site).description

        let log = server.logTail(1_000_000)
        #expect(log.contains("store open"), "the check reads the log: \(log.prefix(500))")
        for secret in ["token-of-aigul-almaty", "laptop-of-aigul", deviceSite, storeSite, "push", "pull"] {
            #expect(!log.contains(secret), "the log names \(secret): \(log.suffix(2000))")
        }

        server.arguments = ["--log-level", "debug", "--metrics-token-file", metricsFile]
        server.stop()
        try server.start()
        ok(try cli.run(["person", "add", "--name", "Marat Ilyashev"], db: a))
        ok(try cli.run(["sync"], db: a))
        let debug = server.logTail(1_000_000)
        #expect(debug.contains("token-of-aigul-almaty") && debug.contains("push"), "debug logs per request: \(debug.suffix(2000))")
    }

    /// `GET /v1/health` tells an anonymous caller only `{"status":"ok"}` — nothing that names the
    /// software, its version or the store, in the body or the headers; the operator (the metrics
    /// token's bearer) gets the protocol, schema and the store's site.
    @Test func healthTellsAnAnonymousCallerOnlyThatItAnswers() async throws {
        let cli = try CLIRunner()
        let metrics = "operator-metrics-" + UUID().uuidString
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path,
                                       arguments: ["--metrics-token-file", try cli.file("metrics.token", metrics + "\n")])
        defer { server.stop() }
        let http = HTTPTestClient(client: HTTPClient.shared, base: server.url)
        for token in [nil, "a-guess-at-some-token-1234"] {
            let r = try await http.send(SyncProtocol.healthPath, method: .GET, token: token, body: nil)
            #expect(r.status == 200)
            let json = try JSONSerialization.jsonObject(with: r.body) as? [String: Any]
            #expect(json?.keys.sorted() == ["status"] && json?["status"] as? String == "ok", "\(String(decoding: r.body, as: UTF8.self))")
            for (name, value) in r.headers {
                #expect(!name.lowercased().contains("fieldbook") && !value.lowercased().contains("fieldbook") && !value.contains("hummingbird"),
                        "header \(name): \(value)")
            }
        }
        let detailed = try await http.send(SyncProtocol.healthPath, method: .GET, token: metrics, body: nil)
        let h = try JSONDecoder().decode(HealthResponse.self, from: detailed.body)
        #expect(h.protocol == SyncProtocol.version && h.schema == SyncProtocol.schemaVersion && h.site != nil)
    }

    /// Neither binary can leave a core file: the running server's core limit is 0 (read from
    /// /proc), and so is the CLI's while it waits on a server that never answers; the call both
    /// make marks the process not dumpable.
    @Test func neitherBinaryLeavesACoreFile() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let pid = try #require(server.processIdentifier)
        #expect(try Self.coreLimit(pid) == "0 0", "the server's core limit")

        // A listener that accepts connections and never answers keeps the CLI's sync waiting.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try #require(withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } } == 0)
        try #require(listen(listener, 16) == 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let a = cli.dir.appendingPathComponent("a.sqlite").path
        ok(try cli.run(["init", "--region", "almaty"], db: a))
        ok(try cli.run(["remote", "add", "silent", "http://127.0.0.1:\(port)", "--token-file", try cli.file("t", "some-token-value\n")], db: a))
        let out = cli.dir.appendingPathComponent("sync.out").path
        let p = try Spawn.start(CLIRunner.binary, ["sync", "--attempts", "1"], env: CLIRunner.encryption.merging(["FIELDBOOK_DB": a]) { x, _ in x },
                                stdout: out, stderr: out + ".err")
        defer { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        // Read until the CLI has started (its first act is the call): the limit it was spawned
        // with is the test's own.
        var limit: String?
        for _ in 0..<200 where limit != "0 0" && p.isRunning {
            limit = try? Self.coreLimit(p.processIdentifier)
            if limit != "0 0" { usleep(25_000) }
        }
        #expect(limit == "0 0", "the CLI's core limit: \(limit ?? "not read")")

        #expect(fieldbook_disable_core_dumps() == 0)
        #expect(fieldbook_is_dumpable() == 0)
    }

    /// "SOFT HARD" of the core-file limit of a process, from /proc.
    static func coreLimit(_ pid: pid_t) throws -> String? {
        let text = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max core file size") }) else { return nil }
        let parts = line.dropFirst("Max core file size".count).split(separator: " ")
        return parts.count >= 2 ? "\(parts[0]) \(parts[1])" : nil
    }

    /// The PostgreSQL password is read from a password file, `PGPASSFILE` (libpq's format:
    /// escapes, wildcards, first match wins) or `~/.pgpass`, never needed on the command line;
    /// one written in `--database` gets a warning naming the alternatives.
    @Test func thePostgresPasswordStaysOutOfTheProcessList() throws {
        let cli = try CLIRunner()
        let pgpass = try cli.file("pgpass", """
            # comment
            otherhost:5432:*:fieldbook:wrong
            127.0.0.1:5432:fb\\:db:fieldbook:pa\\:ss\\\\word
            *:*:*:fieldbook:fallback

            """)
        chmod(pgpass, 0o600)
        func password(_ db: String, file: String? = nil, env: [String: String]) throws -> String? {
            try PGPass.password(host: "127.0.0.1", port: 5432, database: db, user: "fieldbook", passwordFile: file, environment: env)
        }
        #expect(try password("fb:db", env: ["PGPASSFILE": pgpass]) == "pa:ss\\word")
        #expect(try password("other", env: ["PGPASSFILE": pgpass]) == "fallback")
        #expect(try password("fb:db", env: ["PGPASSFILE": cli.dir.appendingPathComponent("none").path]) == nil)
        // As libpq: a password file others may read is not used.
        chmod(pgpass, 0o644)
        #expect(try password("fb:db", env: ["PGPASSFILE": pgpass]) == nil)
        chmod(pgpass, 0o600)
        // Line ends written by Windows tools are line ends.
        let crlf = try cli.file("crlf", "127.0.0.1:5432:db:fieldbook:secret\r\n")
        chmod(crlf, 0o600)
        #expect(try password("db", env: ["PGPASSFILE": crlf]) == "secret")
        let file = try cli.file("password", "from a file\n")
        #expect(try password("x", file: file, env: ["PGPASSFILE": pgpass]) == "from a file", "the password file comes first")
        #expect(try password("x", env: ["FIELDBOOK_DATABASE_PASSWORD_FILE": file]) == "from a file")
        #expect(throws: PGPassError.self) { try password("x", file: try cli.file("empty", ""), env: [:]) }
        let db = try PostgresDatabase(url: "postgres://fieldbook@127.0.0.1:5432/fb%3Adb", environment: ["PGPASSFILE": pgpass])
        #expect(db.configuration.password == "pa:ss\\word")

        // A password in --database: warned about before anything else (the URL's unknown
        // setting then ends the run at once, without a connection).
        let r = try CLIRunner.exec(ServerProcess.binary, ["token", "list", "--database", "postgres://u:secret-password@127.0.0.1:1/x?not_a_setting=1"])
        #expect(r.stderr.contains("warning: --database holds a password") && r.stderr.contains("FIELDBOOK_DATABASE_URL"), "\(r.stderr)")
        #expect(r.stderr.contains("not_a_setting") && !r.stderr.contains("secret-password"), "the password is not echoed: \(r.stderr)")
        let viaEnv = try CLIRunner.exec(ServerProcess.binary, ["token", "list"], env: ["FIELDBOOK_DATABASE_URL": "postgres://u:secret-password@127.0.0.1:1/x?not_a_setting=1"])
        #expect(viaEnv.stderr.contains("not_a_setting") && !viaEnv.stderr.contains("warning: --database"), "\(viaEnv.stderr)")
    }
}
