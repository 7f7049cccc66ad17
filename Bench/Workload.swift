import FieldbookModel
import SyncCore

/// One benchmark workload: a table, its records, one batch of updates, and the round-2 updates.
struct Workload {
    var name: String
    var schema: TableSchema
    var ids: [String]
    var records: [[Value]]
    var updates: [(row: Int, column: Int, value: Value)]
    var round2: [(row: Int, column: Int, value: Value)]
    /// The expected final state hash, when the workload defines one.
    var expectedHash: String?

    /// Exactly the workload of ../shared/bench/WORKLOAD.md.
    static func standard() -> Workload {
        let kinds = ["theft", "assault", "fraud", "vandalism", "burglary", "trespass", "harassment", "other"]
        let words = ["witness", "reported", "vehicle", "near", "entrance", "late", "evening", "damage", "door",
                     "window", "statement", "pending", "review", "officer", "camera", "footage"]
        let cols = ["person", "kind", "occurred_on", "place", "article", "notes"]
        let schema = TableSchema(name: "incident", columns: cols.map { ColumnSchema($0) })
        var rng = SplitMix64(seed: 20240601)
        var ids: [String] = []
        var records: [[Value]] = []
        let base = FuzzyDate.dayNumber(year: 2020, month: 1, day: 1)
        for i in 0..<10_000 {
            let r = (0..<6).map { _ in rng.next() }
            ids.append("inc-" + pad(i, 5))
            let notes = (0..<12).map { k in words[Int((r[5] >> (4 * UInt64(k))) & 15)] }.joined(separator: " ")
            records.append([
                .text("person-" + pad(Int(r[0] % 500), 3)),
                .text(kinds[Int(r[1] % 8)]),
                .text(FuzzyDate.isoString(base + Int(r[2] % 1826))),
                .text("place-" + pad(Int(r[3] % 200), 3)),
                .text("art-\(1 + r[4] % 300)"),
                .text(notes),
            ])
        }
        func update(_ j: Int) -> (Int, Int, Value) {
            let row = Int(rng.next() % 10_000)
            let col = Int(rng.next() % 6)
            return (row, col, .text("\(cols[col])@\(j)"))
        }
        let updates = (0..<20_000).map { update($0) }
        let round2 = (20_000..<20_100).map { update($0) }
        return Workload(name: "WORKLOAD.md (7-column table)", schema: schema, ids: ids, records: records,
                        updates: updates.map { ($0.0, $0.1, $0.2) }, round2: round2.map { ($0.0, $0.1, $0.2) },
                        expectedHash: "c59217409e81df19493459a6076f241ccd34de5c303f051e7766bcb7aa366f96")
    }

    /// The real incident schema with fixture-like values: 10,000 incidents, 20,000 edits.
    static func incidents() -> Workload {
        var rng = SplitMix64(seed: 20261121)
        func pick<V: Vocabulary>(_: V.Type) -> Value { .text(V.allCases.map(\.rawValue)[Int(rng.next() % UInt64(V.allCases.count))]) }
        let schema = FieldbookSchema.incident
        let places = ["Almaty", "Astana (Nur-Sultan)", "Shymkent", "Akmola", "Abai", "Atyrau", "Mangystau", "North Kazakhstan"]
        let persons = (0..<500).map { _ in uuid(&rng) }
        var ids: [String] = []
        var records: [[Value]] = []
        let base = FuzzyDate.dayNumber(year: 2016, month: 1, day: 1)
        for i in 0..<10_000 {
            ids.append(uuid(&rng))
            let day = base + Int(rng.next() % 3000)
            let date = FuzzyDate.isoString(day)
            let hasFine = rng.next() % 5 == 0
            records.append([
                .text("almaty"),
                .text(persons[Int(rng.next() % 500)]),
                pick(IncidentKind.self),
                .text(rng.next() % 3 == 0 ? String(date.prefix(7)) : date),
                .text("on \(date), according to the report"),
                .text(places[Int(rng.next() % 8)]),
                .text("Settlement \(rng.next() % 100)"),
                rng.next() % 2 == 0 ? .text("ES-164/\(rng.next() % 9)") : .null,
                pick(Authority.self),
                pick(SentenceKind.self),
                .text("P\(1 + rng.next() % 8)Y"),
                hasFine ? .text("\(1000 * (1 + rng.next() % 200))") : .null,
                hasFine ? .text("KZT") : .null,
                .text("Incident \(i): detained after a post criticising officials; relatives say he was denied a lawyer."),
                pick(Verification.self),
                .text("bench-" + pad(i, 5)),
            ])
        }
        let editable = [4, 5, 6, 7, 13, 14]
        func update(_ j: Int) -> (Int, Int, Value) {
            let row = Int(rng.next() % 10_000)
            let col = editable[Int(rng.next() % UInt64(editable.count))]
            let v: Value = col == 14 ? pick(Verification.self) : .text("edit \(j)")
            return (row, col, v)
        }
        return Workload(name: "Fieldbook incident schema (17 columns)", schema: schema, ids: ids, records: records,
                        updates: (0..<20_000).map(update), round2: (20_000..<20_100).map(update), expectedHash: nil)
    }

    private static func uuid(_ rng: inout SplitMix64) -> String {
        let a = rng.next(), b = rng.next()
        let hex = String(format: "%016llx%016llx", a, b)
        let c = Array(hex)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-4" + String(c[13..<16]) + "-a" + String(c[17..<20]) + "-" + String(c[20..<32])
    }

    static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
}
