@preconcurrency import Crypto
import Foundation

/// Region keys delivered to a device: HPKE (RFC 9180, X25519 · HKDF-SHA256 · ChaCha20-Poly1305)
/// in auth mode, from the coordinator's X25519 key to the device's, with the region, the epoch
/// and the device's name bound as the HPKE info. The server stores and relays only the wrapped
/// form; it can neither read it nor make one the device would take (it does not hold a
/// coordinator's private key).
public enum KeyWrap {
    static let suite = HPKE.Ciphersuite.Curve25519_SHA256_ChachaPoly

    static func info(region: String, epoch: UInt32, device: String) -> Data {
        var d = Data("fieldbook region key v1".utf8)
        for part in [region, device] {
            let u = Array(part.utf8)
            d.append(UInt8(truncatingIfNeeded: u.count >> 8))
            d.append(UInt8(truncatingIfNeeded: u.count))
            d.append(contentsOf: u)
        }
        for k in (0..<4).reversed() { d.append(UInt8(truncatingIfNeeded: epoch >> (8 * UInt32(k)))) }
        return d
    }

    /// The encapsulated key (32 bytes) followed by the sealed region key (48 bytes).
    public static func wrap(_ key: SymmetricKey, region: String, epoch: UInt32, device: String, to recipient: DevicePublicKeys,
                            from sender: DeviceKeys) throws(SealedSyncError) -> [UInt8] {
        do {
            let pub = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: recipient.agreement)
            var s = try HPKE.Sender(recipientKey: pub, ciphersuite: suite, info: info(region: region, epoch: epoch, device: device),
                                    authenticatedBy: sender.agreement)
            let ct = try key.withUnsafeBytes { try s.seal(Data($0)) }
            return Array(s.encapsulatedKey) + Array(ct)
        } catch {
            throw SealedSyncError(.malformed, "wrapping the key of \(region) (epoch \(epoch)) for \(device) failed: \(error)")
        }
    }

    /// Opens a wrapped region key sent to `device` by `sender`.
    public static func unwrap(_ wrapped: [UInt8], region: String, epoch: UInt32, device: String, with me: DeviceKeys,
                              from sender: DevicePublicKeys) throws(SealedSyncError) -> SymmetricKey {
        guard wrapped.count == 32 + 32 + 16 else {
            throw SealedSyncError(.malformed, "a wrapped key is 80 bytes, not \(wrapped.count)")
        }
        do {
            let spub = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: sender.agreement)
            var r = try HPKE.Recipient(privateKey: me.agreement, ciphersuite: suite, info: info(region: region, epoch: epoch, device: device),
                                       encapsulatedKey: Data(wrapped[0..<32]), authenticatedBy: spub)
            return SymmetricKey(data: try r.open(Data(wrapped[32...])))
        } catch {
            throw SealedSyncError(.doesNotOpen,
                "the key of region \(region) (epoch \(epoch)) does not open on this device: it was not made for it, or not by the coordinator it names")
        }
    }
}
