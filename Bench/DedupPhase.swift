import FieldbookKit
import Foundation
import SyncCore

/// Issue 10, item 3: 100,000 synthetic persons (seeded), 10 % of them a second record of an
/// earlier one in a realistic spelling variant (another romanisation, Kazakh Cyrillic, the
/// parts in another order, a slip of a letter, the birth year as an interval or missing), built
/// from the fixture's name patterns; the finder's time, and its precision and recall against
/// the synthetic truth at the default bar.
struct DedupPhase {
    struct Figures {
        var persons = 0, truePairs = 0, found = 0, correct = 0
        var seconds = 0.0
        var precision: Double { found == 0 ? 1 : Double(correct) / Double(found) }
        var recall: Double { truePairs == 0 ? 1 : Double(correct) / Double(truePairs) }
    }

    static let male = ["Asqar", "Nurlan", "Serik", "Marat", "Yerlan", "Dulat", "Kairat", "Temirlan", "Zhanbolat", "Asset", "Max", "Aron",
                       "Alnur", "Zhambyl", "Mukhtar", "Iskander", "Askhat", "Igor", "Sergei", "Kenzhebek", "Yerzhan", "Nurzhan",
                       "Serikzhan", "Abai", "Alibek", "Bakhytzhan", "Zhasulan", "Yerbol", "Timur", "Ruslan", "Bolat", "Daniyar",
                       "Galym", "Kuanysh", "Yesset", "Olzhas", "Aidos", "Azamat", "Berik", "Dauren", "Yerkin", "Zhandos", "Arman",
                       "Aslan", "Baurzhan", "Ermek", "Galymzhan", "Kanat", "Mirzhan", "Nursultan", "Rustem", "Sanzhar", "Talgat",
                       "Yerzhigit", "Zhomart", "Amir", "Bekzat", "Didar", "Ilyas", "Murat"]
    static let female = ["Aigul", "Zhanar", "Elena", "Asya", "Dilbar", "Sanavar", "Gulnara", "Dariga", "Aizhan", "Saule", "Madina",
                         "Aliya", "Akmaral", "Ainur", "Aruzhan", "Botagoz", "Dana", "Gaukhar", "Indira", "Kamila", "Laura",
                         "Meruyert", "Nazgul", "Raushan", "Symbat", "Togzhan", "Ulzhan", "Zarina", "Zhibek", "Assel", "Bayan",
                         "Dinara", "Gulmira", "Karlygash", "Lazzat", "Marzhan", "Nurgul", "Perizat", "Roza", "Saltanat"]
    /// Surnames are two or three of these and an ending (as `Zhek·se·bay·ev`).
    static let syllables = ["qai", "bok", "mam", "il", "ab", "ib", "zhek", "tul", "at", "kob", "mukh", "dzhak", "yer", "yel", "sych", "kyl",
                            "nur", "ser", "tas", "bol", "dos", "kal", "sar", "zhol", "tur", "ken", "sul", "tan", "bai", "as", "ai", "kon",
                            "bek", "zhan", "ort", "myr", "sag", "tle", "bar", "han", "oraz", "esen", "jum", "kaz", "ali", "ush", "tok", "shal",
                            "aman", "bat", "dau", "zhum", "ras", "kun", "tem", "ir", "syz", "ong", "ak", "kara", "sat", "bul", "kyr",
                            "ual", "zhay", "ysk", "orm", "seit", "tor", "ermek", "kush", "mag", "naz", "tok", "zhet", "ome", "bek"]
    static let maleEndings = ["ov", "ev", "uly", "bek", "bayev", "in", "yev", "ayev", "bekov", "imov", "ulov"]
    static let femaleEndings = ["ova", "eva", "kyzy", "bek", "bayeva", "ina", "yeva", "ayeva", "bekova", "imova"]

    func run(count: Int = 100_000, seed: UInt64 = 20_261_201) -> Figures {
        var rng = SplitMix64(seed: seed)
        func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }
        var persons: [PersonFacts] = []
        var origin: [Int] = []  // the person each record is of (an original: itself)
        persons.reserveCapacity(count)
        let originals = count * 9 / 10
        // Distinct people: no two originals fold to the same name with the same birth year and
        // sex (such namesakes no evidence here could tell apart; real ones are as rare as the
        // name space is wide). Each is drawn again until it differs.
        var taken = Set<String>()
        for i in 0..<originals {
            var man = false, name = "", year = 0
            repeat {
                man = rng.next() % 2 == 0
                let root = pick(Self.syllables) + pick(Self.syllables) + (rng.next() % 2 == 0 ? pick(Self.syllables) : "")
                let surname = (root + pick(man ? Self.maleEndings : Self.femaleEndings)).capitalized
                year = 1940 + Int(rng.next() % 65)
                name = "\(pick(man ? Self.male : Self.female)) \(surname)"
            } while !taken.insert(NameFold.parts(name).sorted().joined(separator: " ") + "|\(year)|\(man)").inserted
            persons.append(PersonFacts(id: String(i), region: "almaty", names: [name], born: String(year), sex: man ? "m" : "f"))
            origin.append(i)
        }
        for k in originals..<count {
            let o = Int(rng.next() % UInt64(originals))
            let p = persons[o]
            var name = Self.variant(p.names[0], &rng)
            if rng.next() % 4 == 0 { name = name.split(separator: " ").reversed().joined(separator: " ") }
            let year = Int(p.born!)!
            let born: String? = switch rng.next() % 5 { case 0: nil; case 1: "\(year - 1)/\(year)"; default: String(year) }
            persons.append(PersonFacts(id: String(k), region: "atyrau", names: [name], born: born, sex: rng.next() % 5 == 0 ? nil : p.sex))
            origin.append(o)
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let found = DuplicateFinder().candidates(persons)
        var f = Figures()
        f.seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        f.persons = count
        // True pairs: every two records of one person (an original and its variants, and the variants among them).
        var sizes: [Int: Int] = [:]
        for o in origin { sizes[o, default: 0] += 1 }
        f.truePairs = sizes.values.reduce(0) { $0 + $1 * ($1 - 1) / 2 }
        f.found = found.count
        let wrong = found.filter { c in origin[Int(c.a)!] != origin[Int(c.b)!] }
        f.correct = found.count - wrong.count
        if ProcessInfo.processInfo.environment["FB_DEDUP_DETAIL"] != nil {
            for c in wrong.prefix(15) {
                FileHandle.standardError.write(Data("false: \(c.aName) (\(persons[Int(c.a)!].born ?? "-")) ~ \(c.bName) (\(persons[Int(c.b)!].born ?? "-")) \(c.score) \(c.reasons)\n".utf8))
            }
        }
        return f
    }

    /// Another spelling of `name`: a romanisation change, Kazakh Cyrillic, or a slipped letter.
    static func variant(_ name: String, _ rng: inout SplitMix64) -> String {
        switch rng.next() % 5 {
        case 0: return cyrillic(name)
        case 1:
            // A letter dropped from the longest part (not its first).
            var parts = name.split(separator: " ").map(String.init)
            let i = parts.indices.max { parts[$0].count < parts[$1].count }!
            var chars = Array(parts[i])
            if chars.count > 4 { chars.remove(at: 2 + Int(rng.next() % UInt64(chars.count - 2))) }
            parts[i] = String(chars)
            return parts.joined(separator: " ")
        default:
            let swaps: [(String, String)] = [("q", "k"), ("Q", "K"), ("zh", "j"), ("Zh", "J"), ("y", "i"), ("ay", "ai"), ("yev", "ev"),
                                             ("Ye", "E"), ("kh", "h"), ("ss", "s"), ("ov", "ov"), ("i", "y")]
            var out = name
            for _ in 0..<2 {
                let (a, b) = swaps[Int(rng.next() % UInt64(swaps.count))]
                if out.contains(a) { out = out.replacingOccurrences(of: a, with: b) }
            }
            return out
        }
    }

    /// A Kazakh Cyrillic rendering of a Latin name (the common letter correspondences).
    static func cyrillic(_ name: String) -> String {
        let pairs: [(String, String)] = [("zh", "ж"), ("kh", "х"), ("sh", "ш"), ("ch", "ч"), ("ya", "я"), ("yu", "ю"), ("ye", "е"),
                                         ("a", "а"), ("b", "б"), ("d", "д"), ("e", "е"), ("f", "ф"), ("g", "г"), ("h", "һ"), ("i", "и"),
                                         ("j", "ж"), ("k", "к"), ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("q", "қ"),
                                         ("r", "р"), ("s", "с"), ("t", "т"), ("u", "у"), ("v", "в"), ("x", "кс"), ("y", "й"), ("z", "з")]
        return name.split(separator: " ").map { part -> String in
            var s = part.lowercased()
            var out = ""
            while !s.isEmpty {
                if let (l, c) = pairs.first(where: { s.hasPrefix($0.0) }) {
                    out += c
                    s.removeFirst(l.count)
                } else {
                    out.append(s.removeFirst())
                }
            }
            return out.prefix(1).uppercased() + out.dropFirst()
        }.joined(separator: " ")
    }
}
