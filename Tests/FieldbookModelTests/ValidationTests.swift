import FieldbookModel
import Foundation
import Testing

@Suite struct ValidationTests {
    @Test func unknownVocabularyValueListsTheAllowedOnes() {
        do {
            _ = try IncidentKind.parse("arrest", field: "incident.kind")
            Issue.record("accepted an unknown kind")
        } catch {
            #expect(error.field == "incident.kind")
            #expect(error.reason.contains("detention"))
            #expect(error.reason.contains("dismissal"))
        }
    }

    @Test func vocabulariesHaveExactlyTheFixtureValues() {
        #expect(IncidentKind.allCases.count == 27)
        #expect(Authority.allCases.map(\.rawValue) == ["police", "KNB", "prosecutor", "court", "prison administration", "local executive", "unknown"])
        #expect(SentenceKind.allCases.count == 8)
        #expect(FineUnit.allCases.map(\.rawValue) == ["KZT", "EUR", "MCI"])
        #expect(Reliability.allCases.map(\.rawValue) == ["high", "usually_reliable", "fairly_reliable", "unknown"])
        #expect(Verification.allCases.map(\.rawValue) == ["confirmed", "likely", "possible", "unknown"])
    }

    @Test func chargesParseCodeArticleAndPart() throws {
        let c = try ChargeRef("CC 405.1")
        #expect(c.code == .CC && c.article == "405" && c.part == "1")
        #expect(try ChargeRef("CoAO 489").description == "CoAO 489")
        #expect(try ChargeRef("CoAO 489-1").article == "489-1")
        for bad in ["CC405", "UK 405", "CC 405.", "CC .1", "CC 405.1.2", "CC abc"] {
            #expect(throws: ModelError.self) { try ChargeRef(bad) }
        }
    }

    @Test func durationsFollowISO8601() throws {
        for ok in ["P18M", "P1Y6M", "P15D", "P2W", "PT48H", "P1Y2M3DT4H"] { _ = try ISODuration(ok) }
        for bad in ["18M", "P", "P1.5Y", "PM", "P6M1Y", "PT", "P1H", "P18m"] {
            #expect(throws: ModelError.self, "\(bad)") { try ISODuration(bad) }
        }
    }

    @Test func schemaChecksTypesRequiredFieldsAndValues() throws {
        let t = FieldbookSchema.incident
        #expect(throws: ModelError.self) { try t.validate(.null, at: try t.index(of: "kind")) }
        #expect(throws: ModelError.self) { try t.validate(.integer(3), at: try t.index(of: "date")) }
        #expect(throws: ModelError.self) { try t.validate(.text("1,000"), at: try t.index(of: "fine_amount")) }
        try t.validate(.text("95000"), at: try t.index(of: "fine_amount"))
        #expect(throws: ModelError.self) { try t.index(of: "colour") }
        #expect(throws: ModelError.self) { try FieldbookSchema.checkIncident(["fine_amount": .text("5")]) }
    }

    @Test func regionsAreSlugs() {
        #expect(Checks.isRegion("almaty"))
        #expect(Checks.isRegion("north-kazakhstan"))
        #expect(!Checks.isRegion("Almaty"))
        #expect(!Checks.isRegion("*"))
        #expect(!Checks.isRegion(""))
    }

    @Test func singleLineFieldsRejectControlCharacters() {
        #expect(throws: ModelError.self) { try Checks.line("person.name", "Asqar\nQaiyrbek") }
        #expect(throws: ModelError.self) { try Checks.line("person.name", "Asqar\u{85}") }
        #expect(throws: ModelError.self) { try Checks.line("person.name", " Asqar") }
        #expect(throws: Never.self) { try Checks.line("person.name", "Қайырбек Асқар") }
        #expect(throws: Never.self) { try Checks.text("incident.description", "line one\nline two") }
    }

    @Test func wireChangesetRoundTripsThroughColumnarJSON() throws {
        let a = SiteID.random(), b = SiteID.random()
        let cs = Changeset(sites: [a, b], tables: [
            TableChanges(table: "person", fields: ["name", "born"], rows: [
                RowChange(id: "p1", cl: 1, hlc: 100 << 16, site: 0, fields: [
                    FieldChange(field: 0, value: .text("Asqar"), hlc: 100 << 16, site: 0),
                    FieldChange(field: 1, value: .null, hlc: 120 << 16, site: 1),
                ]),
                RowChange(id: "p2", cl: 2, hlc: 130 << 16, site: 1),
                RowChange(id: "p3", cl: 3, hlc: 90 << 16, site: 0, fields: [FieldChange(field: 1, value: .integer(-4), hlc: 91 << 16, site: 1)]),
            ]),
        ])
        let data = try JSONEncoder().encode(WireChangeset(cs))
        let back = try JSONDecoder().decode(WireChangeset.self, from: data).changeset()
        #expect(back.sites == cs.sites)
        #expect(back.tables[0].rows.map(\.id) == ["p1", "p2", "p3"])
        #expect(back.tables[0].rows[0].fields.map { back.tables[0].fields[$0.field] } == ["name", "born"])
        #expect(back.tables[0].rows[2].fields[0].value == .integer(-4))
        #expect(back.tables[0].rows[1].isDelete)
    }

    @Test func malformedWireChangesetsAreRejected() throws {
        let site = SiteID.random()
        var w = WireChangeset(Changeset(sites: [site], tables: [TableChanges(table: "person", fields: ["name"], rows: [
            RowChange(id: "p1", cl: 1, hlc: 1, site: 0, fields: [FieldChange(field: 0, value: .text("x"), hlc: 1, site: 0)]),
        ])]))
        var bad = w
        bad.tables[0].columns[0].rows = [5]
        #expect(throws: ModelError.self) { try bad.changeset() }
        bad = w
        bad.tables[0].site = [3]
        #expect(throws: ModelError.self) { try bad.changeset() }
        bad = w
        bad.tables[0].cl = [2]
        #expect(throws: ModelError.self) { try bad.changeset() }
        w.tables[0].hlc = []
        #expect(throws: ModelError.self) { try w.changeset() }
    }
}

/// Every text a field accepts fits a sealed cell: a value that would not is refused where it is
/// written, naming the field (a URL has no length of its own; graphemes of many bytes count as one character).
@Suite struct SealableValueTests {
    @Test func everyTextAFieldAcceptsFitsASealedCell() {
        for table in FieldbookSchema.tables {
            for (i, c) in table.columns.enumerated() where c.type == .text {
                let huge = String(repeating: "👨‍👩‍👧‍👦", count: 4_000)  // 4,000 characters, 100,000 bytes
                #expect(throws: ModelError.self, "\(table.name).\(c.name)") { try table.validate(.text(huge), at: i) }
                let url = "https://example.org/" + String(repeating: "a", count: WireLimits.maxTextBytes)
                #expect(throws: ModelError.self, "\(table.name).\(c.name)") { try table.validate(.text(url), at: i) }
            }
        }
        // The longest accepted text, sealed, is within the cell limit.
        let longest = WireLimits.maxTextBytes
        let padded = (1 + 3 + longest + 15) / 16 * 16
        #expect(6 + padded + SealedForm.tagBytes <= WireLimits.maxSealedBytes)
    }
}
