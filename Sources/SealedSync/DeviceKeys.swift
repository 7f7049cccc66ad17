@preconcurrency import Crypto
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

    /// Whether `typed` (spaces, dashes and other separators ignored) is this fingerprint.
    public func matches(fingerprint typed: String) -> Bool {
        Self.digits(typed) == Self.digits(fingerprint)
    }

    /// A fingerprint as typed (any separators), in its one written form — six groups of five
    /// digits — or nil when it does not hold 30 digits.
    public static func canonicalFingerprint(_ typed: String) -> String? {
        let d = Array(digits(typed))
        guard d.count == 30 else { return nil }
        return stride(from: 0, to: 30, by: 5).map { String(d[$0..<($0 + 5)]) }.joined(separator: " ")
    }

    static func digits(_ s: String) -> String { String(s.unicodeScalars.filter { ("0"..."9").contains($0) }.map(Character.init)) }
}
