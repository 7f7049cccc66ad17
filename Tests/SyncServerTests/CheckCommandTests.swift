import FieldbookTestSupport
import Foundation
import Testing

/// Issue 7, item 8: what concurrent edits on two laptops can leave behind — an incident whose
/// person was deleted elsewhere, a fine whose amount and unit come from two edits — is kept,
/// shown by `fieldbook check` and the JSON export, and can be repaired. Real server, real CLI.
@Suite(.serialized) struct CheckCommandTests {
    func db(_ cli: CLIRunner, _ name: String) -> String { cli.dir.appendingPathComponent("\(name).sqlite").path }

    @discardableResult
    func ok(_ r: CLIRunner.Result, _ what: String = "") -> CLIRunner.Result {
        #expect(r.status == 0, "\(what): exit \(r.status): \(r.stderr)")
        return r
    }

    func json(_ r: CLIRunner.Result) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
    }

    @Test func orphanOfAConcurrentDeleteIsKeptShownAndRepairable() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (a, b) = (db(cli, "a"), db(cli, "b"))
        for (path, name) in [(a, "laptop-a"), (b, "laptop-b")] {
            ok(try cli.run(["init", "--region", "almaty", "--device", name], db: path))
            ok(try cli.run(["remote", "add", "hq", server.url, "--token", try server.token(name, regions: "almaty")], db: path))
        }
        try server.approve([a, b], cli: cli)
        let p = ok(try cli.run(["person", "add", "--name", "Asqar Qaiyrbek"], db: a)).line
        let q = ok(try cli.run(["person", "add", "--name", "Alnur Ilyashev"], db: a)).line
        let fined = ok(try cli.run(["incident", "add", "--person", q, "--kind", "verdict", "--date", "2021-06",
                                    "--fine", "50000", "--fine-unit", "KZT"], db: a)).line
        ok(try cli.run(["sync"], db: a))
        ok(try cli.run(["sync"], db: b))
        #expect(ok(try cli.run(["check"], db: b)).line == "no problems found")

        // Offline on both: A deletes the person; B records a new incident of that person with a
        // charge, and sets a new fine amount while A clears the fine.
        ok(try cli.run(["edit", fined, "--set", "fine_amount=", "--set", "fine_unit="], db: a))
        ok(try cli.run(["delete", p], db: a))
        Thread.sleep(forTimeInterval: 0.01)
        let orphan = ok(try cli.run(["incident", "add", "--person", p, "--kind", "detention", "--date", "2022-01",
                                     "--article", "CC 405.1", "--source-outlet", "RFE/RL"], db: b)).line
        ok(try cli.run(["edit", fined, "--set", "fine_amount=70000"], db: b))
        for r in [a, b, a] { ok(try cli.run(["sync"], db: r)) }

        for r in [a, b] {
            let check = try cli.run(["check", "--json"], db: r)
            #expect(check.status == 1, "check finds something: \(check.status) \(check.stderr)")
            let report = try json(check)
            let orphans = report["orphans"] as! [[String: Any]]
            #expect(orphans.map { $0["id"] as! String } == [orphan], "\(r)")
            #expect(orphans.first?["parent_id"] as? String == p && orphans.first?["parent_deleted"] as? Bool == true)
            let incident = orphans.first?["incident"] as? [String: Any]
            #expect(incident?["charges"] as? [String] == ["CC 405.1"], "the orphan keeps its charges")
            let inconsistent = report["inconsistent"] as! [[String: Any]]
            #expect(inconsistent.map { $0["id"] as! String } == [fined], "\(r): \(inconsistent)")
            // The JSON export carries the orphan; the CSV export says it cannot.
            let export = try json(ok(try cli.run(["export", "--format", "json"], db: r)))
            #expect((export["orphans"] as! [[String: Any]]).map { $0["id"] as! String } == [orphan])
            #expect(ok(try cli.run(["export", "--format", "csv"], db: r)).stderr.contains(orphan))
            let text = try cli.run(["check"], db: r)
            #expect(text.status == 1 && text.stdout.contains("fieldbook restore \(p)"), "\(text.stdout)")
        }

        // Repair on one laptop, sync both: nothing left to report anywhere.
        ok(try cli.run(["restore", p], db: b))
        ok(try cli.run(["edit", fined, "--set", "fine_unit=KZT"], db: b))
        for r in [b, a] { ok(try cli.run(["sync"], db: r)) }
        for r in [a, b] {
            #expect(ok(try cli.run(["check"], db: r)).line == "no problems found")
            let persons = try JSONSerialization.jsonObject(with: Data(ok(try cli.run(["list", "persons", "--json"], db: r)).stdout.utf8)) as! [[String: Any]]
            let incidents = (persons.first { $0["id"] as? String == p }?["incidents"] as? [[String: Any]])?.map { $0["id"] as! String }
            #expect(incidents?.contains(orphan) == true, "\(r): the incident is back under its person")
        }
    }
}

/// Issue 10, item 5: imported records get ids derived from what identifies them in the file
/// (region and `ref`, or the row; the person's region, name and birth), so the same CSV
/// imported on two laptops syncs into one set of records, not two.
@Suite(.serialized) struct ImportOnTwoLaptopsTests {
    @Test func theSameFileImportedOnTwoLaptopsSyncsIntoOneSetOfRecords() throws {
        let cli = try CLIRunner()
        let server = try ServerProcess(data: cli.dir.appendingPathComponent("server").path)
        defer { server.stop() }
        let (a, b) = (cli.dir.appendingPathComponent("a.sqlite").path, cli.dir.appendingPathComponent("b.sqlite").path)
        for (path, device) in [(a, "laptop-a"), (b, "laptop-b")] {
            #expect(try cli.run(["init", "--region", "almaty", "--device", device], db: path).status == 0)
            #expect(try cli.run(["import", CLIRunner.fixture], db: path).status == 0)
            let token = try server.token(device, regions: "almaty")
            #expect(try cli.run(["remote", "add", "hq", server.url, "--token-file", try cli.file("t", token)], db: path).status == 0)
        }
        try server.approve([a, b], cli: cli)
        let alone = try cli.run(["export", "--format", "json"], db: a).stdout
        for path in [a, b, a] { #expect(try cli.run(["sync"], db: path).status == 0) }
        func counts(_ path: String) throws -> (persons: Int, incidents: Int, aliases: Int) {
            let persons = try JSONSerialization.jsonObject(with: Data(cli.run(["list", "persons", "--json"], db: path).stdout.utf8)) as! [[String: Any]]
            let incidents = persons.reduce(0) { $0 + (($1["incidents"] as? [Any])?.count ?? 0) }
            let aliases = persons.reduce(0) { $0 + (($1["aliases"] as? [Any])?.count ?? 0) }
            return (persons.count, incidents, aliases)
        }
        let single = try JSONSerialization.jsonObject(with: Data(alone.utf8)) as! [String: Any]
        let singlePersons = (single["persons"] as! [[String: Any]])
        for path in [a, b] {
            let c = try counts(path)
            #expect(c.persons == singlePersons.count && c.persons == 31, "\(path): \(c)")
            #expect(c.incidents == 49 && c.aliases == 17, "\(path): \(c)")
        }
        #expect(try cli.run(["export", "--format", "csv"], db: a).stdout == cli.run(["export", "--format", "csv"], db: b).stdout)
        // Importing it again changes nothing, here or there.
        let again = try cli.run(["import", CLIRunner.fixture], db: b)
        #expect(again.stdout.contains("0 incidents added, 49 already present"), "\(again.stdout)")
    }
}
