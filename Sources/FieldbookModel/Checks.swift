import Foundation

/// The checks that the record fields use. Each takes the field name (for the message) and the text.
public enum Checks {
    public typealias Check = @Sendable (String, String) throws(ModelError) -> Void

    /// A UUID such as `3f2c…` (any case).
    public static let uuid: Check = { field, s throws(ModelError) in
        guard UUID(uuidString: s) != nil else {
            throw ModelError.invalid(field, s, "is not a record id (a UUID such as 5b0a3e3c-7d1f-4c52-9a43-2f7d1d9c4e10)")
        }
    }

    /// A region (the team that owns a record): lowercase letters, digits, `-` and `_`, at most 64 characters.
    public static let region: Check = { field, s throws(ModelError) in
        guard isRegion(s) else {
            throw ModelError.invalid(field, s, "is not a region name (lowercase letters a-z, digits, '-' and '_', 1 to 64 characters, e.g. almaty or north-kazakhstan)")
        }
    }

    public static func isRegion(_ s: String) -> Bool {
        guard (1...64).contains(s.count), let f = s.unicodeScalars.first, isSlugScalar(f), f != "-", f != "_" else { return false }
        return s.unicodeScalars.allSatisfy(isSlugScalar)
    }

    private static func isSlugScalar(_ u: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(u) || ("0"..."9").contains(u) || u == "-" || u == "_"
    }

    /// One line of text: no control characters, no leading or trailing spaces, at most 1,000 characters.
    public static let line: Check = { field, s throws(ModelError) in
        if hasControl(s, allowBreaks: false) {
            throw ModelError.invalid(field, s, "contains a line break or control character; this field holds one line")
        }
        if s.utf8.count > 1_000 && s.count > 1_000 { throw ModelError.invalid(field, String(s.prefix(40)) + "…", "is longer than 1,000 characters") }
        if let f = s.utf8.first, let l = s.utf8.last, f == 0x20 || l == 0x20 || f >= 0x80 || l >= 0x80,
           s.first?.isWhitespace == true || s.last?.isWhitespace == true {
            throw ModelError.invalid(field, s, "starts or ends with white space")
        }
    }

    /// Free text: line breaks and tabs allowed, other control characters not; at most 20,000 characters.
    public static let text: Check = { field, s throws(ModelError) in
        if hasControl(s, allowBreaks: true) {
            throw ModelError.invalid(field, String(s.prefix(40)), "contains a control character")
        }
        if s.utf8.count > 20_000 && s.count > 20_000 { throw ModelError.invalid(field, String(s.prefix(40)) + "…", "is longer than 20,000 characters") }
    }

    /// Whether `s` has a C0/C1 control character (or DEL); line feed, carriage return and tab
    /// are allowed when `allowBreaks`.
    public static func hasControl(_ s: String, allowBreaks: Bool) -> Bool {
        var previous: UInt8 = 0
        for b in s.utf8 {
            if b < 0x20 {
                if !(allowBreaks && (b == 0x0A || b == 0x0D || b == 0x09)) { return true }
            } else if b == 0x7F || (previous == 0xC2 && (0x80...0x9F).contains(b)) {
                return true
            }
            previous = b
        }
        return false
    }

    /// Whether `s` holds a Unicode direction override or isolate (U+202A–U+202E, U+2066–U+2069),
    /// which can make printed text read differently from what it is.
    public static func hasBidiOverride(_ s: String) -> Bool {
        s.unicodeScalars.contains { (0x202A...0x202E).contains($0.value) || (0x2066...0x2069).contains($0.value) }
    }

    public static let edtf: Check = { field, s throws(ModelError) in _ = try FuzzyDate(s, field: field) }
    public static let duration: Check = { field, s throws(ModelError) in _ = try ISODuration(s, field: field) }

    /// A non-negative decimal number written plainly: `95000`, `138900.50`.
    public static let decimal: Check = { field, s throws(ModelError) in
        let halves = s.split(separator: ".", omittingEmptySubsequences: false)
        let ok = (1...2).contains(halves.count)
            && (1...15).contains(halves[0].count)
            && halves.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
            && (halves.count == 1 || halves[1].count <= 4)
        guard ok else {
            throw ModelError.invalid(field, s, "is not an amount (a plain non-negative decimal number such as 95000 or 1250.50)")
        }
    }

    /// An absolute http(s) URL.
    public static let url: Check = { field, s throws(ModelError) in
        guard let u = URL(string: s), let scheme = u.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = u.host, !host.isEmpty, !s.contains(" ")
        else {
            throw ModelError.invalid(field, s, "is not an absolute http(s) URL")
        }
    }

    public static let article: Check = { field, s throws(ModelError) in
        guard ChargeRef.isArticle(s) else {
            throw ModelError.invalid(field, s, "is not an article number (digits, optionally -digits, e.g. 405 or 489-1)")
        }
    }

    public static let part: Check = { field, s throws(ModelError) in
        guard ChargeRef.isPart(s) else { throw ModelError.invalid(field, s, "is not a part number (1 to 3 digits)") }
    }

    /// A check that accepts exactly the values of a vocabulary.
    public static func vocabulary<V: Vocabulary>(_: V.Type) -> Check {
        { field, s throws(ModelError) in _ = try V.parse(s, field: field) }
    }
}
