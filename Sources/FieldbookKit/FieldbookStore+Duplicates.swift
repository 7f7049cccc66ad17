import FieldbookModel
import Foundation
import GRDB

extension FieldbookStore {
    /// The persons of this replica (of `region` when given) as the duplicate finder takes them:
    /// one per canonical person (`MergeGraph`), with the names and aliases of every person
    /// merged into it, and the first birth date and sex recorded among them.
    public func personFacts(region: String? = nil) throws -> [PersonFacts] {
        try read { db in try personFacts(db, region: region, graph: try mergeGraph(db)) }
    }

    func personFacts(_ db: Database, region: String?, graph: MergeGraph) throws -> [PersonFacts] {
        var aliases: [String: [String]] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT person_id, name FROM alias ORDER BY name") {
            aliases[r[0], default: []].append(r[1])
        }
        var incidents: [String: Set<String>] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT person_id, kind, date FROM incident") {
            if let key = PersonFacts.incidentKey(kind: r[1] ?? "", date: r[2] ?? "") { incidents[r[0], default: []].insert(key) }
        }
        var facts: [String: PersonFacts] = [:]
        for r in try Row.fetchAll(db, sql: "SELECT id, region, name, born, sex FROM person ORDER BY id") {
            let id: String = r["id"]
            facts[id] = PersonFacts(id: id, region: r["region"], names: [r["name"]] + (aliases[id] ?? []), born: r["born"], sex: r["sex"],
                                    incidents: incidents[id] ?? [])
        }
        var out: [PersonFacts] = []
        for id in facts.keys.sorted() where graph.isCanonical(id) {
            var p = facts[id]!
            if let region, p.region != region { continue }
            for m in graph.members(of: id) where m != id {
                guard let other = facts[m] else { continue }
                p.names += other.names.filter { !p.names.contains($0) }
                p.born = p.born ?? other.born
                p.sex = p.sex ?? other.sex
                p.incidents.formUnion(other.incidents)
            }
            out.append(p)
        }
        return out
    }

    /// Candidate pairs of persons recorded more than once, best first (`DuplicateFinder`).
    public func duplicates(minScore: Double = DuplicateFinder.defaultMinScore, region: String? = nil) throws -> [DuplicateCandidate] {
        guard (0...1).contains(minScore) else {
            throw FieldbookError(.invalidInput, "--min-score: \(minScore) is not a score (0 to 1)")
        }
        try Self.checkRegionOption(region)
        let (facts, graph, judged) = try read { db in
            let graph = try mergeGraph(db)
            return (try personFacts(db, region: region, graph: graph), graph, try distinctPairs(db))
        }
        // Pairs recorded as different people (`persons distinct`) are not proposed again.
        return DuplicateFinder(minScore: minScore).candidates(facts).filter {
            MergeRules.judgedDistinct(graph.members(of: $0.a), graph.members(of: $0.b), judged) == nil
        }
    }
}
