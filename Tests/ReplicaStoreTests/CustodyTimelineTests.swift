import FieldbookKit
import FieldbookModel
import Foundation
import Testing

/// Issue 10, item 6: the standing on a date, read from a timeline, uncertain dates flagged.
@Suite struct CustodyTimelineTests {
    static func incident(_ kind: String, _ date: String, sentence: String? = nil, term: String? = nil, facility: String? = nil,
                         charges: [String] = []) -> IncidentView {
        // Through its JSON form, as `show --json` prints it (the view has no public initialiser).
        var fields: [String: Any] = ["id": "\(kind)-\(date)", "region": "almaty", "person_id": "p", "kind": kind, "date": date,
                                     "charges": charges, "charge_ids": charges.map { _ in "c" }, "sources": [Any]()]
        fields["sentence_kind"] = sentence
        fields["sentence_term"] = term
        fields["facility"] = facility
        return try! JSONDecoder().decode(IncidentView.self, from: JSONSerialization.data(withJSONObject: fields))
    }

    static func day(_ s: String) -> DayNumber { try! FuzzyDate(s).earliest }

    static let timeline = [
        incident("detention", "2020-09-14", facility: "IVS Almaty", charges: ["CC 405.1"]),
        incident("pretrial_custody", "2020-09-16", facility: "SIZO-1 Almaty"),
        incident("verdict", "2021-03-02", sentence: "imprisonment", term: "P2Y", facility: "UK-161/2", charges: ["CC 405.2"]),
        incident("release", "2022-09-14"),
    ]

    @Test func custodyRunsFromDetentionToReleaseWithTheLatestFacilityAndEveryArticle() throws {
        #expect(CustodyTimeline.standing(of: Self.timeline, on: Self.day("2020-09-13")) == nil)
        let pretrial = try #require(CustodyTimeline.standing(of: Self.timeline, on: Self.day("2020-10-01")))
        #expect(pretrial.standing == .deprivedOfLiberty && pretrial.status == "pre-trial custody" && pretrial.since == "2020-09-14")
        #expect(pretrial.facility == "SIZO-1 Almaty" && pretrial.articles == ["CC 405.1"])
        let prison = try #require(CustodyTimeline.standing(of: Self.timeline, on: Self.day("2022-01-01")))
        #expect(prison.status == "imprisoned" && prison.since == "2020-09-14", "the term counts from the detention")
        #expect(prison.termEnds == "2022-09-14" && prison.sentence == "imprisonment P2Y" && prison.facility == "UK-161/2")
        #expect(prison.articles == ["CC 405.1", "CC 405.2"] && prison.flags.isEmpty, "\(prison.flags)")
        #expect(CustodyTimeline.standing(of: Self.timeline, on: Self.day("2022-09-14")) == nil, "released that day")
    }

    @Test func aReleaseThatMayFallEitherSideKeepsThePersonListedAndFlagged() throws {
        let t = [Self.incident("detention", "2021-01-05"), Self.incident("release", "2021-02")]
        let f = try #require(CustodyTimeline.standing(of: t, on: Self.day("2021-02-10")))
        #expect(f.standing == .deprivedOfLiberty)
        #expect(f.flags.contains { $0.contains("release") && $0.contains("may fall after 2021-02-10") }, "\(f.flags)")
        #expect(CustodyTimeline.standing(of: t, on: Self.day("2021-03-01")) == nil)
    }

    @Test func aStartThatMayFallAfterTheDateIsListedAndFlagged() throws {
        let f = try #require(CustodyTimeline.standing(of: [Self.incident("detention", "2021-02")], on: Self.day("2021-02-10")))
        #expect(f.flags.contains { $0.contains("may fall after") }, "\(f.flags)")
        #expect(f.flags.contains { $0.contains("not a single certain day") })
    }

    @Test func aTermOverWithNoReleaseIsToCheckNotDropped() throws {
        let t = [Self.incident("verdict", "2019-12-10", sentence: "imprisonment", term: "P6M")]
        let f = try #require(CustodyTimeline.standing(of: t, on: Self.day("2021-01-01")))
        #expect(f.standing == .toCheck && f.termEnds == "2020-06-10")
        let before = try #require(CustodyTimeline.standing(of: t, on: Self.day("2020-06-09")))
        #expect(before.standing == .deprivedOfLiberty)
    }

    @Test func aRecordedLaterReleaseOutweighsAComputedTerm() throws {
        // The fixture's Qaiyrbek: an 18-month term from September 2020, released in May 2022.
        let t = [Self.incident("detention", "2020-09"), Self.incident("verdict", "2021-06", sentence: "imprisonment", term: "P18M"),
                 Self.incident("sentence_change", "2022-05", sentence: "restricted_freedom"), Self.incident("release", "2022-05-19")]
        let may = try #require(CustodyTimeline.standing(of: t, on: Self.day("2022-05-10")))
        #expect(may.standing == .deprivedOfLiberty)
        #expect(may.flags.contains { $0.contains("but a release is recorded on 2022-05-19") }, "\(may.flags)")
        #expect(may.flags.contains { $0.contains("restricted freedom") && $0.contains("may have ended custody") }, "\(may.flags)")
        let june = try #require(CustodyTimeline.standing(of: t, on: Self.day("2022-06-01")))
        #expect(june.standing == .restrictedFreedom && june.flags.contains("restricted freedom with no term recorded"))
    }

    @Test func aNonCustodialSentenceEndsCustodyAtTheRecordedReleaseOrElseItsOwnDate() throws {
        let withRelease = [Self.incident("detention", "2020-04-17"), Self.incident("verdict", "2020-06-22", sentence: "probation", term: "P1Y"),
                           Self.incident("release", "2020-06-25")]
        #expect(CustodyTimeline.standing(of: withRelease, on: Self.day("2020-06-23"))?.standing == .deprivedOfLiberty)
        #expect(CustodyTimeline.standing(of: withRelease, on: Self.day("2020-06-26")) == nil)
        let without = [Self.incident("detention", "2020-04-17"), Self.incident("verdict", "2020-06-22", sentence: "restricted_freedom", term: "P3Y"),
                       Self.incident("appeal_decision", "2020-09-15", sentence: "restricted_freedom", term: "P3Y")]
        let f = try #require(CustodyTimeline.standing(of: without, on: Self.day("2021-01-01")))
        #expect(f.standing == .restrictedFreedom && f.since == "2020-06-22", "an appeal upholding it keeps the start")
        #expect(f.termEnds == "2023-06-22")
        #expect(f.flags.contains { $0.contains("no release recorded") })
    }

    @Test func deathInCustodyEndsTheListing() {
        let t = [Self.incident("detention", "2020-02-24"), Self.incident("death_in_custody", "2020-02-25")]
        #expect(CustodyTimeline.standing(of: t, on: Self.day("2020-02-24"))?.standing == .deprivedOfLiberty)
        #expect(CustodyTimeline.standing(of: t, on: Self.day("2020-03-01")) == nil)
    }

    @Test func aParoleDenialShowsCustodyWhenNothingElseDoes() throws {
        let f = try #require(CustodyTimeline.standing(of: [Self.incident("parole_denied", "2020-06-05", facility: "LA 155/14")], on: Self.day("2020-07-01")))
        #expect(f.status == "imprisoned" && f.facility == "LA 155/14")
        #expect(f.flags.contains { $0.contains("at least since") })
    }
}
