import FieldbookTestSupport
import Foundation
import Testing

@Suite struct CLITests {
    let header = "ref,person_name,person_aliases,person_born,person_sex,person_occupation,person_affiliation,incident_kind,date,date_text,place_region,settlement,facility,authority,articles,sentence_kind,sentence_term,fine_amount,fine_unit,description,source_outlet,source_url,source_date,reliability,verification\r\n"

    @Test func recordEditShowAndHistoryOfflineEndToEnd() throws {
        let cli = try CLIRunner()
        #expect(try cli.run(["init", "--region", "almaty", "--device", "laptop-1"]).status == 0)
        let p = try cli.run(["person", "add", "--name", "Asqar Qaiyrbek", "--alias", "Askar Kairbek", "--alias", "Қайырбек", "--born", "1976/1977", "--sex", "m"])
        #expect(p.status == 0)
        let pid = p.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(UUID(uuidString: pid) != nil)
        let i = try cli.run(["incident", "add", "--person", pid, "--kind", "verdict", "--date", "2021-06", "--authority", "court",
                             "--article", "CC 405.1", "--sentence-kind", "imprisonment", "--sentence-term", "P18M",
                             "--source-outlet", "Human Rights Watch via RFE/RL", "--source-date", "2021-07", "--reliability", "high"])
        #expect(i.status == 0, "\(i.stderr)")
        let iid = i.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cli.run(["edit", iid, "--set", "sentence_term=P26M", "--add-article", "CC 174"]).status == 0)
        let show = try cli.run(["show", pid, "--json"])
        let person = try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as! [String: Any]
        #expect((person["aliases"] as! [String]).sorted() == ["Askar Kairbek", "Қайырбек"])
        let incident = (person["incidents"] as! [[String: Any]])[0]
        #expect(incident["sentence_term"] as? String == "P26M")
        #expect((incident["charges"] as! [String]) == ["CC 174", "CC 405.1"])
        let h = try cli.run(["history", iid])
        #expect(h.status == 0)
        #expect(h.stdout.contains("P18M") && h.stdout.contains("overwritten") && h.stdout.contains("P26M") && h.stdout.contains("current"))
        let list = try cli.run(["list", "incidents", "--kind", "verdict", "--from", "2021", "--to", "2021-12"])
        #expect(list.stdout.contains(iid))
        #expect(!(try cli.run(["list", "incidents", "--from", "2022"]).stdout.contains(iid)))
        let del = try cli.run(["delete", pid])
        #expect(del.status == 0 && del.stdout.contains("deleted 7 records"))  // person, 2 aliases, incident, 2 charges, source
        #expect(try cli.run(["show", pid]).status == 66)
        #expect(try cli.run(["history", pid]).stdout.contains("deleted"))
    }

    @Test func badInputNamesTheFieldAndWritesNothing() throws {
        let cli = try CLIRunner()
        try cli.run(["init", "--region", "almaty"])
        let pid = try cli.run(["person", "add", "--name", "Alnur Ilyashev"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let before = try cli.run(["export", "--format", "json"]).stdout
        let cases: [([String], String)] = [
            (["incident", "add", "--person", pid, "--kind", "arrest", "--date", "2020-04-17"], "incident.kind"),
            (["incident", "add", "--person", pid, "--kind", "detention", "--date", "2020-02-30"], "29 days"),
            (["incident", "add", "--person", pid, "--kind", "verdict", "--date", "2020", "--sentence-term", "18 months"], "incident.sentence_term"),
            (["incident", "add", "--person", pid, "--kind", "fine", "--date", "2020", "--fine", "5000"], "fine_unit"),
            (["incident", "add", "--person", pid, "--kind", "charge", "--date", "2020", "--article", "UK 274"], "unknown code"),
            (["person", "add", "--name", "X", "--sex", "x"], "person.sex"),
            (["edit", pid, "--set", "region=atyrau"], "region"),
            (["edit", pid, "--set", "colour=red"], "colour"),
        ]
        for (args, needle) in cases {
            let r = try cli.run(args)
            #expect(r.status == 65, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(needle), "\(args): \(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        #expect(try cli.run(["export", "--format", "json"]).stdout == before)
        #expect(try cli.run(["show", "5b0a3e3c-7d1f-4c52-9a43-2f7d1d9c4e10"]).status == 66)
        #expect(try cli.run(["init", "--region", "almaty"]).status == 67)
        #expect(try cli.run(["list", "persons"], db: cli.dir.appendingPathComponent("none.sqlite").path).status == 67)
        #expect(try cli.run(["list", "things"]).status == 64)
    }

    @Test func importIsAllOrNothingAndNamesLineAndColumn() throws {
        let cli = try CLIRunner()
        try cli.run(["init", "--region", "almaty"])
        let csv = header
            + "t-1,Asqar Qaiyrbek,Askar Kairbek,1976/1977,m,activist,DVK,detention,2020-09,\"arrested, in \"\"September\"\"\",,,,unknown,,,,,,\"line one\r\nline two\",RFE/RL,,2022-05,usually_reliable,likely\r\n"
            + "t-2,Askar Kairbek,,,,,,verdict,2021-02-30,,,,,court,CC 405,imprisonment,P18M,,,,,,,,confirmed\r\n"
        let path = try cli.file("bad.csv", csv)
        let r = try cli.run(["import", path])
        #expect(r.status == 65)
        #expect(r.stderr.contains("bad.csv:4: column date"), "\(r.stderr)")  // the quoted line break moves row 2 to line 4
        #expect(try cli.run(["list", "persons", "--json"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]")
        let good = try cli.file("good.csv", csv.replacingOccurrences(of: "2021-02-30", with: "2021-02"))
        let ok = try cli.run(["import", good])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("2 incidents added") && ok.stdout.contains("1 persons added"))
        let again = try cli.run(["import", good])
        #expect(again.stdout.contains("0 incidents added, 2 already present"))
        let persons = try JSONSerialization.jsonObject(with: Data(try cli.run(["list", "persons", "--json"]).stdout.utf8)) as? [[String: Any]] ?? []
        try #require(persons.count == 1)
        let desc = ((persons[0]["incidents"] as? [[String: Any]])?.first { $0["ref"] as? String == "t-1" })?["description"] as? String
        #expect(desc == "line one\r\nline two")
    }

    @Test func fixtureExportImportExportIsByteIdentical() throws {
        let cli = try CLIRunner()
        try cli.run(["init", "--region", "almaty"])
        let r = try cli.run(["import", CLIRunner.fixture])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("49 incidents added") && r.stdout.contains("31 persons added"))
        let e1 = cli.dir.appendingPathComponent("e1.csv").path, e2 = cli.dir.appendingPathComponent("e2.csv").path
        #expect(try cli.run(["export", "--format", "csv", "--out", e1]).status == 0)
        let other = cli.dir.appendingPathComponent("other.sqlite").path
        try cli.run(["init", "--region", "atyrau"], db: other)
        #expect(try cli.run(["import", e1], db: other).status == 0)
        #expect(try cli.run(["export", "--format", "csv", "--out", e2], db: other).status == 0)
        let a = try Data(contentsOf: URL(fileURLWithPath: e1)), b = try Data(contentsOf: URL(fileURLWithPath: e2))
        #expect(a == b)
        #expect(a.count > 10_000)
        let persons = try JSONSerialization.jsonObject(with: Data(try cli.run(["list", "persons", "--json"], db: other).stdout.utf8)) as! [[String: Any]]
        #expect(persons.count == 31)
        let mamay = persons.filter { ($0["name"] as? String)?.hasPrefix("Zhanbolat") == true }
        #expect(mamay.count == 1)  // spelled Mamay and Mamai in the sources: one person
        #expect((mamay.first?["aliases"] as? [String])?.contains("Zhanbolat Mamai") == true)
    }
}

/// Issue 9, item 7 (in part): `remote add` refuses plain http:// to another machine before any
/// connection (it never connects), unless `--insecure`; loopback and https are accepted.
@Suite struct RemoteURLTests {
    @Test func plainHTTPToAnotherMachineIsRefusedUnlessInsecure() throws {
        let cli = try CLIRunner()
        #expect(try cli.run(["init", "--region", "almaty"]).status == 0)
        let token = try cli.file("token", "fb_test_token\n")
        for url in ["http://192.0.2.10:8080", "http://fieldbook.example.org", "http://128.0.0.1", "HTTP://10.0.0.1"] {
            let r = try cli.run(["remote", "add", "r", url, "--token-file", token])
            #expect(r.status == 65 && r.stderr.contains("plain http://"), "\(url): \(r.status) \(r.stderr)")
        }
        #expect(try cli.run(["remote", "list"]).line.isEmpty, "nothing was added")
        for (i, url) in ["http://127.0.0.1:8080", "http://127.1.2.3:9", "http://localhost:8080", "http://[::1]:8080", "https://fieldbook.example.org"].enumerated() {
            let r = try cli.run(["remote", "add", "ok\(i)", url, "--token-file", token])
            #expect(r.status == 0, "\(url): \(r.stderr)")
        }
        let insecure = try cli.run(["remote", "add", "lan", "http://192.0.2.10:8080", "--token-file", token, "--insecure"])
        #expect(insecure.status == 0 && insecure.stderr.contains("plain http://"), "\(insecure.stderr)")
        #expect(try cli.run(["remote", "list"]).stdout.split(separator: "\n").count == 6)
    }
}

/// `fieldbook persons duplicates`: the same person under other spellings and scripts, as a
/// table or JSON; a bad bar or region is refused naming the option.
@Suite struct PersonsDuplicatesCLITests {
    @Test func duplicatesAcrossScriptsAreListedWithScoresAndReasons() throws {
        let cli = try CLIRunner()
        #expect(try cli.run(["init", "--region", "almaty"]).status == 0)
        #expect(try cli.run(["import", CLIRunner.fixture]).status == 0)
        #expect(try cli.run(["persons", "duplicates"]).line == "no candidate pairs at score 0.85 or above")
        let cyr = try cli.run(["person", "add", "--name", "Асқар Қайырбек", "--born", "1977"]).line
        let json = try cli.run(["persons", "duplicates", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let pairs = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [[String: Any]]
        #expect(pairs.count == 1, "\(json.stdout)")
        let p = pairs[0]
        #expect([p["a"] as? String, p["b"] as? String].contains(cyr))
        #expect((p["score"] as? Double ?? 0) >= 0.85 && (p["score"] as? Double ?? 2) <= 1)
        #expect((p["reasons"] as? [String] ?? []).contains { $0.contains("Kazakh transliteration") }, "\(p)")
        let none = try JSONSerialization.jsonObject(with: Data(try cli.run(["persons", "duplicates", "--region", "atyrau", "--json"]).stdout.utf8)) as! [Any]
        #expect(none.isEmpty, "no person of atyrau")
        let bad = try cli.run(["persons", "duplicates", "--min-score", "1.5"])
        #expect(bad.status == 65 && bad.stderr.contains("--min-score"), "\(bad.stderr)")
        let badRegion = try cli.run(["persons", "duplicates", "--region", "Not A Region"])
        #expect(badRegion.status == 65 && badRegion.stderr.contains("--region"), "\(badRegion.stderr)")
    }
}

/// Issue 10, item 5: a CSV row joins a person of the same name only when their other facts
/// agree; a namesake born in other years, or of the other sex, becomes another person, with a
/// warning, and `persons duplicates` shows the pair below its bar with the reason.
@Suite struct ImportJoinsCarefullyTests {
    static let header = "ref,person_name,person_aliases,person_born,person_sex,person_occupation,person_affiliation,incident_kind,date,date_text,place_region,settlement,facility,authority,articles,sentence_kind,sentence_term,fine_amount,fine_unit,description,source_outlet,source_url,source_date,reliability,verification\r\n"

    static func row(_ ref: String, _ name: String, born: String, sex: String) -> String {
        "\(ref),\(name),,\(born),\(sex),,,detention,2021-05,,Almaty,,,police,,,,,,Detained.,RFE/RL,,2021,usually_reliable,likely\r\n"
    }

    @Test func aNamesakeBornInOtherYearsIsAnotherPerson() throws {
        let cli = try CLIRunner()
        #expect(try cli.run(["init", "--region", "almaty"]).status == 0)
        let csv = try cli.file("people.csv", Self.header
            + Self.row("t-1", "Marat Ilyashev", born: "1961", sex: "m")
            + Self.row("t-2", "Marat Ilyashev", born: "1960/1961", sex: "m")   // the same man: the dates overlap
            + Self.row("t-3", "Marat Ilyashev", born: "1990", sex: "m")        // his son
            + Self.row("t-4", "Marat Ilyashev", born: "", sex: "f"))           // a woman of that name
        let r = try cli.run(["import", csv])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("3 persons added"), "\(r.stdout)")
        #expect(r.stderr.contains("born 1990, not 1961") && r.stderr.contains("of sex f, not m"), "\(r.stderr)")
        let persons = try JSONSerialization.jsonObject(with: Data(cli.run(["list", "persons", "--json"]).stdout.utf8)) as! [[String: Any]]
        #expect(persons.count == 3)
        #expect(persons.map { ($0["incidents"] as? [Any])?.count ?? 0 }.sorted() == [1, 1, 2])
        // Imported again: nothing new.
        #expect(try cli.run(["import", csv]).stdout.contains("0 persons added"))
        let shown = try JSONSerialization.jsonObject(with: Data(cli.run(["persons", "duplicates", "--min-score", "0", "--json"]).stdout.utf8)) as! [[String: Any]]
        #expect(shown.contains { ($0["reasons"] as? [String] ?? []).contains { $0.hasPrefix("different birth years") } }, "\(shown)")
        #expect(try cli.run(["persons", "duplicates"]).line == "no candidate pairs at score 0.85 or above")
    }
}
