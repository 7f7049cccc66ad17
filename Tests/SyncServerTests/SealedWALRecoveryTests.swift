import FieldbookModel
import FieldbookTestSupport
import Foundation
import GRDB
import ReplicaStore
import Testing

/// What the sealed WAL, the key-slot header and the replica probe do with what a power cut,
/// another program or an older release leave behind: nothing recorded is lost, nothing that is
/// not damage is called damage, nothing that is not ours is written.
@Suite(.serialized) struct SealedWALRecoveryTests {
    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    func bytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

    /// An image of a replica with `rounds` commits still in its WAL, as a running program leaves it.
    func imaged(_ cli: CLIRunner, _ name: String, rounds: Int) throws -> (db: [UInt8], wal: [UInt8]) {
        let path = cli.dir.appendingPathComponent("\(name).sqlite").path
        _ = try Replica.create(path: path, tables: FieldbookSchema.tables, region: "almaty",
                               protection: .passphrase(CLIRunner.passphrase, cost: KeySlots.Cost(logN: 10, r: 8, p: 1)))
        let held = try Replica.open(path: path, tables: FieldbookSchema.tables, passphrase: CLIRunner.passphrase)
        for round in 0..<rounds {
            try held.write { w in try w.insert("person", id: UUID().uuidString.lowercased(), values: ["region": .text("almaty"), "name": .text("\(name) \(round)")]) }
        }
        return (bytes(path), bytes(path + "-wal"))
    }

    /// A power cut while the last frame was being written leaves it cut short or torn: the
    /// replica opens with every commit before it (SQLite ends its log there), never "damaged".
    @Test func aFrameTornByAPowerCutEndsTheLogAndIsNotDamage() throws {
        let cli = try CLIRunner()
        let a = try imaged(cli, "a", rounds: 10)
        let frame = 4120
        for (what, wal) in [("cut short", Array(a.wal.dropLast(frame / 2))),
                            ("torn", Array(a.wal.prefix(a.wal.count - frame / 2)) + [UInt8](repeating: 0, count: frame / 2))] {
            let path = cli.dir.appendingPathComponent("torn-\(what).sqlite").path
            try Data(a.db).write(to: URL(fileURLWithPath: path))
            try Data(wal).write(to: URL(fileURLWithPath: path + "-wal"))
            let r = ok(try cli.run(["list", "persons"], db: path), what)
            #expect(r.stdout.contains("a 0") && r.stdout.contains("a 8"), "\(what): the commits before the torn frame are there: \(r.stdout)")
        }
    }

    /// A format-2 header whose format byte or file id was changed opens no page, and is damage
    /// (exit 74) — a changed file id is named as the header's, not as a page's.
    @Test func anAlteredFormatByteOrFileIDIsNamedAsSuch() throws {
        let cli = try CLIRunner()
        let a = try imaged(cli, "a", rounds: 2)
        for (what, at, value) in [("file id", 50, UInt8(0x5A)), ("format byte", 8, UInt8(1))] {
            var db = a.db
            db[at] = at == 8 ? value : db[at] ^ value
            if at == 8 { for i in 48..<64 { db[i] = 0 } }
            let path = cli.dir.appendingPathComponent("altered-\(what.replacingOccurrences(of: " ", with: "-")).sqlite").path
            try Data(db).write(to: URL(fileURLWithPath: path))
            let r = try cli.run(["list", "persons"], db: path)
            // A changed file id is caught by the map bound to the whole header. A format byte
            // set back to 1 with the id zeroed cannot be told from a format-1 file that predates
            // the map: its pages then fail, which is damage all the same.
            let said = at == 8 ? r.stderr.contains("tampered") : r.stderr.contains("header")
            #expect(r.status == 74 && said, "\(what): \(r.status) \(r.stderr)")
        }
    }

    /// Another program's database in WAL mode, with frames still in its WAL, is probed read-only:
    /// "not a Fieldbook replica", and neither its file nor its WAL is written.
    @Test func anotherProgramsWALDatabaseIsNeitherOpenedForWritingNorCheckpointed() throws {
        let cli = try CLIRunner()
        let source = cli.dir.appendingPathComponent("source.sqlite").path
        let copy = cli.dir.appendingPathComponent("other.sqlite").path
        let q = try DatabaseQueue(path: source)
        try q.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
        try q.write { db in try db.execute(sql: "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('kept in the WAL')") }
        try FileManager.default.copyItem(atPath: source, toPath: copy)
        try FileManager.default.copyItem(atPath: source + "-wal", toPath: copy + "-wal")
        try q.close()
        let (db, wal) = (bytes(copy), bytes(copy + "-wal"))
        #expect(wal.count > 0, "the copy's WAL holds frames")
        let r = try cli.run(["list", "persons"], db: copy)
        #expect(r.status == 67 && r.stderr.contains("is not a Fieldbook replica"), "\(r.status) \(r.stderr)")
        let same = bytes(copy) == db && bytes(copy + "-wal") == wal
        #expect(same, "neither the file nor its WAL was written")
    }

    /// After a duress wipe the decoy slots keep the count of used slots, and the new replica's
    /// owner can still add passphrases: the map says the decoys are free.
    @Test func decoySlotsAreFreeToTheNewReplicasOwner() throws {
        let cli = try CLIRunner()
        let a = cli.dir.appendingPathComponent("a.sqlite").path
        ok(try cli.run(["init", "--region", "almaty", "--device", "laptop"], db: a))
        for i in 0..<6 { ok(try cli.run(["passphrase", "add", "--new-passphrase-file", try cli.file("p\(i)", "extra passphrase number \(i)\n")], db: a)) }
        ok(try cli.run(["passphrase", "add", "--duress", "--new-passphrase-file", try cli.file("d", "the duress passphrase\n")], db: a))
        #expect(try KeySlots.read(path: a).usedSlots == 8)
        let forced = ["FIELDBOOK_PASSPHRASE": "the duress passphrase"]
        ok(try cli.run(["list", "persons"], db: a, env: forced))
        #expect(try KeySlots.read(path: a).usedSlots == 8, "as many used slots as before")
        ok(try cli.run(["passphrase", "add", "--new-passphrase-file", try cli.file("n", "a new second passphrase\n")], db: a, env: forced))
        ok(try cli.run(["list", "persons"], db: a, env: ["FIELDBOOK_PASSPHRASE": "a new second passphrase"]))
        #expect(try KeySlots.read(path: a).usedSlots == 8)
    }

    /// A replica encrypted by the previous release (format 1) is flagged by `status` and
    /// `check`, and `encrypt --upgrade` rewrites it in format 2: the same records, the same
    /// passphrase, a sealed WAL; slots kept from format 1 are flagged for re-adding.
    @Test func aFormatOneReplicaIsUpgradedInPlace() throws {
        let cli = try CLIRunner()
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/release-0.1")
        let a = cli.dir.appendingPathComponent("monitor.sqlite").path
        try FileManager.default.copyItem(atPath: fixtures.appendingPathComponent("monitor.sqlite").path, toPath: a)
        try FileManager.default.copyItem(atPath: fixtures.appendingPathComponent("monitor.sqlite-wal").path, toPath: a + "-wal")
        let env = ["FIELDBOOK_PASSPHRASE": "release-fixture-passphrase"]
        let before = ok(try cli.run(["export", "--format", "csv"], db: a, env: env)).stdout
        #expect(ok(try cli.run(["status"], db: a, env: env)).stdout.contains("format 1"))
        #expect(try cli.run(["check"], db: a, env: env).stdout.contains("encrypt --upgrade"))
        ok(try cli.run(["encrypt", "--upgrade"], db: a, env: env))
        #expect(try KeySlots.read(path: a).version == 2)
        #expect(!FileManager.default.fileExists(atPath: a + "-wal") || bytes(a + "-wal").isEmpty)
        #expect(ok(try cli.run(["export", "--format", "csv"], db: a, env: env)).stdout == before, "the same records")
        let status = ok(try cli.run(["status"], db: a, env: env)).stdout
        #expect(status.contains("format 2") && status.contains("other lengths"), "\(status)")
        #expect(try cli.run(["encrypt", "--upgrade"], db: a, env: env).status == 65, "once is enough")
    }

    /// A crash while a passphrase command rewrote the key slots — the header torn half old, half
    /// new — loses nothing: the new header, kept whole beside the file until it was in place,
    /// is finished at the next open; a copy cut short before it was whole is ignored.
    @Test func aHeaderRewriteCutByACrashIsFinishedAtTheNextOpen() throws {
        let cli = try CLIRunner()
        let a = cli.dir.appendingPathComponent("a.sqlite").path
        ok(try cli.run(["init", "--region", "almaty"], db: a))
        ok(try cli.run(["person", "add", "--name", "Асқар Қайырбек"], db: a))
        let old = bytes(a)
        ok(try cli.run(["passphrase", "change", "--new-passphrase-file", try cli.file("new", "the new passphrase here\n")], db: a))
        #expect(!FileManager.default.fileExists(atPath: a + "-keyslots"), "no copy left once the rewrite is done")
        let new = Array(bytes(a).prefix(KeySlots.size))

        // Torn: the first half of the header new, the rest old; the whole new header beside it.
        var torn = old
        torn.replaceSubrange(0..<(KeySlots.size / 2), with: new[0..<(KeySlots.size / 2)])
        try Data(torn).write(to: URL(fileURLWithPath: a))
        try Data(new).write(to: URL(fileURLWithPath: a + "-keyslots"))
        let r = ok(try cli.run(["list", "persons"], db: a, env: ["FIELDBOOK_PASSPHRASE": "the new passphrase here"]))
        #expect(r.stdout.contains("Асқар Қайырбек"))
        #expect(Array(bytes(a).prefix(KeySlots.size)) == new && !FileManager.default.fileExists(atPath: a + "-keyslots"))

        // Cut short before the copy was whole: the old header stands, the partial copy goes.
        try Data(old).write(to: URL(fileURLWithPath: a))
        try Data(new.prefix(1000)).write(to: URL(fileURLWithPath: a + "-keyslots.tmp"))
        ok(try cli.run(["list", "persons"], db: a))
        #expect(!FileManager.default.fileExists(atPath: a + "-keyslots.tmp"))
    }

    /// The duress passphrase given to `passphrase change` (a coercer's "change it to this") does
    /// what it does at any open: the replica is replaced, and the change then applies to the new
    /// one — no file of random bytes left behind, and the real passphrase opens nothing.
    @Test func theDuressPassphraseGivenToAPassphraseCommandActsAsAtAnyOpen() throws {
        let cli = try CLIRunner()
        let a = cli.dir.appendingPathComponent("a.sqlite").path
        ok(try cli.run(["init", "--region", "atyrau", "--device", "laptop"], db: a))
        ok(try cli.run(["person", "add", "--name", "Асқар Қайырбек"], db: a))
        ok(try cli.run(["passphrase", "add", "--duress", "--new-passphrase-file", try cli.file("d", "the duress passphrase\n")], db: a))
        let forced = ["FIELDBOOK_PASSPHRASE": "the duress passphrase"]
        ok(try cli.run(["passphrase", "change", "--new-passphrase-file", try cli.file("n", "the coercer's passphrase\n")], db: a, env: forced))
        let coerced = ["FIELDBOOK_PASSPHRASE": "the coercer's passphrase"]
        let status = ok(try cli.run(["status"], db: a, env: coerced)).stdout
        #expect(status.contains("region    atyrau") && status.contains("device    laptop"), "\(status)")
        #expect(!ok(try cli.run(["list", "persons"], db: a, env: coerced)).stdout.contains("Қайырбек"))
        #expect(try cli.run(["list", "persons"], db: a).status == 78, "the real passphrase opens nothing")
    }
}
