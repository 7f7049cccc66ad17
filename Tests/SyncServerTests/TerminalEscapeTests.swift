import FieldbookModel
import FieldbookTestSupport
import Foundation
import GRDB
import ReplicaStore
import SealedSync
import Testing

/// Issue 26, item 3: no terminal escape reaches a person's terminal through either CLI — a
/// device name is checked where it enters (`init --device`, a bundle read from a stick, a
/// token's name), and every line both binaries print is made safe, whatever slipped in.
@Suite(.serialized) struct TerminalEscapeTests {
    static let escape = "\u{1B}]0;owned\u{07}\u{1B}[2J\u{1B}[31m"

    /// Neither output of `r` holds an escape character, a bell or a direction override.
    func clean(_ r: CLIRunner.Result, _ what: String) {
        let raw = r.stdout + r.stderr
        #expect(!raw.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || (0x202A...0x202E).contains($0.value) },
                "\(what) printed a raw control: \(raw.debugDescription.prefix(400))")
    }

    @Test func aDeviceNameWithEscapesIsRefusedAtInit() throws {
        let cli = try CLIRunner()
        let a = cli.dir.appendingPathComponent("a.sqlite").path
        for name in ["laptop" + Self.escape, "laptop\u{202E}kcatta", "two\nlines"] {
            let r = try cli.run(["init", "--region", "almaty", "--device", name], db: a)
            #expect(r.status == 65 && r.stderr.contains("--device"), "\(r.status) \(r.stderr)")
            clean(r, "init")
            #expect(!FileManager.default.fileExists(atPath: a), "nothing created")
        }
    }

    /// A replica whose stored names and values hold escapes (written by an older release, or
    /// by hand): `status`, `list`, `show` and `history` print them escaped.
    @Test func storedEscapesArePrintedEscaped() throws {
        let cli = try CLIRunner()
        let a = cli.dir.appendingPathComponent("a.sqlite").path
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop"], db: a))
        let id = ok(try cli.run(["person", "add", "--name", "Асқар Қайырбек"], db: a)).line
        do {
            let r = try Replica.open(path: a, tables: FieldbookSchema.tables, passphrase: CLIRunner.passphrase)
            try r.writeDatabase { db in
                try db.execute(sql: "UPDATE _fb_replica SET device = ?", arguments: ["laptop" + Self.escape])
                try db.execute(sql: "UPDATE _fb_site SET name = ?", arguments: ["site" + Self.escape])
                try db.execute(sql: "UPDATE person SET name = ?", arguments: ["Name" + Self.escape])
            }
        }
        // JSON is for programs: written as bytes, it stays JSON (a direction mark in a name is
        // the character, not `\u{202e}` text) and holds the name as stored.
        do {
            let r = try Replica.open(path: a, tables: FieldbookSchema.tables, passphrase: CLIRunner.passphrase)
            try r.writeDatabase { db in try db.execute(sql: "UPDATE person SET notes = ?", arguments: ["mark \u{202E}here\u{7F}"]) }
        }
        let json = ok(try cli.run(["list", "persons", "--json"], db: a)).stdout
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]
        #expect(parsed?.first?["name"] as? String == "Name" + Self.escape, "\(json.prefix(300))")
        for args in [["status"], ["list", "persons"], ["show", id], ["history", id]] {
            let r = try cli.run(args, db: a)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            clean(r, args.joined(separator: " "))
            #expect((r.stdout + r.stderr).contains("\\u{1b}"), "\(args) shows the escape as text: \(r.stdout)")
        }
    }

    /// `fieldbook-server`: a bundle from a stick naming a device with escapes is refused without
    /// echoing them; a token name with escapes is refused; errors naming what the operator typed
    /// are escaped.
    @Test func theServersOutputsAreEscapedToo() throws {
        let cli = try CLIRunner()
        let data = cli.dir.appendingPathComponent("server").path
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let push = PushRequest(site: .random(), from: 0, to: 1, changes: WireChangeset(Changeset()))
        let bundle = try OfflineBundle.sign(device: "stick" + Self.escape, push: push, with: DeviceKeys())
        let file = cli.dir.appendingPathComponent("evil.fbb").path
        try Data(bundle).write(to: URL(fileURLWithPath: file))
        let imported = try CLIRunner.exec(ServerProcess.binary, ["bundle", "import", "--data", data, file])
        #expect(imported.status != 0 && imported.stderr.contains("device name"), "\(imported.stderr)")
        clean(imported, "bundle import")

        let token = try CLIRunner.exec(ServerProcess.binary, ["token", "create", "--data", data, "--name", "t" + Self.escape, "--regions", "almaty"])
        #expect(token.status != 0 && token.stderr.contains("--name"), "\(token.stderr)")
        clean(token, "token create")
        let revoke = try CLIRunner.exec(ServerProcess.binary, ["token", "revoke", "--data", data, "x" + Self.escape])
        #expect(revoke.status != 0)
        clean(revoke, "token revoke")

        // The laptop's `bundle import` refuses it the same way.
        let a = cli.dir.appendingPathComponent("a.sqlite").path
        ok(try cli.run(["init", "--region", "almaty"], db: a))
        let r = try cli.run(["bundle", "import", file], db: a)
        #expect(r.status != 0 && r.stderr.contains("device name"), "\(r.stderr)")
        clean(r, "fieldbook bundle import")
    }

    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }
}
