import FieldbookModel
import Testing

@Suite struct FuzzyDateTests {
    @Test func dayMonthAndYearPrecisionGiveTheirRanges() throws {
        let d = try FuzzyDate("2020-06-22")
        #expect(d.earliest == d.latest)
        #expect(FuzzyDate.isoString(d.earliest) == "2020-06-22")
        let m = try FuzzyDate("2020-02")
        #expect(FuzzyDate.isoString(m.earliest) == "2020-02-01")
        #expect(FuzzyDate.isoString(m.latest) == "2020-02-29")
        let y = try FuzzyDate("1976")
        #expect(FuzzyDate.isoString(y.latest) == "1976-12-31")
    }

    @Test func qualifiersAreKeptAndParsed() throws {
        let a = try FuzzyDate("2020-06~")
        #expect(a.approximate && !a.uncertain && a.text == "2020-06~")
        let u = try FuzzyDate("2017?")
        #expect(u.uncertain && !u.approximate)
        #expect(FuzzyDate.isoString(u.earliest) == "2017-01-01")
    }

    @Test func intervalsOfMixedPrecisionSpanBothEnds() throws {
        let i = try FuzzyDate("2018-07/2020-06")
        #expect(FuzzyDate.isoString(i.earliest) == "2018-07-01")
        #expect(FuzzyDate.isoString(i.latest) == "2020-06-30")
        let born = try FuzzyDate("1976/1977")
        #expect(FuzzyDate.isoString(born.latest) == "1977-12-31")
        let open = try FuzzyDate("2020-07-15/..")
        #expect(open.latest == FuzzyDate.maxDay)
    }

    @Test(arguments: ["2020-02-30", "2021-02-29", "2020-13", "2020-00", "2020-06-31", "2020-07-15/2020-06", "20-06-01",
                      "2020-6-1", "", "june 2020", "2020/2021/2022", "../..", "0000", "2020-06-22T10:00"])
    func impossibleOrMalformedDatesAreRejected(_ text: String) {
        #expect(throws: ModelError.self) { try FuzzyDate(text) }
    }

    @Test func errorNamesTheFieldAndSaysWhy() {
        do {
            _ = try FuzzyDate("2020-02-30", field: "incident.date")
            Issue.record("accepted an impossible date")
        } catch {
            #expect(error.field == "incident.date")
            #expect(error.value == "2020-02-30")
            #expect(error.reason.contains("29 days"))
        }
    }

    @Test func leapYearsFollowTheGregorianRules() throws {
        _ = try FuzzyDate("2000-02-29")
        #expect(throws: ModelError.self) { try FuzzyDate("1900-02-29") }
    }
}
