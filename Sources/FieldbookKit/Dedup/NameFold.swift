import Foundation

/// A person's name reduced to what survives the ways it is spelt: transliterated from Kazakh or
/// Russian Cyrillic to Latin (ICU `Kazakh-Latin/BGN`, then `Latin-ASCII`, lower case), then
/// folded so that the romanisations in use meet (the 2021 Kazakh Latin alphabet, BGN/PCGN,
/// passport practice, Russian-style):
///
/// - `dzh`, `zh` → `j`; `kh` → `h`; `gh` → `g`; `q` → `k`; `ts` → `c`; `yo` → `e`; `x` → `ks`; a leading `ye` → `e`;
/// - `y` and `j` → `i`; a doubled letter → one; an `i` between a vowel and a vowel (or the end) is dropped
///   (`Bokayev`/`Bokaev`, `Mamay`/`Mamai`/`Mamaj`);
/// - surname endings `-ova`, `-eva`, `-ov`, `-ev`, `-uly`, `-kyzy` are cut (when a stem of 3 letters
///   stays); patronymics (`-ovich`, `-evich`, `-ovna`, `-evna`) are dropped.
///
/// Pure; ICU's outputs are pinned in `NameFoldTests` (toolchains ship different ICU data).
public enum NameFold {
    /// The folded parts of `name`, in the order written.
    public static func parts(_ name: String) -> [String] {
        transliterate(name).split(whereSeparator: { !$0.isLetter }).compactMap { fold(String($0)) }
    }

    /// The sex a name's surname ending marks, if any: `f` for -ova, -eva, -ina, -kyzy; `m` for
    /// -ov, -ev, -in, -uly (a man and a woman of one family share the stem, not the person).
    public static func endingSex(_ name: String) -> String? {
        for w in transliterate(name).split(whereSeparator: { !$0.isLetter }).map(String.init) where w.count > 4 {
            if ["ova", "eva", "ina", "kyzy", "kizi", "qyzy"].contains(where: { w.hasSuffix($0) }) { return "f" }
            if ["ov", "ev", "in", "uly", "uli", "ovich", "evich"].contains(where: { w.hasSuffix($0) }) { return "m" }
        }
        return nil
    }

    /// Lower-case ASCII: Cyrillic through Kazakh-Latin/BGN, everything through Latin-ASCII.
    public static func transliterate(_ name: String) -> String {
        let chain = StringTransform("Kazakh-Latin/BGN; Latin-ASCII; Any-Lower")
        return (name.applyingTransform(chain, reverse: false) ?? name.lowercased())
    }

    /// One folded part, or nil for a patronymic (or nothing left).
    public static func fold(_ part: String) -> String? {
        var s = part.lowercased().filter { $0.isASCII && $0.isLetter }
        if s.count > 6, ["ovich", "evich", "ovna", "evna", "ichna"].contains(where: { s.hasSuffix($0) }) { return nil }
        for (a, b) in [("dzh", "j"), ("zh", "j"), ("kh", "h"), ("gh", "g"), ("ts", "c"), ("yo", "e"), ("x", "ks")] {
            s = s.replacingOccurrences(of: a, with: b)
        }
        if s.hasPrefix("ye") { s.removeFirst() }
        s = s.replacingOccurrences(of: "q", with: "k")
        s = String(s.map { $0 == "y" || $0 == "j" ? "i" : $0 })
        // Doubled letters, then an i between vowels (or after a vowel at the end).
        var out: [Character] = []
        for c in s where out.last != c { out.append(c) }
        let vowels: Set<Character> = ["a", "e", "i", "o", "u"]
        var kept: [Character] = []
        for (k, c) in out.enumerated() {
            if c == "i", k > 0, vowels.contains(out[k - 1]), out[k - 1] != "i", k == out.count - 1 || vowels.contains(out[k + 1]) { continue }
            kept.append(c)
        }
        s = String(kept)
        for suffix in ["kizi", "uli", "ova", "eva", "ov", "ev"] where s.hasSuffix(suffix) && s.count - suffix.count >= 3 {
            s.removeLast(suffix.count)
            break
        }
        return s.isEmpty ? nil : s
    }
}
