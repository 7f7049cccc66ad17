import _CryptoExtras
@preconcurrency import Crypto
import Foundation

/// A coordinator's region keys in a file sealed under a passphrase: scrypt (as the replica's
/// key slots) then AES-256-GCM over the whole content, the header bound as associated data.
///
/// `"FBKEYS01" · logN · r · p · salt (32) · nonce (12) · ciphertext · tag (16)`; the content is
/// JSON: `{"keys": [{"region", "epoch", "key"}], "trusted": [fingerprint]}`. Lose every copy of
/// every coordinator's keys and what was sealed under them cannot be opened by anyone.
public enum KeyBackup {
    public struct Content: Codable, Sendable {
        public struct Key: Codable, Sendable {
            public var region: String
            public var epoch: UInt32
            public var key: String
        }
        public var keys: [Key]
        public var trusted: [String]
    }

    static let magic = Array("FBKEYS01".utf8)
    /// Largest backup read: 16 MiB (a key takes about 100 bytes).
    public static let maxBytes = 16 << 20

    public static func seal(_ ring: KeyRing, trusted: [String], passphrase: String, logN: UInt8 = 17) throws -> [UInt8] {
        var keys: [Content.Key] = []
        for region in ring.regions {
            for e in ring.epochs(region) {
                keys.append(.init(region: region, epoch: e, key: ring.key(region, epoch: e)!.withUnsafeBytes { Data($0).base64EncodedString() }))
            }
        }
        let plain = try JSONEncoder().encode(Content(keys: keys, trusted: trusted))
        var rng = SystemRandomNumberGenerator()
        let salt = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let header = magic + [logN, 8, 1] + salt
        let key = try derive(passphrase, salt: salt, logN: logN, r: 8, p: 1)
        let box = try AES.GCM.seal(plain, using: key, authenticating: header)
        return header + Array(box.nonce) + Array(box.ciphertext) + Array(box.tag)
    }

    public static func open(_ bytes: [UInt8], passphrase: String) throws(SealedSyncError) -> (KeyRing, trusted: [String]) {
        let headerBytes = magic.count + 3 + 32
        guard bytes.count <= maxBytes, bytes.count >= headerBytes + 12 + 16, Array(bytes[0..<magic.count]) == magic else {
            throw SealedSyncError(.malformed, "not a Fieldbook key backup (made by `fieldbook keys export`)")
        }
        let logN = bytes[8], r = bytes[9], p = bytes[10]
        // Bounded before use: a hostile file must not make scrypt take all memory.
        guard (10...22).contains(logN), (1...16).contains(r), (1...4).contains(p) else {
            throw SealedSyncError(.malformed, "the backup's scrypt cost (2^\(logN), \(r), \(p)) is outside what fieldbook makes")
        }
        let header = Array(bytes[0..<headerBytes])
        let plain: Data
        do {
            let key = try derive(passphrase, salt: Array(bytes[11..<headerBytes]), logN: logN, r: r, p: p)
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: bytes[headerBytes..<(headerBytes + 12)]),
                                            ciphertext: bytes[(headerBytes + 12)..<(bytes.count - 16)], tag: bytes[(bytes.count - 16)...])
            plain = try AES.GCM.open(box, using: key, authenticating: header)
        } catch {
            throw SealedSyncError(.doesNotOpen, "the key backup does not open: wrong passphrase, or the file was altered")
        }
        guard let content = try? JSONDecoder().decode(Content.self, from: plain) else {
            throw SealedSyncError(.malformed, "the key backup opens but its content is not a list of keys")
        }
        var ring = KeyRing()
        for k in content.keys {
            guard let raw = Data(base64Encoded: k.key), raw.count == 32, k.epoch >= 1, k.region.utf8.count <= 64 else {
                throw SealedSyncError(.malformed, "the key backup holds a malformed key (region \(k.region.prefix(64)))")
            }
            ring.add(region: k.region, epoch: k.epoch, key: SymmetricKey(data: raw))
        }
        return (ring, content.trusted)
    }

    static func derive(_ passphrase: String, salt: [UInt8], logN: UInt8, r: UInt8, p: UInt8) throws -> SymmetricKey {
        try KDF.Scrypt.deriveKey(from: Array(passphrase.utf8), salt: salt, outputByteCount: 32,
                                 rounds: 1 << Int(logN), blockSize: Int(r), parallelism: Int(p))
    }
}
