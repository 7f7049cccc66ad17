import FieldbookModel
import Foundation

/// What the matcher knows of a person: every name it goes by and the facts that tell namesakes apart.
public struct PersonFacts: Sendable {
    public var id: String
    public var region: String
    /// The name first, then the aliases.
    public var names: [String]
    public var born: String?
    public var sex: String?

    public init(id: String, region: String, names: [String], born: String?, sex: String?) {
        self.id = id
        self.region = region
        self.names = names
        self.born = born
        self.sex = sex
    }
}

/// Two persons who may be one, with a score in [0, 1] and the reasons in words.
public struct DuplicateCandidate: Codable, Sendable, Equatable {
    public var a: String
    public var b: String
    public var aName: String
    public var bName: String
    public var score: Double
    public var reasons: [String]

    enum CodingKeys: String, CodingKey {
        case a, b, score, reasons
        case aName = "a_name"
        case bName = "b_name"
    }
}

/// Finds persons recorded more than once, across spellings and scripts (`NameFold`), by
/// blocking (persons meet only when a folded name part shares its first three letters, in
/// buckets of at most `maxBucket`) then scoring each pair: the best match of their names and
/// aliases (name parts in any order, Jaro-Winkler per part, initials), raised a little when the
/// birth dates overlap, lowered when they do not or when the sexes differ.
public struct DuplicateFinder: Sendable {
    /// The bar below which a pair is not proposed: the fixtures' tests show no false pair above
    /// it and every true one (`DuplicateFinderTests`).
    public static let defaultMinScore = 0.85
    public var minScore = DuplicateFinder.defaultMinScore
    public var maxBucket = 1_000

    public init(minScore: Double = DuplicateFinder.defaultMinScore) { self.minScore = minScore }

    struct Prepared {
        var facts: PersonFacts
        var variants: [(name: String, parts: [String])]
        var born: FuzzyDate?
    }

    public func candidates(_ persons: [PersonFacts]) -> [DuplicateCandidate] {
        let prepared = persons.map { p in
            Prepared(facts: p, variants: p.names.map { ($0, NameFold.parts($0)) },
                     born: p.born.flatMap { try? FuzzyDate($0, field: "born") })
        }
        var buckets: [String: [Int]] = [:]
        for (i, p) in prepared.enumerated() {
            var keys = Set<String>()
            for v in p.variants { for part in v.parts where part.count >= 2 { keys.insert(String(part.prefix(3))) } }
            for k in keys { buckets[k, default: []].append(i) }
        }
        var seen = Set<Int>()
        var out: [DuplicateCandidate] = []
        for (_, members) in buckets where members.count > 1 && members.count <= maxBucket {
            for x in 0..<members.count {
                for y in (x + 1)..<members.count {
                    let (i, j) = (members[x], members[y])
                    guard seen.insert(i * persons.count + j).inserted else { continue }
                    if let c = score(prepared[i], prepared[j]), c.score >= minScore { out.append(c) }
                }
            }
        }
        return out.sorted { $0.score != $1.score ? $0.score > $1.score : ($0.a, $0.b) < ($1.a, $1.b) }
    }

    /// The pair's score and reasons (nil when no names compare at all).
    func score(_ p: Prepared, _ q: Prepared) -> DuplicateCandidate? {
        var best: (score: Double, a: String, b: String, sameParts: Bool, reordered: Bool)? = nil
        for u in p.variants {
            for v in q.variants {
                let (s, reordered) = Self.compare(u.parts, v.parts)
                if best == nil || s > best!.score {
                    best = (s, u.name, v.name, u.parts.sorted() == v.parts.sorted() && !u.parts.isEmpty, reordered)
                }
            }
        }
        guard let best, best.score > 0 else { return nil }
        var score = best.score
        var reasons: [String] = []
        if best.a.lowercased() == best.b.lowercased() {
            reasons.append("same name \"\(best.a)\"")
        } else if best.sameParts && Self.words(best.a).sorted() == Self.words(best.b).sorted() {
            reasons.append("\"\(best.a)\" ≈ \"\(best.b)\": name parts in another order")
        } else if best.sameParts {
            if Self.isCyrillic(best.a) != Self.isCyrillic(best.b) {
                reasons.append("\"\(best.a)\" ≈ \"\(best.b)\": same after Kazakh transliteration (қ→q/k, й→i/y, ж→zh/j)")
            } else {
                reasons.append("\"\(best.a)\" ≈ \"\(best.b)\": same after the spelling folds (q/k, zh/j, kh/h, y/i/j, -ov/-ev, doubled letters)")
            }
            if best.reordered { reasons.append("name parts in another order") }
        } else {
            reasons.append(String(format: "\"%@\" ≈ \"%@\": close spellings (%.2f)", best.a, best.b, best.score))
            if best.reordered { reasons.append("name parts in another order") }
        }
        if best.a != p.facts.names.first || best.b != q.facts.names.first { reasons.append("matched through an alias") }
        if let x = p.born, let y = q.born {
            if x.earliest <= y.latest && y.earliest <= x.latest {
                score = min(1, score + 0.05)
                reasons.append(x.text == y.text ? "born \(x.text) on both" : "born \(x.text) and \(y.text): the dates overlap")
            } else {
                score *= 0.6
                reasons.append("different birth years (\(x.text), \(y.text))")
            }
        }
        if let s = p.facts.sex, let t = q.facts.sex, !s.isEmpty, !t.isEmpty, s != t {
            score *= 0.5
            reasons.append("different sex (\(s), \(t))")
        }
        let (a, b) = p.facts.id < q.facts.id ? (p, q) : (q, p)
        return DuplicateCandidate(a: a.facts.id, b: b.facts.id, aName: a.facts.names.first ?? "", bName: b.facts.names.first ?? "",
                                  score: (score * 1000).rounded() / 1000, reasons: reasons)
    }

    /// How alike two folded names are, parts in any order: each part of the shorter name takes
    /// its best unused match (an initial matches a part it begins), the mean of those, lowered
    /// by 10 % for each part the longer name has more. Also whether the parts matched out of order.
    static func compare(_ x: [String], _ y: [String]) -> (Double, reordered: Bool) {
        guard !x.isEmpty, !y.isEmpty else { return (0, false) }
        let (short, long) = x.count <= y.count ? (x, y) : (y, x)
        var used = Set<Int>()
        var total = 0.0
        var order: [Int] = []
        for s in short {
            var bestJ = -1, bestSim = -1.0
            for (j, l) in long.enumerated() where !used.contains(j) {
                let sim: Double
                if s.count == 1 || l.count == 1 {
                    sim = s.first == l.first ? 0.9 : 0
                } else {
                    sim = JaroWinkler.similarity(s, l)
                }
                if sim > bestSim { (bestJ, bestSim) = (j, sim) }
            }
            used.insert(bestJ)
            order.append(bestJ)
            total += bestSim
        }
        let reordered = order != order.sorted()
        return (total / Double(short.count) * pow(0.9, Double(long.count - short.count)), reordered)
    }

    static func words(_ s: String) -> [String] { s.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init) }

    static func isCyrillic(_ s: String) -> Bool { s.unicodeScalars.contains { (0x0400...0x04FF).contains($0.value) } }
}
