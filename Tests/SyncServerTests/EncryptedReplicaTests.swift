import CSV
import FieldbookModel
import FieldbookTestSupport
import Foundation
import ReplicaStore
import SyncServer
import Testing

/// Issue 8: a seized laptop gives nothing away. Real replica files, the real CLI, a real server.
@Suite(.serialized) struct EncryptedReplicaTests {
    func db(_ cli: CLIRunner, _ name: String) -> String { cli.dir.appendingPathComponent("\(name).sqlite").path }

    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    /// Names (Latin and Cyrillic), aliases, descriptions and sources of the shared fixture.
    static func fixtureSecrets() throws -> Set<String> {
        let reader = try CSVReader(stream: InputStream(fileAtPath: CLIRunner.fixture)!, hasHeaderRow: true)
        var out = Set<String>()
        while reader.next() != nil {
            for column in ["person_name", "person_aliases", "description", "source_outlet", "source_url", "date_text", "facility"] {
                for part in (reader[column] ?? "").split(separator: ";") {
                    let s = part.trimmingCharacters(in: .whitespaces)
                    if s.utf8.count >= 6 { out.insert(s) }
                }
            }
        }
        return out
    }

    /// Which of `secrets` appear in any file of `dir`.
    static func leaks(in dir: String, of secrets: Set<String>) throws -> [String] {
        var found: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            let path = (dir as NSString).appendingPathComponent(name)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
                  let data = FileManager.default.contents(atPath: path) else { continue }
            for s in secrets where data.range(of: Data(s.utf8)) != nil { found.append("\(name): \(s)") }
            if data.range(of: Data("SQLite format 3".utf8)) != nil { found.append("\(name): a clear SQLite header") }
        }
        return found
    }

    func sha(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }

    /// After importing the fixture, editing, deleting and syncing — with the WAL and -shm still
    /// there, as at a seizure — no file beside the replica holds any of the fixture's names,
    /// descriptions or sources, nor the token; the same replica unencrypted does (the check sees).
    @Test func seizedLaptopFilesHoldNoRecordNoTokenNoClearPage() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let dir = cli.dir.appendingPathComponent("laptop").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let a = (dir as NSString).appendingPathComponent("a.sqlite")
        let token = try server.token("almaty", regions: "almaty")
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop-a"], db: a))
        ok(try cli.run(["import", CLIRunner.fixture], db: a))
        // A connection held open keeps the WAL and -shm on disk, as a running program would.
        let held = try Replica.open(path: a, tables: FieldbookSchema.tables, passphrase: CLIRunner.passphrase)
        let tokenFile = try cli.file("token", token + "\n")
        ok(try cli.run(["remote", "add", "hq", server.url, "--token-file", tokenFile], db: a))
        try server.approve([a], cli: cli)
        let persons = try JSONSerialization.jsonObject(with: Data(cli.run(["list", "persons", "--json"], db: a).stdout.utf8)) as? [[String: Any]] ?? []
        try #require(persons.count >= 2, "the imported persons are listed")
        let p = persons[0]["id"] as! String
        ok(try cli.run(["edit", p, "--set", "notes=Seen in Қонаев by a neighbour"], db: a))
        ok(try cli.run(["delete", persons[1]["id"] as! String], db: a))
        ok(try cli.run(["sync"], db: a))
        _ = try held.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM person") }
        #expect(FileManager.default.fileExists(atPath: a + "-wal"), "the WAL is there to be checked")

        var secrets = try Self.fixtureSecrets()
        secrets.insert(token)
        secrets.insert("Seen in Қонаев by a neighbour")
        secrets.insert("laptop-a")  // the device name, given at init
        #expect(secrets.contains("Қайырбек") || secrets.contains { $0.unicodeScalars.contains { (0x0400...0x04FF).contains($0.value) } }, "Cyrillic names are checked")
        let leaks = try Self.leaks(in: dir, of: secrets)
        #expect(leaks.isEmpty, "clear text on disk: \(leaks.prefix(10))")
        for suffix in ["", "-wal", "-shm"] {
            let mode = try FileManager.default.attributesOfItem(atPath: a + suffix)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(suffix.isEmpty ? "the replica" : suffix): \(String(mode ?? 0, radix: 8))")
        }

        // The check can see: a plain copy, made on purpose, holds them.
        let plain = (dir as NSString).appendingPathComponent("plain-copy.sqlite")
        ok(try cli.run(["decrypt", "--out", plain], db: a))
        #expect(try !Self.leaks(in: dir, of: secrets).isEmpty)
    }

    /// `init` without a passphrase (no terminal to ask on) or with one too short creates
    /// nothing; `--unencrypted` is a plain file that `status` calls out.
    @Test func initNeedsAPassphraseUnlessToldOtherwise() throws {
        let cli = try CLIRunner()
        let a = db(cli, "a")
        let none = try cli.run(["init", "--region", "almaty"], db: a, env: ["FIELDBOOK_PASSPHRASE": ""])
        #expect(none.status == 78 && none.stderr.contains("FIELDBOOK_PASSPHRASE"), "\(none.status) \(none.stderr)")
        let short = try cli.run(["init", "--region", "almaty"], db: a, env: ["FIELDBOOK_PASSPHRASE": "short"])
        #expect(short.status == 65 && short.stderr.contains("at least 8"), "\(short.status) \(short.stderr)")
        #expect(!FileManager.default.fileExists(atPath: a), "nothing created")
        let file = try cli.file("pass", "from a file, not the environment\n")
        ok(try cli.run(["init", "--region", "almaty", "--passphrase-file", file], db: a, env: ["FIELDBOOK_PASSPHRASE": ""]))
        ok(try cli.run(["status", "--passphrase-file", file], db: a, env: ["FIELDBOOK_PASSPHRASE": ""]))
        #expect(try cli.run(["status"], db: a).status == 78, "the environment's passphrase is not this one")
        let plain = db(cli, "plain")
        ok(try cli.run(["init", "--region", "almaty", "--unencrypted"], db: plain, env: ["FIELDBOOK_PASSPHRASE": ""]))
        #expect(ok(try cli.run(["status"], db: plain)).stdout.contains("encrypted NO"))
    }

    /// Wrong or missing passphrase, truncated file, a flipped byte, swapped pages: each a clear
    /// error with its exit code, and the file exactly as before.
    @Test func wrongPassphraseAndTamperingAreClearErrorsThatWriteNothing() throws {
        let cli = try CLIRunner()
        let a = db(cli, "a")
        ok(try cli.run(["init", "--region", "almaty"], db: a))
        ok(try cli.run(["import", CLIRunner.fixture], db: a))
        // The last connection to close folds the WAL into the file: one file to tamper with.
        do { _ = try Replica.open(path: a, tables: FieldbookSchema.tables, passphrase: CLIRunner.passphrase) }
        #expect(!FileManager.default.fileExists(atPath: a + "-wal"))
        let before = sha(a)
        #expect(before.count > 8 * 4096)

        let wrong = try cli.run(["person", "add", "--name", "X Y"], db: a, env: ["FIELDBOOK_PASSPHRASE": "not the passphrase"])
        #expect(wrong.status == 78 && wrong.stderr.contains("passphrase does not open"), "\(wrong.status) \(wrong.stderr)")
        let missing = try cli.run(["list", "persons"], db: a, env: ["FIELDBOOK_PASSPHRASE": ""])
        #expect(missing.status == 78 && missing.stderr.contains("encrypted"), "\(missing.status) \(missing.stderr)")
        #expect(sha(a) == before, "nothing written")

        func tampered(_ what: String, _ change: (inout Data) -> Void, exit: Int32 = 74) throws {
            let path = db(cli, "t-\(what)")
            var bytes = before
            change(&bytes)
            try bytes.write(to: URL(fileURLWithPath: path))
            let r = try cli.run(["check"], db: path)  // reads and authenticates every page
            #expect(r.status == exit, "\(what): exit \(r.status) \(r.stderr)")
            let said = exit == 78 ? r.stderr.contains("passphrase does not open") : (r.stderr.contains("damaged") || r.stderr.contains("tampered"))
            #expect(said, "\(what): \(r.stderr)")
            #expect(sha(path) == bytes, "\(what): nothing written")
        }
        let page = 4096, header = 4096
        try tampered("flipped-byte") { $0[header + 2 * page + 1234] ^= 0x01 }
        try tampered("flipped-tag") { $0[header + 3 * page - 1] ^= 0x80 }
        try tampered("swapped-pages") { d in
            let p2 = d.subdata(in: (header + page)..<(header + 2 * page)), p3 = d.subdata(in: (header + 2 * page)..<(header + 3 * page))
            d.replaceSubrange((header + page)..<(header + 2 * page), with: p3)
            d.replaceSubrange((header + 2 * page)..<(header + 3 * page), with: p2)
        }
        try tampered("truncated-pages") { $0 = $0.prefix(header + 3 * page) }
        try tampered("truncated-slots") { $0 = $0.prefix(1000) }
        try tampered("first-page") { $0[header + 20] ^= 0xFF }
        // A byte flipped in the key slots makes the passphrase open nothing.
        try tampered("slots", { $0[64 + 20] ^= 0x01 }, exit: 78)
    }

    /// `passphrase change` rewrites the key slots only — the same 4 KiB whatever the size of
    /// the replica (10 or 100,000 records) — and then only the new passphrase opens it; a second passphrase opens it too,
    /// and the last one cannot be removed.
    @Test func passphraseChangeRewritesOnlyTheKeySlots() throws {
        let cli = try CLIRunner()
        for (name, rows) in [("small", 10), ("large", 100_000)] {
            let a = db(cli, name)
            // Made in process (100,000 records through the CLI's import would take minutes here).
            do {
                let r = try Replica.create(path: a, tables: FieldbookSchema.tables, region: "almaty",
                                           protection: .passphrase(CLIRunner.passphrase, cost: KeySlots.Cost(logN: 10, r: 8, p: 1)))
                try r.write { w in
                    for i in 0..<rows {
                        try w.insert("person", id: UUID().uuidString.lowercased(), values: ["region": .text("almaty"), "name": .text("Person \(i)")])
                    }
                }
            }
            let before = sha(a)
            let newFile = try cli.file("new-\(name)", "a new passphrase for \(name)\n")
            ok(try cli.run(["passphrase", "change", "--new-passphrase-file", newFile], db: a))
            let after = sha(a)
            #expect(after.count == before.count)
            #expect(after.suffix(from: KeySlots.size) == before.suffix(from: KeySlots.size), "\(name): only the key slots changed")
            #expect(after.prefix(KeySlots.size) != before.prefix(KeySlots.size))
            #expect(try cli.run(["list", "persons"], db: a).status == 78, "the old passphrase no longer opens it")
            let new = ["FIELDBOOK_PASSPHRASE": "a new passphrase for \(name)"]
            #expect(try cli.run(["list", "persons"], db: a, env: new).status == 0)

            // A second passphrase; either opens; the last cannot be removed.
            let second = try cli.file("second-\(name)", "coordinator recovery passphrase\n")
            ok(try cli.run(["passphrase", "add", "--new-passphrase-file", second], db: a, env: new))
            let recovery = ["FIELDBOOK_PASSPHRASE": "coordinator recovery passphrase"]
            ok(try cli.run(["list", "persons"], db: a, env: recovery))
            ok(try cli.run(["passphrase", "remove"], db: a, env: new))
            #expect(try cli.run(["list", "persons"], db: a, env: new).status == 78)
            let last = try cli.run(["passphrase", "remove"], db: a, env: recovery)
            #expect(last.status == 65 && last.stderr.contains("last passphrase"), "\(last.stderr)")
            ok(try cli.run(["list", "persons"], db: a, env: recovery))
        }
    }

    /// The duress passphrase destroys every key slot and shows a fresh, empty replica of the same
    /// region; afterwards the real passphrase opens nothing. `wipe` deletes everything at once.
    @Test func duressAndWipeLeaveNothingToRecover() throws {
        let cli = try CLIRunner()
        let a = db(cli, "a")
        ok(try cli.run(["init", "--region", "atyrau", "--device", "laptop-a"], db: a))
        ok(try cli.run(["import", CLIRunner.fixture], db: a))
        let oldSlots = sha(a).prefix(KeySlots.size)
        let duress = try cli.file("duress", "the holiday photos passphrase\n")
        ok(try cli.run(["passphrase", "add", "--duress", "--new-passphrase-file", duress], db: a))
        // Someone can tell two slots are used, not which is the duress one.
        #expect(ok(try cli.run(["status"], db: a)).stdout.contains("2 key slots in use"))

        let forced = ["FIELDBOOK_PASSPHRASE": "the holiday photos passphrase"]
        let list = ok(try cli.run(["list", "persons", "--json"], db: a, env: forced))
        let shown = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [Any]
        #expect(shown?.isEmpty == true, "a fresh, empty replica: \(list.stdout)")
        #expect(ok(try cli.run(["status"], db: a, env: forced)).stdout.contains("region    atyrau"))
        #expect(try cli.run(["list", "persons"], db: a).status == 78, "the real passphrase opens nothing any more")
        #expect(sha(a).prefix(KeySlots.size) != oldSlots)
        #expect(try Self.leaks(in: cli.dir.path, of: Self.fixtureSecrets()).isEmpty)

        let b = db(cli, "b")
        ok(try cli.run(["init", "--region", "almaty"], db: b))
        ok(try cli.run(["import", CLIRunner.fixture], db: b))
        #expect(try cli.run(["wipe"], db: b).status != 0, "wipe asks first")
        #expect(FileManager.default.fileExists(atPath: b))
        ok(try cli.run(["wipe", "--yes"], db: b))
        for suffix in ["", "-wal", "-shm"] { #expect(!FileManager.default.fileExists(atPath: b + suffix)) }
    }

    /// An unencrypted replica made by the release before encryption (kept as a fixture) is
    /// encrypted in place: same records, no clear text left, the old passphrase-less file gone.
    @Test func anUnencryptedReplicaOfThePreviousReleaseIsEncryptedInPlace() throws {
        let cli = try CLIRunner()
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/unencrypted-replica-v1.sqlite")
        let a = db(cli, "old")
        try FileManager.default.copyItem(atPath: fixture.path, toPath: a)
        let plainList = ok(try cli.run(["export", "--format", "csv"], db: a, env: ["FIELDBOOK_PASSPHRASE": ""])).stdout
        #expect(ok(try cli.run(["status"], db: a)).stdout.contains("encrypted NO"))
        #expect(try !Self.leaks(in: cli.dir.path, of: Self.fixtureSecrets()).isEmpty, "the fixture is clear text")
        ok(try cli.run(["encrypt"], db: a))
        #expect(try Self.leaks(in: cli.dir.path, of: Self.fixtureSecrets()).isEmpty)
        #expect(ok(try cli.run(["export", "--format", "csv"], db: a)).stdout == plainList)
        #expect(ok(try cli.run(["status"], db: a)).stdout.contains("encrypted yes"))
        #expect(try cli.run(["encrypt"], db: a).status == 65, "once is enough")
        // Its sync state (a remote added by that release) is upgraded too: the sync fails only
        // because the fixture's server is not there.
        let sync = try cli.run(["sync", "--attempts", "1"], db: a)
        #expect(sync.status == 69 && !sync.stderr.contains("SQLite"), "\(sync.status) \(sync.stderr)")
    }

    /// `kill -9` of a writer in the middle of a large import, again and again: the replica
    /// always opens, and holds either all of an import or none of it.
    @Test func killedWriterLeavesAnEncryptedReplicaThatOpensWithNothingHalfWritten() throws {
        let cli = try CLIRunner()
        let a = db(cli, "a")
        ok(try cli.run(["init", "--region", "almaty"], db: a))
        var rng = SystemRandomNumberGenerator()
        for round in 0..<6 {
            let csv = try cli.file("round\(round).csv", SyncEndToEndTests().syntheticCSV(3_000).replacingOccurrences(of: "syn-", with: "r\(round)-"))
            let p = try Spawn.start(CLIRunner.binary, ["import", csv],
                                    env: CLIRunner.encryption.merging(["FIELDBOOK_DB": a]) { x, _ in x })
            Thread.sleep(forTimeInterval: Double.random(in: 0.05...0.6, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let list = ok(try cli.run(["list", "incidents", "--json"], db: a), "round \(round)")
            let incidents = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as! [[String: Any]]
            let ofRound = incidents.filter { ($0["ref"] as? String)?.hasPrefix("r\(round)-") == true }.count
            #expect(ofRound == 0 || ofRound == 3_000, "round \(round): \(ofRound) of 3000 incidents")
            #expect([0, 1].contains(try cli.run(["check"], db: a).status))
        }
    }
}

/// Issue 8, item 8: the server's data directory encrypted (`serve --encrypted`): after two
/// monitors sync the fixture through it, no file of the directory holds a record, a device name,
/// a token or a token's hash; the store needs its passphrase to open.
@Suite(.serialized) struct EncryptedServerTests {
    @Test func seizedServerDiskHoldsNoRecordNoDeviceNameNoTokenHash() async throws {
        let cli = try CLIRunner()
        let data = cli.dir.appendingPathComponent("server").path
        let env = ["FIELDBOOK_SERVER_PASSPHRASE": "server store passphrase", "FIELDBOOK_KDF_LOGN": "10", "FIELDBOOK_TESTING_WEAK_KDF": "1"]
        let server = try ServerProcess(data: data, environment: env, arguments: ["--encrypted"])
        defer { server.stop() }
        let (a, b) = (cli.dir.appendingPathComponent("a.sqlite").path, cli.dir.appendingPathComponent("b.sqlite").path)
        var tokens: [String] = []
        for (path, device, name) in [(a, "laptop-of-aigerim", "almaty-monitor"), (b, "laptop-of-yerlan", "almaty-monitor-2")] {
            #expect(try cli.run(["init", "--region", "almaty", "--device", device], db: path).status == 0)
            let token = try server.token(name, regions: "almaty")
            tokens.append(token)
            #expect(try cli.run(["remote", "add", "hq", server.url, "--token-file", try cli.file("t", token)], db: path).status == 0)
        }
        try server.approve([a, b], cli: cli)
        #expect(try cli.run(["import", CLIRunner.fixture], db: a).status == 0)
        #expect(try cli.run(["sync"], db: a).status == 0)
        #expect(try cli.run(["sync"], db: b).status == 0)
        #expect(try cli.run(["export", "--format", "csv"], db: a).stdout == cli.run(["export", "--format", "csv"], db: b).stdout)

        var secrets = try EncryptedReplicaTests.fixtureSecrets()
        secrets.formUnion(["laptop-of-aigerim", "laptop-of-yerlan", "almaty-monitor"] + tokens)
        let leaks = try EncryptedReplicaTests.leaks(in: data, of: secrets)
        #expect(leaks.isEmpty, "clear text in the server's data directory: \(leaks.prefix(10))")
        for token in tokens {
            let hash = Tokens.hash(token)
            for name in try FileManager.default.contentsOfDirectory(atPath: data) {
                let bytes = FileManager.default.contents(atPath: (data as NSString).appendingPathComponent(name)) ?? Data()
                #expect(bytes.range(of: hash) == nil, "\(name) holds a token hash")
            }
        }

        // Without its passphrase the store does not open.
        let noPass = try CLIRunner.exec(ServerProcess.binary, ["token", "list", "--data", data], env: ["FIELDBOOK_SERVER_PASSPHRASE": ""])
        #expect(noPass.status != 0 && noPass.stderr.contains("encrypted"), "\(noPass.stderr)")
        let listed = try CLIRunner.exec(ServerProcess.binary, ["token", "list", "--data", data], env: env)
        #expect(listed.status == 0 && listed.stdout.contains("almaty-monitor"))
    }
}
