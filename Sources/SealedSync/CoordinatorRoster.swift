@preconcurrency import Crypto
import Foundation

/// The coordinators a coordinator vouches for (itself included), signed with its Ed25519 key.
/// A device takes region keys only from coordinators it trusts: the first one on first use (or
/// the one set by hand, `fieldbook keys trust`), and those a trusted coordinator's roster names.
/// A server relays rosters; it cannot make one, so it cannot slip in a coordinator of its own.
///
/// `"fieldbook roster v1" · issued (8 bytes, ms) · count (2 bytes) · count × (X25519 · Ed25519 public keys)
///  · signer's two public keys · Ed25519 signature (64)`.
public struct CoordinatorRoster: Sendable, Equatable {
    public var signer: DevicePublicKeys
    public var members: [DevicePublicKeys]
    public var issuedMillis: UInt64

    static let label = Array("fieldbook roster v1".utf8)
    public static let maxMembers = 1_000

    public init(signer: DevicePublicKeys, members: [DevicePublicKeys], issuedMillis: UInt64) {
        self.signer = signer
        self.members = members
        self.issuedMillis = issuedMillis
    }

    func signedPart() -> [UInt8] {
        var out = Self.label
        for k in (0..<8).reversed() { out.append(UInt8(truncatingIfNeeded: issuedMillis >> (8 * UInt64(k)))) }
        out.append(UInt8(truncatingIfNeeded: members.count >> 8))
        out.append(UInt8(truncatingIfNeeded: members.count))
        for m in members { out += m.agreement + m.signing }
        out += signer.agreement + signer.signing
        return out
    }

    /// Signs a roster of `members` (the signer is added when missing).
    public static func sign(_ members: [DevicePublicKeys], by me: DeviceKeys, issuedMillis: UInt64) throws -> [UInt8] {
        var list = members
        if !list.contains(me.publicKeys) { list.insert(me.publicKeys, at: 0) }
        let roster = CoordinatorRoster(signer: me.publicKeys, members: Array(list.prefix(maxMembers)), issuedMillis: issuedMillis)
        let body = roster.signedPart()
        return body + Array(try me.signing.signature(for: body))
    }

    /// A roster whose signature is its signer's; nil for anything else.
    public static func verify(_ bytes: [UInt8]) -> CoordinatorRoster? {
        let head = label.count + 8 + 2
        guard bytes.count >= head + 64 + 64, bytes.count <= head + maxMembers * 64 + 64 + 64,
              Array(bytes[0..<label.count]) == label else { return nil }
        let n = Int(bytes[label.count + 8]) << 8 | Int(bytes[label.count + 9])
        guard n <= maxMembers, bytes.count == head + n * 64 + 64 + 64 else { return nil }
        let issued = bytes[label.count..<(label.count + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        var members: [DevicePublicKeys] = []
        for i in 0..<n {
            let at = head + i * 64
            members.append(DevicePublicKeys(agreement: Array(bytes[at..<(at + 32)]), signing: Array(bytes[(at + 32)..<(at + 64)])))
        }
        let s = head + n * 64
        let signer = DevicePublicKeys(agreement: Array(bytes[s..<(s + 32)]), signing: Array(bytes[(s + 32)..<(s + 64)]))
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: signer.signing),
              key.isValidSignature(bytes[(s + 64)...], for: bytes[0..<(s + 64)]) else { return nil }
        return CoordinatorRoster(signer: signer, members: members, issuedMillis: issued)
    }
}
