/// An ISO 8601 duration such as `P18M`, `P1Y6M`, `P15D`, `P2W` or `PT48H` (`incident.sentence_term`).
///
/// Components are whole numbers, in the order Y M W D, then `T` H M S; at least one is present.
public struct ISODuration: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    public var description: String { text }

    public init(_ text: String, field: String = "sentence_term") throws(ModelError) {
        let bad = ModelError.invalid(field, text, "is not an ISO 8601 duration (examples: P18M, P1Y6M, P15D, P2W, PT48H)")
        guard text.first == "P", text.count > 1 else { throw bad }
        var inTime = false
        var digits = ""
        var lastRank = -1
        var components = 0
        let dateOrder: [Character: Int] = ["Y": 0, "M": 1, "W": 2, "D": 3]
        let timeOrder: [Character: Int] = ["H": 4, "M": 5, "S": 6]
        for ch in text.dropFirst() {
            if ch.isASCII && ch.isNumber {
                digits.append(ch)
            } else if ch == "T" {
                guard !inTime, digits.isEmpty else { throw bad }
                inTime = true
            } else {
                guard !digits.isEmpty, let rank = (inTime ? timeOrder : dateOrder)[ch], rank > lastRank else { throw bad }
                guard digits.count <= 6 else {
                    throw ModelError.invalid(field, text, "has a component that is too large")
                }
                lastRank = rank
                digits = ""
                components += 1
            }
        }
        guard digits.isEmpty, components > 0, !(inTime && lastRank < 4) else { throw bad }
        self.text = text
    }
}

/// A charge as written in reports: `CC 405.1` is Criminal Code article 405, part 1;
/// `CoAO 489` is article 489 of the Code of Administrative Offences. Articles may carry a
/// hyphenated suffix (`489-1`).
public struct ChargeRef: Sendable, Hashable, CustomStringConvertible {
    public let code: LegalCode
    public let article: String
    public let part: String?

    public init(code: LegalCode, article: String, part: String?) {
        self.code = code
        self.article = article
        self.part = part
    }

    /// Parses `CODE ARTICLE[.PART]`.
    public init(_ text: String, field: String = "article") throws(ModelError) {
        let bad = ModelError.invalid(field, text, "is not a charge (expected CODE ARTICLE[.PART], e.g. \"CC 405.1\" or \"CoAO 489\"; codes: \(LegalCode.allowedList))")
        let pieces = text.split(separator: " ", omittingEmptySubsequences: true)
        guard pieces.count == 2 else { throw bad }
        guard let code = LegalCode(rawValue: String(pieces[0])) else {
            throw ModelError.invalid(field, text, "names an unknown code \"\(pieces[0])\"; allowed codes: \(LegalCode.allowedList)")
        }
        let numbers = pieces[1].split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(numbers.count) else { throw bad }
        let article = String(numbers[0])
        guard ChargeRef.isArticle(article) else { throw bad }
        var part: String? = nil
        if numbers.count == 2 {
            let p = String(numbers[1])
            guard ChargeRef.isPart(p) else { throw bad }
            part = p
        }
        self.init(code: code, article: article, part: part)
    }

    /// `405`, `489-1`.
    public static func isArticle(_ s: String) -> Bool {
        let halves = s.split(separator: "-", omittingEmptySubsequences: false)
        return (1...2).contains(halves.count)
            && halves.allSatisfy { !$0.isEmpty && $0.count <= 5 && $0.allSatisfy { $0.isASCII && $0.isNumber } }
    }

    public static func isPart(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 3 && s.allSatisfy { $0.isASCII && $0.isNumber }
    }

    public var description: String {
        if let part { return "\(code.rawValue) \(article).\(part)" }
        return "\(code.rawValue) \(article)"
    }
}
