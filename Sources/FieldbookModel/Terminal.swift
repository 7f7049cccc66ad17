/// Text from the replica or the wire made safe to print: control characters (terminal escape
/// sequences among them, C0, DEL and C1) and Unicode direction overrides are shown as `\u{…}`
/// escapes instead of acting on the terminal. Every human-readable output goes through it;
/// JSON output is escaped by the encoder.
public enum Terminal {
    public static func safe(_ s: String, keepLineBreaks: Bool = false) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(s.unicodeScalars.count)
        for u in s.unicodeScalars {
            let v = u.value
            let control = v < 0x20 || (0x7F...0x9F).contains(v)
            let bidi = (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
            if (control && !(keepLineBreaks && (v == 0x0A || v == 0x09))) || bidi {
                out += "\\u{\(String(v, radix: 16))}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }
}
