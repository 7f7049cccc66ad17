/// Counts the values a JSON body holds before it is decoded, so that a body of many tiny
/// values (`[0,0,0,…]`) is refused before a decoder allocates for every one of them.
public enum JSONBudget {
    /// How many values a JSON push may hold for a batch of `maxChanges` changes: a row takes
    /// five array entries (shared, ids, cl, hlc, site), a field write four (rows, values, hlc,
    /// site), and rows plus writes may reach twice the number of changes; plus the sites.
    public static func maxValues(forChanges maxChanges: Int) -> Int {
        maxChanges > Int.max / 16 ? .max : 10 * maxChanges + 2 * WireLimits.maxSites + 1_024
    }

    /// The number of values (array elements and object members) in `bytes`, counted by a scan
    /// that skips strings; stops and returns a number above `limit` as soon as it passes it.
    /// Not a validator: a malformed body is refused by the decoder afterwards.
    public static func count(_ bytes: some Sequence<UInt8>, limit: Int) -> Int {
        var n = 0
        var inString = false
        var escaped = false
        for b in bytes {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "{"):
                n += 1
                if n > limit { return n }
            default: break
            }
        }
        return n
    }
}
