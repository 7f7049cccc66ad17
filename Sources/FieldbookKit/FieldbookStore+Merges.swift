import FieldbookModel
import GRDB
import ReplicaStore

extension FieldbookStore {
    /// The merge graph of the live persons of this replica.
    func mergeGraph(_ db: Database) throws -> MergeGraph {
        MergeGraph(persons: try Row.fetchAll(db, sql: "SELECT id, merged_into FROM person").map { (id: $0[0], mergedInto: $0[1]) })
    }

    /// Every pair recorded as different people.
    func distinctPairs(_ db: Database) throws -> MergeRules.Judgements {
        Set(try Row.fetchAll(db, sql: "SELECT person_id, other_id FROM distinct_pair").map { MergeRules.DistinctPair($0[0], $0[1]) })
    }

    public func mergeGraph() throws -> MergeGraph { try read { db in try mergeGraph(db) } }

    /// Merges `other` into `keep`: one field change (`other.merged_into`), which syncs like any
    /// edit and is undone by `unmerge`. Nothing else is rewritten.
    public func merge(keep: String, other: String) throws {
        let (keep, other) = (try personID(keep, "KEEP"), try personID(other, "OTHER"))
        try write { w in
            let link = try w.values("person", id: other)?.text("merged_into")
            let target = try MergeRules.merge(keep: keep, other: other, otherLink: link, graph: try mergeGraph(w.db),
                                              distinct: try distinctPairs(w.db))
            try w.update("person", id: other, values: ["merged_into": .text(target)])
        }
    }

    /// Undoes the merge of `other`: it is a person of its own again (with whoever was merged into it).
    public func unmerge(other: String) throws {
        let other = try personID(other, "OTHER")
        try write { w in
            try MergeRules.unmerge(other: other, otherLink: try w.values("person", id: other)?.text("merged_into"))
            try w.update("person", id: other, values: ["merged_into": .null])
        }
    }

    /// Records that `a` and `b` are different people, so `persons duplicates` no longer proposes
    /// them (nor any pair of the persons merged with them). Returns false when it was recorded already.
    @discardableResult
    public func distinct(_ a: String, _ b: String) throws -> Bool {
        let (a, b) = (try personID(a, "A"), try personID(b, "B"))
        return try write { w in
            let pair = try MergeRules.distinct(a, b, graph: try mergeGraph(w.db))
            let id = Self.distinctPairID(pair)
            if try w.values("distinct_pair", id: id) != nil { return false }
            guard let region = try w.values("person", id: pair.low)?.text("region") else {
                throw FieldbookError(.notFound, "person: no person with id \(pair.low)")
            }
            try w.insert("distinct_pair", id: id, values: ["region": .text(region), "person_id": .text(pair.low), "other_id": .text(pair.high)])
            return true
        }
    }

    /// Withdraws the judgement that `a` and `b` are different people.
    public func undoDistinct(_ a: String, _ b: String) throws {
        let pair = MergeRules.DistinctPair(try personID(a, "A"), try personID(b, "B"))
        try write { w in
            let id = Self.distinctPairID(pair)
            guard try w.values("distinct_pair", id: id) != nil else {
                throw FieldbookError(.notFound, "persons distinct --undo: \(pair.low) and \(pair.high) are not recorded as different people")
            }
            try w.delete("distinct_pair", id: id)
        }
    }

    /// One row per pair whoever records it: the id is derived from both persons' ids.
    static func distinctPairID(_ pair: MergeRules.DistinctPair) -> String {
        NameBasedID.make("distinct|\(pair.low)|\(pair.high)")
    }

    /// A live person's id, normalised, or an error naming the argument.
    func personID(_ id: String, _ argument: String) throws -> String {
        let norm = id.lowercased()
        guard try read({ db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM person WHERE id = ?)", arguments: [norm]) }) == true else {
            throw FieldbookError(.notFound, "\(argument): no person with id \(id)")
        }
        return norm
    }
}
