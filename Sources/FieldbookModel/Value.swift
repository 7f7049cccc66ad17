import Foundation

/// A field value as SQLite stores it and as it travels on the wire.
///
/// JSON form: `null`, an integer number, a string, `{"real": 1.5}` for a floating-point value
/// (so that `2.0` is never confused with the integer `2`), or `{"sealed": "<base64>"}` for a
/// sealed cell (a value only the devices holding its region's key can open; see `SealedCell`
/// in the SealedSync module and docs/PROTOCOL.md, "Sealed values").
public enum Value: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    /// A sealed cell: what a server stores and relays in place of a field's value.
    case sealed([UInt8])

    /// The text, when the value is text.
    public var text: String? {
        if case .text(let s) = self { return s }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A short rendering for messages and tables.
    public var display: String {
        switch self {
        case .null: return ""
        case .integer(let i): return String(i)
        case .real(let d): return String(d)
        case .text(let s): return s
        case .sealed(let b): return "(sealed, \(b.count) bytes)"
        }
    }

    public var isSealed: Bool {
        if case .sealed = self { return true }
        return false
    }

    /// Text, or null when the string is empty.
    public static func textOrNull(_ s: String?) -> Value {
        guard let s, !s.isEmpty else { return .null }
        return .text(s)
    }
}

extension Value: Codable {
    private enum RealKey: String, CodingKey { case real, sealed }

    public init(from decoder: any Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: RealKey.self) {
            guard keyed.allKeys.count == 1 else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                    debugDescription: "an object value has exactly one key, \"real\" or \"sealed\""))
            }
            if keyed.contains(.sealed) {
                let text = try keyed.decode(String.self, forKey: .sealed)
                // Bounded before decoding: base64 takes 4 characters per 3 bytes.
                guard text.utf8.count <= (WireLimits.maxSealedBytes + 2) / 3 * 4, let bytes = Data(base64Encoded: text) else {
                    throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                        debugDescription: "a sealed value is base64 of at most \(WireLimits.maxSealedBytes) bytes"))
                }
                self = .sealed([UInt8](bytes))
                return
            }
            self = .real(try keyed.decode(Double.self, forKey: .real))
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let s = try? c.decode(String.self) {
            self = .text(s)
        } else if let i = try? c.decode(Int64.self) {
            self = .integer(i)
        } else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "a value must be null, an integer, a string or {\"real\": number}")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .integer(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .text(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .real(let d):
            var c = encoder.container(keyedBy: RealKey.self)
            try c.encode(d, forKey: .real)
        case .sealed(let b):
            var c = encoder.container(keyedBy: RealKey.self)
            try c.encode(Data(b).base64EncodedString(), forKey: .sealed)
        }
    }
}
