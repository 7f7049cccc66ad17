import AsyncHTTPClient
import FieldbookModel
import FieldbookTestSupport
import Foundation
import GRDB
import SealedSync
import Testing

/// Issue 9 with real server processes and real replicas: what a server holds, what it can do to
/// what it relays, enrolment, revocation and key backups.
@Suite(.serialized) struct SealedSyncEndToEndTests {
    func db(_ cli: CLIRunner, _ name: String) -> String { cli.dir.appendingPathComponent("\(name).sqlite").path }

    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    func names(_ cli: CLIRunner, _ db: String) throws -> Set<String> {
        let r = try cli.run(["list", "persons", "--json"], db: db)
        return Set((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]).map { $0["name"] as! String })
    }

    func json(_ r: CLIRunner.Result) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    }

    /// A monitor's replica and a coordinator's, each with its own token on `server`.
    func pair(_ cli: CLIRunner, _ server: ServerProcess, monitor: String = "aigul") throws -> (monitor: String, coordinator: String) {
        let (m, c) = (db(cli, monitor), db(cli, "coordinator"))
        ok(try cli.run(["init", "--region", "almaty", "--device", "\(monitor)-laptop"], db: m))
        ok(try cli.run(["init", "--region", "almaty", "--device", "hq-laptop"], db: c))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token(monitor, regions: "almaty")], db: m))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("hq", regions: "*", coordinator: true)], db: c))
        return (m, c)
    }

    /// A new device records offline, and its sync waits for approval (exit 75, its fingerprint
    /// shown) with nothing lost; after the coordinator checks the fingerprint and approves,
    /// everything goes out and reaches the coordinator.
    @Test func anUnapprovedDeviceWaitsLosesNothingAndSendsEverythingOnceApproved() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (m, c) = try pair(cli, server)
        ok(try cli.run(["person", "add", "--name", "Асқар Қайырбек", "--born", "1976"], db: m))
        let fingerprint = ok(try cli.run(["keys", "fingerprint"], db: m)).line
        #expect(fingerprint.filter(\.isNumber).count == 36 && fingerprint.split(separator: " ").count == 6, "six groups of six digits")
        let waiting = try cli.run(["sync"], db: m)
        #expect(waiting.status == 75, "\(waiting.stderr)")
        #expect(waiting.stderr.contains(fingerprint) && waiting.stderr.contains("approve"), "\(waiting.stderr)")
        #expect(try cli.run(["sync"], db: m).status == 75, "still waiting")
        #expect(ok(try cli.run(["status"], db: m)).stdout.contains("pending changes  "), "recorded here")

        #expect(try cli.run(["sync"], db: c).status == 75, "a coordinator's device waits too, until it makes or gets keys")
        ok(try cli.run(["keys", "create", "almaty"], db: c))
        let pending = try JSONSerialization.jsonObject(with: Data(ok(try cli.run(["keys", "pending", "--json"], db: c)).stdout.utf8)) as! [[String: Any]]
        #expect(pending.count == 1 && pending[0]["device"] as? String == "aigul" && pending[0]["fingerprint"] as? String == fingerprint, "\(pending)")
        ok(try cli.run(["keys", "approve", "aigul", "--fingerprint", fingerprint.replacingOccurrences(of: " ", with: "")], db: c))
        #expect(ok(try cli.run(["keys", "pending"], db: c)).line == "no device waits for approval")

        let sent = ok(try cli.run(["sync"], db: m))
        // One person: one change per field (every field of a new row travels, null or not).
        #expect(sent.stdout.contains("pushed \(FieldbookSchema.person.columns.count)"), "\(sent.stdout)")
        #expect(sent.stderr.contains("keys received from coordinator hq"), "\(sent.stderr)")
        ok(try cli.run(["sync"], db: c))
        #expect(try names(cli, c) == ["Асқар Қайырбек"])
    }

    /// A server that hands the coordinator another key for a device (to read what that device
    /// would then seal for it) is caught: the fingerprint read out does not match, nothing is approved.
    @Test func aServerThatSubstitutesADevicesKeyIsCaughtByItsFingerprint() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (m, c) = try pair(cli, server)
        #expect(try cli.run(["sync"], db: m).status == 75)
        ok(try cli.run(["keys", "create", "almaty"], db: c))
        let real = ok(try cli.run(["keys", "fingerprint"], db: m)).line
        // The operator swaps the registered key for one of their own.
        server.stop()
        let store = try DatabaseQueue(path: (server.data as NSString).appendingPathComponent("store.sqlite"))
        let theirs = DeviceKeys().publicKeys
        try store.write { db in
            try db.execute(sql: "UPDATE _srv_device SET agreement = ?, signing = ? WHERE token = 'aigul'",
                           arguments: [Data(theirs.agreement), Data(theirs.signing)])
        }
        try store.close()
        try server.start()
        let refused = try cli.run(["keys", "approve", "aigul", "--fingerprint", real], db: c)
        #expect(refused.status == 77, "\(refused.stderr)")
        // "Do not approve", and never the server's value, which a hurried coordinator would copy.
        let digits = refused.stderr.filter(\.isNumber)
        #expect(refused.stderr.contains("does not match") && refused.stderr.contains("Do not approve"), "\(refused.stderr)")
        #expect(!digits.contains(theirs.fingerprint.filter(\.isNumber)) && !digits.contains(theirs.spokenFingerprint.filter(\.isNumber))
                    && !refused.stderr.contains(theirs.spokenFingerprint), "the server's fingerprint is not printed: \(refused.stderr)")
        // A misheard digit is a typo in its group, not an alarm: exit 65, nothing approved.
        var misheard = Array(real)
        let at = misheard.lastIndex { $0.isNumber && $0 != " " }!
        misheard[misheard.index(at, offsetBy: -2)] = misheard[misheard.index(at, offsetBy: -2)] == "1" ? "2" : "1"
        let typo = try cli.run(["keys", "approve", "aigul", "--fingerprint", String(misheard)], db: c)
        #expect(typo.status == 65 && typo.stderr.contains("group 6 looks mistyped") && !typo.stderr.contains("substitut"), "\(typo.stderr)")
        #expect(ok(try cli.run(["keys", "pending", "--json"], db: c)).stdout.contains("aigul"), "still pending")
        // The monitor's own sync finds another key registered under its token, and says so.
        let alarm = try cli.run(["sync"], db: m)
        #expect(alarm.status == 77 && alarm.stderr.contains("belongs to another device"), "\(alarm.stderr)")
        #expect(ok(try cli.run(["keys", "list"], db: m)).line == "no region keys yet", "nothing was sealed for the operator")
    }

    /// After the real cases sync through it, the server's files (store, WAL) hold no name,
    /// alias, description, source or device name of them: only sealed cells.
    @Test func theServerHoldsNoValueOfTheRealCases() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (m, c) = try pair(cli, server)
        ok(try cli.run(["import", CLIRunner.fixture], db: m))
        try server.approve([m, c], cli: cli)
        ok(try cli.run(["sync"], db: m))
        ok(try cli.run(["sync"], db: c))
        #expect(try names(cli, c) == names(cli, m))
        var secrets = try EncryptedReplicaTests.fixtureSecrets()
        secrets.formUnion(["aigul-laptop", "hq-laptop", "Qaiyrbek"])
        let leaks = try EncryptedReplicaTests.leaks(in: server.data, of: secrets).filter { !$0.hasSuffix("a clear SQLite header") }
        #expect(leaks.isEmpty, "clear values on the server: \(leaks.prefix(10))")
        // The check sees: the monitor's own (unencrypted copy of a) replica would show them.
        ok(try cli.run(["decrypt", "--out", db(cli, "clear")], db: m))
        #expect(!(try EncryptedReplicaTests.leaks(in: cli.dir.path, of: ["Qaiyrbek"])).isEmpty)
    }

    /// The server's operator moves sealed cells between records and alters one: the receiving
    /// replica refuses exactly those changes, names the site that wrote them, and takes the rest.
    @Test func cellsMovedOrAlteredByTheServerAreRefusedNamedAndTheRestSyncs() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (m, c) = try pair(cli, server)
        let x = ok(try cli.run(["person", "add", "--name", "Person X", "--occupation", "journalist"], db: m)).line
        let y = ok(try cli.run(["person", "add", "--name", "Person Y"], db: m)).line
        ok(try cli.run(["person", "add", "--name", "Person Z"], db: m))
        try server.approve([m, c], cli: cli)
        ok(try cli.run(["sync"], db: m))
        let site = try json(ok(try cli.run(["export", "--format", "json"], db: m)))  // holds the site id nowhere; read status
        _ = site
        let mSite = ok(try cli.run(["status"], db: m)).stdout.split(separator: "\n").first { $0.hasPrefix("site") }!.split(separator: " ").last!
        server.stop()
        let store = try DatabaseQueue(path: (server.data as NSString).appendingPathComponent("store.sqlite"))
        try store.write { db in
            let nx = try Data.fetchOne(db, sql: "SELECT name FROM person WHERE id = ?", arguments: [x])!
            let ny = try Data.fetchOne(db, sql: "SELECT name FROM person WHERE id = ?", arguments: [y])!
            try db.execute(sql: "UPDATE person SET name = ? WHERE id = ?", arguments: [ny, x])  // Y's name moved onto X
            try db.execute(sql: "UPDATE person SET name = ? WHERE id = ?", arguments: [nx, y])
            var occupation = [UInt8](try Data.fetchOne(db, sql: "SELECT occupation FROM person WHERE id = ?", arguments: [x])!)
            occupation[occupation.count / 2] ^= 0x20
            try db.execute(sql: "UPDATE person SET occupation = ? WHERE id = ?", arguments: [Data(occupation), x])
        }
        try store.close()
        try server.start()
        let pulled = ok(try cli.run(["sync"], db: c))
        #expect(pulled.stdout.contains("kept aside"), "\(pulled.stdout)")
        #expect(try names(cli, c) == ["Person Z"])
        let check = try cli.run(["check", "--json"], db: c)
        #expect(check.status == 1)
        let refused = try json(check)["refused"] as! [[String: Any]]
        #expect(Set(refused.map { $0["row"] as! String }) == [x, y], "\(refused)")
        #expect(refused.allSatisfy { $0["kind"] as? String == "does_not_open" && $0["site"] as? String == String(mSite) }, "\(refused)")
        #expect(ok(try cli.run(["status"], db: c)).stdout.contains("kept aside 2 received changes"))
    }

    /// A device that holds the region key but is buggy or hostile seals a value the model
    /// refuses: the server cannot tell, the receiving replica keeps it aside with the writer's
    /// site, and the rest of the sync applies.
    @Test func aSealedValueThatBreaksTheModelIsKeptAsideWithItsWriter() async throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (m, c) = try pair(cli, server)
        try server.approve([m, c], cli: cli)
        ok(try cli.run(["sync"], db: c))
        // The hostile device: the coordinator's keys (exported), its own token and site.
        ok(try cli.run(["keys", "export", "--out", cli.dir.appendingPathComponent("keys.fbk").path],
                       db: c, env: ["FIELDBOOK_BACKUP_PASSPHRASE": "backup passphrase here"]))
        let (ring, _) = try KeyBackup.open([UInt8](FileManager.default.contents(atPath: cli.dir.appendingPathComponent("keys.fbk").path)!),
                                           passphrase: "backup passphrase here")
        let hostile = SiteID.random()
        let (p, i) = (UUID().uuidString.lowercased(), UUID().uuidString.lowercased())
        let h = (Int64(Date().timeIntervalSince1970 * 1000)) << 16
        let cs = Changeset(sites: [hostile], tables: [
            TableChanges(table: "person", fields: ["region", "name"], rows: [RowChange(id: p, cl: 1, hlc: h, site: 0, fields: [
                FieldChange(field: 0, value: .text("almaty"), hlc: h, site: 0), FieldChange(field: 1, value: .text("Good Person"), hlc: h, site: 0)])]),
            TableChanges(table: "incident", fields: ["region", "person_id", "kind", "date"], rows: [RowChange(id: i, cl: 1, hlc: h, site: 0, fields: [
                FieldChange(field: 0, value: .text("almaty"), hlc: h, site: 0), FieldChange(field: 1, value: .text(p), hlc: h, site: 0),
                FieldChange(field: 2, value: .text("abduction by aliens"), hlc: h, site: 0), FieldChange(field: 3, value: .text("2022-01"), hlc: h, site: 0)])]),
        ])
        let sealed = try ChangesetSealer.seal(cs, keys: ring) { _, _ in nil }
        let http = HTTPTestClient(client: HTTPClient(eventLoopGroupProvider: .singleton), base: server.url)
        let r = try await http.push(sealed, site: hostile, token: try server.token("hostile", regions: "almaty"), sealed: false)
        try await http.client.shutdown()
        #expect(r.status == 200, "the server cannot tell: \(r.message)")

        let pulled = ok(try cli.run(["sync"], db: m))
        #expect(pulled.stdout.contains("1 received change kept aside"), "\(pulled.stdout)")
        #expect(try names(cli, m) == ["Good Person"])
        let refused = try json(try cli.run(["check", "--json"], db: m))["refused"] as! [[String: Any]]
        #expect(refused.count == 1 && refused[0]["row"] as? String == i && refused[0]["kind"] as? String == "invalid"
                && refused[0]["site"] as? String == hostile.description && (refused[0]["reason"] as? String ?? "").contains("incident.kind"), "\(refused)")
    }

    /// Revocation: the revoked device is refused by the server, the region moves to a new key
    /// epoch that the others receive, and what is written afterwards does not open with the
    /// keys the revoked device held. Through each store (the device's state is read with its
    /// token, in one read, by both).
    @Test(arguments: TestStore.available)
    func aRevokedDeviceGetsNothingMoreAndCannotOpenWhatIsWrittenAfter(store: TestStore) async throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path, store: store)
        defer { server.stop() }
        let (m, c) = try pair(cli, server)
        let lost = db(cli, "lost")
        ok(try cli.run(["init", "--region", "almaty", "--device", "seized-laptop"], db: lost))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("seized", regions: "almaty")], db: lost))
        try server.approve([m, c, lost], cli: cli)
        ok(try cli.run(["person", "add", "--name", "Written Before"], db: m))
        ok(try cli.run(["sync"], db: m))
        ok(try cli.run(["sync"], db: lost))
        #expect(try names(cli, lost) == ["Written Before"])
        let unready = try cli.run(["keys", "revoke", "seized"], db: c)
        #expect(unready.status == 65 && unready.stderr.contains("Nothing was revoked"), "a coordinator without the keys: \(unready.stderr)")
        ok(try cli.run(["sync"], db: c))

        let revoke = ok(try cli.run(["keys", "revoke", "seized"], db: c))
        #expect(revoke.stdout.contains("new key epoch 2"), "\(revoke.stdout)")
        let after = ok(try cli.run(["person", "add", "--name", "Written After"], db: m)).line
        ok(try cli.run(["sync"], db: m))
        #expect(ok(try cli.run(["keys", "list"], db: m)).stdout.contains("epochs 1,2"))
        let refused = try cli.run(["sync"], db: lost)
        #expect(refused.status == 77 && refused.stderr.contains("revoked"), "\(refused.stderr)")
        #expect(try names(cli, lost) == ["Written Before"])

        // The server's cell of the new record is under epoch 2; the seized laptop's keys do not open it.
        ok(try cli.run(["keys", "export", "--out", cli.dir.appendingPathComponent("seized.fbk").path],
                       db: lost, env: ["FIELDBOOK_BACKUP_PASSPHRASE": "what the thief types"]))
        let (stolen, _) = try KeyBackup.open([UInt8](FileManager.default.contents(atPath: cli.dir.appendingPathComponent("seized.fbk").path)!),
                                             passphrase: "what the thief types")
        #expect(stolen.epochs("almaty") == [1])
        // What the server relays, raw, to a token that may read everything.
        let http = HTTPTestClient(client: HTTPClient(eventLoopGroupProvider: .singleton), base: server.url)
        let reply = try await http.send(SyncProtocol.pullPath + "?limit=50000", method: .GET, token: try server.token("auditor", regions: "*", coordinator: true), body: nil)
        try await http.client.shutdown()
        let page = try JSONDecoder().decode(PullResponse.self, from: reply.body).changes.changeset()
        let persons = page.tables.first { $0.table == "person" }!
        let row = persons.rows.first { $0.id == after }!
        let name = row.fields.first { persons.fields[$0.field] == "name" }!
        guard case .sealed(let cell) = name.value else { Issue.record("the name is not sealed"); return }
        #expect(SealedForm.header(of: cell)?.epoch == 2)
        let at = CellAddress(region: "almaty", table: "person", row: after, field: "name", hlc: name.hlc, site: page.sites[name.site])
        #expect(throws: SealedSyncError.self) { try CellSealer.open(cell, at: at, keys: stolen) }
        // While the coordinator, holding epoch 2, opens it.
        ok(try cli.run(["sync"], db: c))
        #expect(try names(cli, c) == ["Written Before", "Written After"])
    }

    /// A coordinator's keys move to a new laptop through a backup sealed under its own
    /// passphrase; the wrong passphrase opens nothing.
    @Test func aCoordinatorsKeysMoveToANewLaptopThroughASealedBackup() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (m, c) = try pair(cli, server)
        ok(try cli.run(["person", "add", "--name", "Recorded In Almaty"], db: m))
        try server.approve([m, c], cli: cli)
        ok(try cli.run(["sync"], db: m))
        ok(try cli.run(["sync"], db: c))
        let file = cli.dir.appendingPathComponent("coordinator-keys.fbk").path
        let passphrase = try cli.file("backup-pass", "a long backup passphrase\n")
        let exported = ok(try cli.run(["keys", "export", "--out", file, "--backup-passphrase-file", passphrase], db: c))
        #expect(exported.stdout.contains("1 key"), "\(exported.stdout)")
        #expect(try cli.run(["keys", "export", "--out", file, "--backup-passphrase-file", passphrase], db: c).status != 0, "never overwritten")
        let bytes = FileManager.default.contents(atPath: file)!
        #expect(bytes.range(of: Data("almaty".utf8)) == nil, "the region names are inside the sealed part")

        let laptop = db(cli, "new-laptop")
        ok(try cli.run(["init", "--region", "almaty", "--device", "new-hq-laptop"], db: laptop))
        let wrong = try cli.run(["keys", "import", file], db: laptop, env: ["FIELDBOOK_BACKUP_PASSPHRASE": "not the passphrase"])
        #expect(wrong.status == 78, "\(wrong.stderr)")
        ok(try cli.run(["keys", "import", file, "--backup-passphrase-file", passphrase], db: laptop))
        ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token("hq-2", regions: "*", coordinator: true)], db: laptop))
        ok(try cli.run(["sync"], db: laptop))
        #expect(try names(cli, laptop) == ["Recorded In Almaty"])
    }

    /// The server's operator mints a coordinator token of their own, registers a device, and
    /// delivers a new key epoch to a monitor: the monitor does not take it (its sender is no
    /// coordinator it trusts, nor one vouched for by one), so nothing is sealed for the operator.
    @Test func aKeyFromACoordinatorTheServerMintedIsRefused() async throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (m, c) = try pair(cli, server)
        try server.approve([m, c], cli: cli)
        ok(try cli.run(["sync"], db: m))
        let http = HTTPTestClient(client: HTTPClient(eventLoopGroupProvider: .singleton), base: server.url)
        let token = try server.token("operator", regions: "*", coordinator: true)
        let rogue = DeviceKeys(), pub = rogue.publicKeys
        let registered = try await http.send(SyncProtocol.devicePath, method: .PUT, token: token,
                                             body: try JSONEncoder().encode(DeviceRegistration(agreement: pub.agreementBase64, signing: pub.signingBase64)))
        let devices = try JSONDecoder().decode(DeviceListResponse.self, from: try await http.send(SyncProtocol.devicesPath, method: .GET, token: token, body: nil).body)
        let aigul = devices.devices.first { $0.device == "aigul" }!
        let key = try KeyWrap.wrap(KeyRing.newKey(), region: "almaty", epoch: 2, device: "aigul",
                                   to: try DevicePublicKeys(agreement: aigul.agreement, signing: aigul.signing), from: rogue)
        let upload = KeyUploadRequest(keys: [WrappedKey(device: "aigul", region: "almaty", epoch: 2, wrapped: Data(key).base64EncodedString(),
                                                        sender: "operator", senderAgreement: pub.agreementBase64, senderSigning: pub.signingBase64)],
                                      approve: ["operator"], roster: Data(try CoordinatorRoster.sign([], by: rogue, issuedMillis: 1)).base64EncodedString())
        let delivered = try await http.send(SyncProtocol.keysPath, token: token, body: try JSONEncoder().encode(upload))
        try await http.client.shutdown()
        #expect(registered.status == 200 && delivered.status == 200, "the server lets its own coordinator do this: \(delivered.message)")

        ok(try cli.run(["person", "add", "--name", "Written After The Attack"], db: m))
        let synced = try cli.run(["sync"], db: m)
        #expect(synced.stderr.contains("does not trust"), "\(synced.stderr)")
        #expect(synced.status == 77, "the server now wants epoch 2, which the monitor refuses to seal under: \(synced.stderr)")
        #expect(ok(try cli.run(["keys", "list"], db: m)).stdout.contains("region almaty\tepochs 1\n"), "the operator's key is not taken")
        let status = ok(try cli.run(["status"], db: m)).stdout
        #expect(!status.contains("pending changes  0") && status.contains("pending changes  "), "the record stays here: \(status)")
    }
}
