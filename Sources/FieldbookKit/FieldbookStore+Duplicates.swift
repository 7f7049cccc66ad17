import FieldbookModel
import Foundation
import GRDB

extension FieldbookStore {
    /// The live persons of this replica (of `region` when given), with their aliases, as the
    /// duplicate finder takes them.
    public func personFacts(region: String? = nil) throws -> [PersonFacts] {
        try read { db in
            var aliases: [String: [String]] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT person_id, name FROM alias ORDER BY name") {
                aliases[r[0], default: []].append(r[1])
            }
            let sql = "SELECT id, region, name, born, sex FROM person" + (region == nil ? "" : " WHERE region = ?") + " ORDER BY id"
            return try Row.fetchAll(db, sql: sql, arguments: region.map { [$0] } ?? []).map { r in
                let id: String = r["id"]
                return PersonFacts(id: id, region: r["region"], names: [r["name"]] + (aliases[id] ?? []), born: r["born"], sex: r["sex"])
            }
        }
    }

    /// Candidate pairs of persons recorded more than once, best first (`DuplicateFinder`).
    public func duplicates(minScore: Double = DuplicateFinder.defaultMinScore, region: String? = nil) throws -> [DuplicateCandidate] {
        guard (0...1).contains(minScore) else {
            throw FieldbookError(.invalidInput, "--min-score: \(minScore) is not a score (0 to 1)")
        }
        if let region, !Checks.isRegion(region) { throw FieldbookError(.invalidInput, "--region: \"\(region)\" is not a region name") }
        return DuplicateFinder(minScore: minScore).candidates(try personFacts(region: region))
    }
}
