/// Which person each person is, after merges: a pure function of the live persons and their
/// `merged_into` links, so every replica that holds the same records finds the same answer,
/// whatever order the merges reached it in.
///
/// The rule (docs/PROTOCOL.md, "Merged persons"): follow `merged_into` from a person while it
/// leads to a live person; the person where it stops is the canonical one. A link to a person
/// this replica does not hold (deleted, or of a region it does not sync) stops the walk there.
/// Links that close a circle — two coordinators merged A into B and B into A before they
/// synced — make the circle one person, whose canonical member is the lowest id in the circle.
public struct MergeGraph: Sendable {
    private var canonicalOf: [String: String] = [:]
    private var membersOf: [String: [String]] = [:]

    /// - Parameter persons: every live person's id and its `merged_into` (nil when none).
    public init(persons: [(id: String, mergedInto: String?)]) {
        var link: [String: String?] = [:]
        for p in persons { link[p.id] = p.mergedInto }
        for p in persons where canonicalOf[p.id] == nil {
            var path: [String] = []
            var position: [String: Int] = [:]
            var current = p.id
            let result: String
            while true {
                if let known = canonicalOf[current] { result = known; break }
                if let start = position[current] { result = path[start...].min()!; break }
                position[current] = path.count
                path.append(current)
                guard let next = link[current] ?? nil, link[next] != nil else { result = current; break }
                current = next
            }
            for q in path { canonicalOf[q] = result }
        }
        for (id, c) in canonicalOf { membersOf[c, default: []].append(id) }
        for c in membersOf.keys { membersOf[c]!.sort() }
    }

    /// The canonical person of `id` (`id` itself when it is not merged, or not a live person).
    public func canonical(of id: String) -> String { canonicalOf[id] ?? id }

    /// Whether `id` is a canonical person (shown in lists) rather than merged into another.
    public func isCanonical(_ id: String) -> Bool { canonical(of: id) == id }

    /// The persons that are one with `id`, its canonical person included, sorted by id.
    public func members(of id: String) -> [String] { membersOf[canonical(of: id)] ?? [id] }

    /// Every canonical person.
    public var canonicalIDs: [String] { membersOf.keys.sorted() }
}
