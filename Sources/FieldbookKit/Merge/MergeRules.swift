/// The decisions of `persons merge`, `unmerge` and `distinct`, taken on values: the store reads
/// the persons' state, asks here, and writes the one field change (or row) returned.
public enum MergeRules {
    /// The pairs judged distinct, as (lower id, higher id).
    public typealias Judgements = Set<DistinctPair>

    public struct DistinctPair: Hashable, Sendable {
        public let low: String
        public let high: String
        public init(_ a: String, _ b: String) { (low, high) = a < b ? (a, b) : (b, a) }
    }

    /// Merging `other` into `keep`: the value `other.merged_into` takes (`keep`).
    /// - Parameter otherLink: `other`'s `merged_into` now.
    public static func merge(keep: String, other: String, otherLink: String?, graph: MergeGraph,
                             distinct: Judgements) throws(FieldbookError) -> String {
        if keep == other { throw FieldbookError(.invalidInput, "persons merge: KEEP and OTHER are the same person (\(keep))") }
        if let otherLink {
            throw FieldbookError(.invalidInput,
                "persons merge: \(other) is merged into \(otherLink) already; `fieldbook persons unmerge \(other)` first, or merge \(graph.canonical(of: other)) instead")
        }
        let (k, o) = (graph.canonical(of: keep), graph.canonical(of: other))
        if k == o { throw FieldbookError(.invalidInput, "persons merge: \(keep) and \(other) are one person already (as \(k))") }
        if let judged = judgedDistinct(graph.members(of: keep), graph.members(of: other), distinct) {
            throw FieldbookError(.invalidInput,
                "persons merge: \(judged.low) and \(judged.high) were recorded as different people; `fieldbook persons distinct --undo \(judged.low) \(judged.high)` first if that was wrong")
        }
        return keep
    }

    /// Undoing a merge: `other` must be merged into someone.
    public static func unmerge(other: String, otherLink: String?) throws(FieldbookError) {
        if otherLink == nil {
            throw FieldbookError(.invalidInput, "persons unmerge: \(other) is not merged into anyone (unmerge the person that was merged: OTHER of `persons merge KEEP OTHER`)")
        }
    }

    /// Recording that `a` and `b` are different people: the pair, or an error when they are one person now.
    public static func distinct(_ a: String, _ b: String, graph: MergeGraph) throws(FieldbookError) -> DistinctPair {
        if a == b { throw FieldbookError(.invalidInput, "persons distinct: A and B are the same record (\(a))") }
        if graph.canonical(of: a) == graph.canonical(of: b) {
            throw FieldbookError(.invalidInput,
                "persons distinct: \(a) and \(b) are merged into one person (\(graph.canonical(of: a))); unmerge them first")
        }
        return DistinctPair(a, b)
    }

    /// A judgement between a member of one group and a member of the other, if any.
    public static func judgedDistinct(_ a: [String], _ b: [String], _ distinct: Judgements) -> DistinctPair? {
        guard !distinct.isEmpty else { return nil }
        for x in a { for y in b where distinct.contains(DistinctPair(x, y)) { return DistinctPair(x, y) } }
        return nil
    }
}
