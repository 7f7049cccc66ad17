@preconcurrency import Crypto
import FieldbookModel
import Foundation

/// A device's key pairs, made by `fieldbook init` and kept only inside its (encrypted) replica:
/// X25519 to receive region keys, Ed25519 reserved for signatures (bundles).
public struct DeviceKeys: Sendable {
    public let agreement: Curve25519.KeyAgreement.PrivateKey
    public let signing: Curve25519.Signing.PrivateKey

    public init() {
        agreement = Curve25519.KeyAgreement.PrivateKey()
        signing = Curve25519.Signing.PrivateKey()
    }

    /// The 64 bytes kept in the replica: the X25519 then the Ed25519 private key.
    public var rawRepresentation: [UInt8] { Array(agreement.rawRepresentation) + Array(signing.rawRepresentation) }

    public init(rawRepresentation raw: [UInt8]) throws(SealedSyncError) {
        guard raw.count == 64 else { throw SealedSyncError(.malformed, "device keys are 64 bytes, not \(raw.count)") }
        do {
            agreement = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw[0..<32])
            signing = try Curve25519.Signing.PrivateKey(rawRepresentation: raw[32..<64])
        } catch {
            throw SealedSyncError(.malformed, "device keys: \(error)")
        }
    }

    public var publicKeys: DevicePublicKeys {
        DevicePublicKeys(agreement: Array(agreement.publicKey.rawRepresentation), signing: Array(signing.publicKey.rawRepresentation))
    }
}

/// A device's public keys, as registered with a server and shown (as a fingerprint) to the
/// coordinator who approves it.
public struct DevicePublicKeys: Sendable, Equatable, Hashable {
    public var agreement: [UInt8]
    public var signing: [UInt8]

    public init(agreement: [UInt8], signing: [UInt8]) {
        self.agreement = agreement
        self.signing = signing
    }

    /// Checks keys that arrive from the network (base64 of 32 bytes each).
    public init(agreement a: String, signing s: String) throws(SealedSyncError) {
        guard a.utf8.count <= 64, s.utf8.count <= 64, let ka = Data(base64Encoded: a), let ks = Data(base64Encoded: s),
              ka.count == 32, ks.count == 32,
              (try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: ka)) != nil,
              (try? Curve25519.Signing.PublicKey(rawRepresentation: ks)) != nil
        else {
            throw SealedSyncError(.malformed, "a device's keys are two 32-byte public keys (X25519, Ed25519) in base64")
        }
        agreement = Array(ka)
        signing = Array(ks)
    }

    public var agreementBase64: String { Data(agreement).base64EncodedString() }
    public var signingBase64: String { Data(signing).base64EncodedString() }

    /// The short fingerprint read out over a call: six groups of five digits (about 100 bits),
    /// from SHA-256 over a label and both keys (the way Signal's safety numbers are made).
    public var fingerprint: String {
        let digest = Array(SHA256.hash(data: Array("fieldbook device v1".utf8) + agreement + signing))
        let digits = (0..<6).map { g -> String in
            let chunk = digest[(g * 5)..<(g * 5 + 5)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let s = String(chunk % 100_000)
            return String(repeating: "0", count: 5 - s.count) + s
        }.joined()
        return Self.canonicalFingerprint(digits)!  // 30 digits by construction
    }

    /// The fingerprint as people read it out: six groups of six digits, each group its five
    /// digits of `fingerprint` and a Damm check digit, so that a misheard digit or two swapped
    /// ones show as a typo in that group. (`fingerprint`, without check digits, stays the key's
    /// identity in stores and rosters.)
    public var spokenFingerprint: String { Self.spoken(Self.digits(fingerprint)) }

    /// The spoken form of a stored fingerprint (30 digits, any separators); the text as it is
    /// when it holds no 30 digits.
    public static func spokenForm(of stored: String) -> String {
        let d = digits(stored)
        return d.count == 30 ? spoken(d) : stored
    }

    /// Six groups of five digits with their check digits.
    static func spoken(_ thirty: String) -> String {
        let d = Array(thirty.utf8).map { $0 - UInt8(ascii: "0") }
        return stride(from: 0, to: 30, by: 5).map { (i: Int) -> String in
            let group = Array(d[i..<(i + 5)])
            return (group + [CheckCharacters.dammDigit(group)]).map { String($0) }.joined()
        }.joined(separator: " ")
    }

    /// What a typed fingerprint is: this key's, a typo (which groups), another key's, or not a
    /// fingerprint.
    public enum FingerprintCheck: Error, Equatable, Sendable {
        case matches
        case mistyped(groups: [Int])
        case differs
        case malformed(digits: Int)
    }

    /// Checks `typed` (spaces, dashes and other separators ignored): the spoken form (36 digits,
    /// check digits verified first) or the form of earlier releases (30 digits).
    public func check(fingerprint typed: String) -> FingerprintCheck {
        switch Self.parse(typed) {
        case let .success(thirty): return thirty == Self.digits(fingerprint) ? .matches : .differs
        case let .failure(e): return e
        }
    }

    /// Whether `typed` is this fingerprint (in either form, check digits correct).
    public func matches(fingerprint typed: String) -> Bool { check(fingerprint: typed) == .matches }

    /// The 30 digits of a typed fingerprint, or why it is none.
    static func parse(_ typed: String) -> Result<String, FingerprintCheck> {
        let d = Array(digits(typed).utf8).map { $0 - UInt8(ascii: "0") }
        switch d.count {
        case 30: return .success(digits(typed))
        case 36:
            var thirty: [UInt8] = [], bad: [Int] = []
            for g in 0..<6 {
                let group = Array(d[(g * 6)..<(g * 6 + 5)])
                if CheckCharacters.dammDigit(group) != d[g * 6 + 5] { bad.append(g + 1) }
                thirty += group
            }
            if !bad.isEmpty { return .failure(.mistyped(groups: bad)) }
            return .success(String(decoding: thirty.map { $0 + UInt8(ascii: "0") }, as: UTF8.self))
        default: return .failure(.malformed(digits: d.count))
        }
    }

    /// A fingerprint as typed, in its one stored form (six groups of five digits), or nil when
    /// it is not one (see `check(fingerprint:)` for why).
    public static func canonicalFingerprint(_ typed: String) -> String? {
        guard case let .success(d) = parse(typed) else { return nil }
        let a = Array(d)
        return stride(from: 0, to: 30, by: 5).map { String(a[$0..<($0 + 5)]) }.joined(separator: " ")
    }

    /// What to tell a person whose typed fingerprint is not this key's — never the expected
    /// value, which a hurried coordinator would copy instead of asking again.
    public static func explain(_ check: FingerprintCheck) -> String? {
        switch check {
        case .matches: return nil
        case let .mistyped(groups):
            return "group\(groups.count == 1 ? "" : "s") \(groups.map(String.init).joined(separator: ", ")) look\(groups.count == 1 ? "s" : "") mistyped (the last digit of each group checks the others): ask its owner to read \(groups.count == 1 ? "that group" : "those groups") of the fingerprint again"
        case .differs:
            return "the fingerprint does not match the key the server holds for this device. Do not approve it: ask its owner to read `fieldbook keys fingerprint` again, digit by digit. If it still differs, the server (or someone on the way) may be substituting keys"
        case let .malformed(n):
            return "a fingerprint is six groups of six digits (36 digits, or 30 from an earlier release); \(n) digit\(n == 1 ? "" : "s") given"
        }
    }

    static func digits(_ s: String) -> String { String(s.unicodeScalars.filter { ("0"..."9").contains($0) }.map(Character.init)) }
}
