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
    /// Incidents recorded on one certain day, as `kind YYYY-MM-DD`: two records sharing one are
    /// likely one person (both detained on 2022-01-06).
    public var incidents: Set<String>

    public init(id: String, region: String, names: [String], born: String?, sex: String?, incidents: Set<String> = []) {
        self.id = id
        self.region = region
        self.names = names
        self.born = born
        self.sex = sex
        self.incidents = incidents
    }

    /// The key of an incident for `incidents`, or nil when its date is not one certain day.
    public static func incidentKey(kind: String, date: String) -> String? {
        guard let d = try? FuzzyDate(date), d.earliest == d.latest, !d.approximate, !d.uncertain else { return nil }
        return "\(kind.replacingOccurrences(of: "_", with: " ")) \(FuzzyDate.isoString(d.earliest))"
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
/// blocking (persons meet only when they share a key of `blockingKeys`, in buckets of at most
/// `maxBucket`: cost grows about linearly) then scoring each pair: the best match of their names and
/// aliases (name parts in any order, Jaro-Winkler and edit distance per part, initials), raised a
/// little when the birth dates overlap and more when both have the same incident on the same
/// day, lowered when the birth dates do not overlap, when the sexes differ, or when the surname
/// endings are a woman's and a man's (-ova / -ov: one family, two people). The regions are
/// given in the reasons, not weighed (people move; namesakes share regions).
public struct DuplicateFinder: Sendable {
    /// The bar below which a pair is not proposed: the fixtures' tests show no false pair above
    /// it and every true one (`DuplicateFinderTests`).
    public static let defaultMinScore = 0.85
    public var minScore = DuplicateFinder.defaultMinScore
    public var maxBucket = 2_000

    public init(minScore: Double = DuplicateFinder.defaultMinScore) { self.minScore = minScore }

    struct Prepared: @unchecked Sendable {
        var facts: PersonFacts
        var variants: [(name: String, parts: [String])]
        /// The parts as bytes (folded names are ASCII), for the comparisons.
        var bytes: [[[UInt8]]]
        /// The sex each variant's surname ending marks (`NameFold.endingSex`).
        var endings: [String?]
        var born: FuzzyDate?
    }

    public func candidates(_ persons: [PersonFacts]) -> [DuplicateCandidate] {
        let prepared = (try? ParallelMap.map(persons.count) { i -> Prepared in
            let p = persons[i]
            let variants = p.names.map { ($0, NameFold.parts($0)) }
            return Prepared(facts: p, variants: variants, bytes: variants.map { $0.1.map { Array($0.utf8) } },
                            endings: p.names.map(NameFold.endingSex),
                            born: p.born.flatMap { try? FuzzyDate($0, field: "born") })
        }) ?? []
        var buckets: [String: [Int]] = [:]
        for (i, p) in prepared.enumerated() {
            var keys = Set<String>()
            for v in p.variants { keys.formUnion(Self.blockingKeys(v.parts)) }
            for k in keys { buckets[k, default: []].append(i) }
        }
        var seen = Set<Int>()
        var pairs: [(Int32, Int32)] = []
        for (_, members) in buckets where members.count > 1 && members.count <= maxBucket {
            for x in 0..<members.count {
                for y in (x + 1)..<members.count {
                    let (i, j) = (members[x], members[y])
                    if seen.insert(i * persons.count + j).inserted { pairs.append((Int32(i), Int32(j))) }
                }
            }
        }
        // Scored on every core, in chunks; a pair below the bar costs no words.
        let chunk = 4_096
        let results = (try? ParallelMap.map((pairs.count + chunk - 1) / chunk, chunk: 1) { c -> [DuplicateCandidate] in
            var out: [DuplicateCandidate] = []
            for k in (c * chunk)..<min(pairs.count, (c + 1) * chunk) {
                if let d = score(prepared[Int(pairs[k].0)], prepared[Int(pairs[k].1)]) { out.append(d) }
            }
            return out
        }) ?? []
        return results.joined().sorted { $0.score != $1.score ? $0.score > $1.score : ($0.a, $0.b) < ($1.a, $1.b) }
    }

    /// Where a name meets others: for each ordered pair of its folded parts, the first three
    /// letters of one and the first two of the other (so the parts' order does not matter, and
    /// a slip in one part still meets through the other), and again with the other's first two
    /// consonants (a Kazakh і dropped or kept: Тілеужан / Tleuzhan); a one-part name by its first four.
    static func blockingKeys(_ parts: [String]) -> Set<String> {
        if parts.count == 1 { return [String(parts[0].prefix(4))] }
        var keys = Set<String>()
        for (i, p) in parts.enumerated() {
            for (j, q) in parts.enumerated() where i != j {
                keys.insert(String(p.prefix(3)) + "|" + String(q.prefix(2)))
                keys.insert(String(p.prefix(3)) + "|" + String(q.filter { $0 != "i" }.prefix(2)))
            }
        }
        return keys
    }

    /// The pair's score and reasons; nil when it is below the bar (then no words are made).
    func score(_ p: Prepared, _ q: Prepared) -> DuplicateCandidate? {
        var top: (score: Double, u: Int, v: Int, reordered: Bool)? = nil
        for u in p.bytes.indices {
            for v in q.bytes.indices {
                let (s, reordered) = Self.compare(p.bytes[u], q.bytes[v])
                if top == nil || s > top!.score { top = (s, u, v, reordered) }
            }
        }
        guard let found = top, found.score > 0 else { return nil }
        var value = found.score
        var overlap: Bool? = nil
        if let x = p.born, let y = q.born {
            overlap = x.earliest <= y.latest && y.earliest <= x.latest
            value = overlap! ? min(1, value + 0.05) : value * 0.6
        }
        // The same incident (kind and day) recorded for both: the strongest evidence besides the name.
        let shared = p.facts.incidents.intersection(q.facts.incidents).sorted()
        if !shared.isEmpty { value = min(1, value + 0.1) }
        let sexDiffers = p.facts.sex.map { s in q.facts.sex.map { !s.isEmpty && !$0.isEmpty && s != $0 } ?? false } ?? false
        if sexDiffers { value *= 0.5 }
        let (ea, eb) = (p.endings[found.u], q.endings[found.v])
        let endingsDiffer = ea != nil && eb != nil && ea != eb && !sexDiffers
        if endingsDiffer { value *= 0.7 }
        guard value >= minScore else { return nil }
        let (a, b) = (p.variants[found.u], q.variants[found.v])
        let best = (score: found.score, a: a.name, b: b.name, sameParts: !a.parts.isEmpty && a.parts.sorted() == b.parts.sorted(),
                    reordered: found.reordered)
        let score = value
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
        if let x = p.born, let y = q.born, let overlap {
            reasons.append(overlap ? (x.text == y.text ? "born \(x.text) on both" : "born \(x.text) and \(y.text): the dates overlap")
                                   : "different birth years (\(x.text), \(y.text))")
        }
        if let first = shared.first {
            reasons.append("the same incident on both: \(first)" + (shared.count > 1 ? " and \(shared.count - 1) more" : ""))
        }
        if sexDiffers { reasons.append("different sex (\(p.facts.sex ?? ""), \(q.facts.sex ?? ""))") }
        if endingsDiffer { reasons.append("surname endings of a woman and of a man") }
        reasons.append(p.facts.region == q.facts.region ? "both of region \(p.facts.region)" : "of regions \(p.facts.region) and \(q.facts.region)")
        let (first, second) = p.facts.id < q.facts.id ? (p, q) : (q, p)
        return DuplicateCandidate(a: first.facts.id, b: second.facts.id, aName: first.facts.names.first ?? "", bName: second.facts.names.first ?? "",
                                  score: (score * 1000).rounded() / 1000, reasons: reasons)
    }

    /// How alike two folded names are, parts in any order: each part of the shorter name takes
    /// its best unused match (`partSimilarity`; an initial matches a part it begins), then the
    /// average of their mean and their weakest, lowered by 10 % for each part the longer name has more. Also whether the parts matched out of order.
    static func compare(_ x: [[UInt8]], _ y: [[UInt8]]) -> (Double, reordered: Bool) {
        guard !x.isEmpty, !y.isEmpty else { return (0, false) }
        let (short, long) = x.count <= y.count ? (x, y) : (y, x)
        var used = Set<Int>()
        var total = 0.0
        var weakest = 1.0
        var order: [Int] = []
        for s in short {
            var bestJ = -1, bestSim = -1.0
            for (j, l) in long.enumerated() where !used.contains(j) {
                let sim: Double
                if s.count == 1 || l.count == 1 {
                    sim = s.first == l.first ? 0.9 : 0
                } else {
                    sim = Self.partSimilarity(s, l)
                }
                if sim > bestSim { (bestJ, bestSim) = (j, sim) }
            }
            used.insert(bestJ)
            order.append(bestJ)
            total += bestSim
            weakest = min(weakest, bestSim)
        }
        let reordered = order != order.sorted()
        // Half the mean, half the weakest part: one close part does not carry another far off.
        let mean = total / Double(short.count)
        return ((mean + weakest) / 2 * pow(0.9, Double(long.count - short.count)), reordered)
    }

    /// How alike two folded parts are: the smaller of Jaro-Winkler and the edit-distance ratio
    /// (1 − Levenshtein distance / longer length), so that a shared beginning alone does not
    /// make two surnames alike, while a slipped letter costs little.
    static func partSimilarity(_ x: [UInt8], _ y: [UInt8]) -> Double {
        if x == y { return 1 }
        var row = Array(0...y.count)
        for i in 1...x.count {
            var previous = row[0]
            row[0] = i
            for j in 1...y.count {
                let saved = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (x[i - 1] == y[j - 1] ? 0 : 1))
                previous = saved
            }
        }
        let ratio = 1 - Double(row[y.count]) / Double(max(x.count, y.count))
        return min(ratio, JaroWinkler.similarity(x, y))
    }

    static func words(_ s: String) -> [String] { s.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init) }

    static func isCyrillic(_ s: String) -> Bool { s.unicodeScalars.contains { (0x0400...0x04FF).contains($0.value) } }
}
